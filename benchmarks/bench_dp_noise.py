"""What CSPRNG noise costs DP-SGD: keelml's DP training with torch's generator vs SecureGaussian.

The same ``dp_fit`` (Opacus, ghost clipping, Poisson sampling) runs one epoch per timing, with the noise
from torch's generator (``dp_secure_noise = false``) or from ``keelml.core.securerandom.SecureGaussian``
(AES-256-CTR keystream keyed by os.urandom, hardened sampling: 4 Box-Muller normals per sample), on
three models: the digits MLP of the utility benchmark (64-128-10), the 1.9M-parameter MLP of the
throughput benchmark, and MiniLM with LoRA r=8 (only adapter and head train; 64 tokens, random ids: the
cost of noise does not depend on the text). Modes are interleaved, order alternating per round, fixed
threads. Also the raw sampler speed (normals per second).

    .venv/bin/python benchmarks/bench_dp_noise.py [--rounds 5] [--threads 1] [--skip-text]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def _report(samples: int, batch: int) -> Any:
    from keelml.train.private import PrivacyReport

    return PrivacyReport(
        epsilon=0.0, delta=1e-5, noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=batch / samples,
        steps=math.ceil(samples / batch), epochs=1, train_rows=samples, clipping="ghost", target_epsilon=None,
    )  # fmt: skip


def mlp(sizes: list[int]) -> Any:
    from torch import nn

    layers: list[Any] = []
    for a, b in itertools.pairwise(sizes):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def lora_text() -> Any:
    from keelml.train.config import TextConfig
    from keelml.train.peft_adapters import base_model_path, load_base, target_modules, wrap
    from keelml.train.text import _module

    config = TextConfig()
    encoder, _ = load_base(base_model_path(config.base))
    targets = target_modules(encoder, "lora", None)
    hidden = int(encoder.config.hidden_size)
    encoder = wrap(encoder, "lora", targets, rank=config.lora_rank, alpha=config.lora_alpha, dropout=0.0)
    return _module(encoder, hidden, 2)


def case(
    name: str, module: Any, tensors: tuple[Any, ...], logits: Any, batch: int, rounds: int
) -> dict[str, Any]:
    from keelml.core.securerandom import SecureGaussian
    from keelml.train.private import PrivateBatches, dp_fit

    samples = len(tensors[0])
    data = PrivateBatches(tensors, logits, lambda b: b[-1])
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    spent: list[float] = []

    class Timed(SecureGaussian):  # DP-SGD asks for a tensor (normal_tensor); CPU time of each draw
        def normal_tensor(self, scale: float, n: int, dtype: Any = None) -> Any:
            t0 = time.process_time()
            out = super().normal_tensor(scale, n, dtype)
            spent.append(time.process_time() - t0)
            return out

    def run(secure: bool) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        dp_fit(copy.deepcopy(module), data, lambda m: 0.0, _report(samples, batch), batch_size=batch,
               physical_batch=batch, learning_rate=1e-3, seed=0, noise=Timed() if secure else None)  # fmt: skip
        return time.perf_counter() - t0, time.process_time() - c0

    run(True)  # warm-up
    run(False)
    spent.clear()
    times: dict[str, list[float]] = {"torch": [], "secure": []}
    cpu: dict[str, list[float]] = {"torch": [], "secure": []}
    for r in range(rounds):
        for mode in ("torch", "secure") if r % 2 == 0 else ("secure", "torch"):
            wall, used = run(mode == "secure")
            times[mode].append(wall)
            cpu[mode].append(used)
            print(f"{name} round {r} {mode}: {wall:.2f} s, {used:.2f} s CPU", flush=True)
    ratios = [s / t for s, t in zip(times["secure"], times["torch"], strict=True)]
    cpu_ratios = [s / t for s, t in zip(cpu["secure"], cpu["torch"], strict=True)]
    steps = math.ceil(samples / batch)
    return {
        "model": name, "trainable_parameters": trainable, "samples": samples, "batch": batch, "rounds": rounds,
        "seconds_torch": times["torch"], "seconds_secure": times["secure"],
        "cpu_seconds_torch": cpu["torch"], "cpu_seconds_secure": cpu["secure"],
        "epoch_s_median_torch": statistics.median(times["torch"]),
        "epoch_s_median_secure": statistics.median(times["secure"]),
        "epoch_cpu_s_median_torch": statistics.median(cpu["torch"]),
        "epoch_cpu_s_median_secure": statistics.median(cpu["secure"]),
        "ratio_median": statistics.median(ratios), "ratio_p90": _p90(ratios),
        "cpu_ratio_median": statistics.median(cpu_ratios), "cpu_ratio_p90": _p90(cpu_ratios),
        "secure_noise_cpu_ms_per_step_median": 1e3 * statistics.median(spent),
        "expected_steps_per_epoch": steps,
    }  # fmt: skip


def _p90(values: list[float]) -> float:
    return sorted(values)[max(0, math.ceil(0.9 * len(values)) - 1)]


class PlainSecureGaussian:
    """The sampler as it was before this benchmark's optimisation (commit 3140b4c), kept to measure
    before and after in one run: a fresh keystream buffer per call, unsigned conversion, one pass."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        self._stream = Cipher(algorithms.AES(os.urandom(32)), modes.CTR(bytes(16))).encryptor()

    def normal(self, loc: float, scale: float, n: int) -> Any:
        import numpy as np

        m = 4 * n  # hardened: four normals per output
        half = (m + 1) // 2
        raw = self._stream.update(bytes(8 * 2 * half))
        k = (np.frombuffer(raw, dtype=np.uint64) >> np.uint64(11)).astype(np.float64)
        k += 1.0
        k *= 2.0**-53
        radius = np.sqrt(-2.0 * np.log(k[:half]))
        angle = k[half:]
        angle *= 2.0 * math.pi
        out = np.empty(2 * half, dtype=np.float64)
        np.multiply(radius, np.cos(angle), out=out[:half])
        np.multiply(radius, np.sin(angle), out=out[half:])
        z = out[:m].reshape(4, n).sum(axis=0)
        z *= 0.5
        if scale != 1.0:
            z *= scale
        if loc != 0.0:
            z += loc
        return z


def sampler_speed(n: int = 1_000_000, reps: int = 7) -> dict[str, dict[str, float]]:
    """Million normals per CPU second (and per wall second), interleaved repetitions, median."""
    import numpy as np

    from keelml.core.securerandom import SecureGaussian

    secure, plain = SecureGaussian(), SecureGaussian(hardened=False)
    makers: dict[str, Any] = {
        "before: hardened, plain numpy (previous SecureGaussian)": lambda: PlainSecureGaussian().normal(
            0.0, 1.0, n
        ),
        "after: hardened, numpy (SecureGaussian.normal)": lambda: secure.normal(0.0, 1.0, n),
        "after: hardened, torch ops (SecureGaussian.normal_tensor, DP-SGD's path)": lambda: (
            secure.normal_tensor(1.0, n)
        ),
        "after: plain Box-Muller, torch ops (not hardened)": lambda: plain.normal_tensor(1.0, n),
        "numpy PCG64 (not a CSPRNG)": lambda: np.random.default_rng(0).normal(0.0, 1.0, n),
    }
    cpu: dict[str, list[float]] = {k: [] for k in makers}
    wall: dict[str, list[float]] = {k: [] for k in makers}
    for r in range(reps):
        for label in makers if r % 2 == 0 else reversed(makers):
            t0, c0 = time.perf_counter(), time.process_time()
            makers[label]()
            wall[label].append(time.perf_counter() - t0)
            cpu[label].append(time.process_time() - c0)
    return {
        k: {
            "m_per_cpu_s": n / statistics.median(cpu[k]) / 1e6,
            "m_per_wall_s": n / statistics.median(wall[k]) / 1e6,
        }
        for k in makers
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--output", default="dp_noise.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    sampler = sampler_speed()  # first, on a fresh process; again at the end
    print(json.dumps(sampler, indent=1), flush=True)
    cases = []
    x, y = torch.rand(1024, 64, generator=gen), torch.randint(0, 10, (1024,), generator=gen)
    cases.append(
        case("digits MLP 64-128-10", mlp([64, 128, 10]), (x, y), lambda m, b: m(b[0]), 64, args.rounds)
    )
    x, y = torch.randn(1024, 784, generator=gen), torch.randint(0, 10, (1024,), generator=gen)
    cases.append(case("MLP 784-1024-1024-10 (1.9M)", mlp([784, 1024, 1024, 10]), (x, y), lambda m, b: m(b[0]),
                      64, args.rounds))  # fmt: skip
    if not args.skip_text:
        ids = torch.randint(1000, 20000, (128, 64), generator=gen)
        mask, y = torch.ones_like(ids), torch.randint(0, 2, (128,), generator=gen)
        cases.append(case("MiniLM + LoRA r=8 (64 tokens)", lora_text(), (ids, mask, y),
                          lambda m, b: m(b[0], b[1]), 32, max(2, args.rounds // 2)))  # fmt: skip
    data = {
        "command": f".venv/bin/python benchmarks/bench_dp_noise.py --rounds {args.rounds} --threads {args.threads}"
        + (" --skip-text" if args.skip_text else ""),
        "load_average_start": os.getloadavg(), "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "versions": {d: metadata.version(d) for d in ("torch", "opacus", "cryptography", "numpy")},
        "threads": args.threads, "sampler_start": sampler, "cases": cases, "sampler_end": sampler_speed(),
        "load_average_end": os.getloadavg(),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.output).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({c["model"]: (c["ratio_median"], c["ratio_p90"]) for c in cases}, indent=1))


if __name__ == "__main__":
    main()
