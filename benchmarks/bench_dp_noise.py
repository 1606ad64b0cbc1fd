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

    class Timed(SecureGaussian):
        def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = 1) -> Any:
            t0 = time.perf_counter()
            out = super().normal(loc, scale, size)
            spent.append(time.perf_counter() - t0)
            return out

    def run(secure: bool) -> float:
        t0 = time.perf_counter()
        dp_fit(copy.deepcopy(module), data, lambda m: 0.0, _report(samples, batch), batch_size=batch,
               physical_batch=batch, learning_rate=1e-3, seed=0, noise=Timed() if secure else None)  # fmt: skip
        return time.perf_counter() - t0

    run(True)  # warm-up
    run(False)
    spent.clear()
    times: dict[str, list[float]] = {"torch": [], "secure": []}
    for r in range(rounds):
        for mode in ("torch", "secure") if r % 2 == 0 else ("secure", "torch"):
            times[mode].append(run(mode == "secure"))
            print(f"{name} round {r} {mode}: {times[mode][-1]:.2f} s", flush=True)
    ratios = [s / t for s, t in zip(times["secure"], times["torch"], strict=True)]
    steps = math.ceil(samples / batch)
    return {
        "model": name, "trainable_parameters": trainable, "samples": samples, "batch": batch, "rounds": rounds,
        "seconds_torch": times["torch"], "seconds_secure": times["secure"],
        "epoch_s_median_torch": statistics.median(times["torch"]),
        "epoch_s_median_secure": statistics.median(times["secure"]),
        "ratio_median": statistics.median(ratios), "ratio_p90": _p90(ratios),
        "secure_noise_ms_per_step_median": 1e3 * statistics.median(spent),
        "expected_steps_per_epoch": steps,
    }  # fmt: skip


def _p90(values: list[float]) -> float:
    return sorted(values)[max(0, math.ceil(0.9 * len(values)) - 1)]


def sampler_speed() -> dict[str, float]:
    import numpy as np

    from keelml.core.securerandom import SecureGaussian

    out: dict[str, float] = {}
    n = 1_000_000
    for label, make in (
        ("secure hardened (default)", lambda: SecureGaussian()),
        ("secure plain Box-Muller", lambda: SecureGaussian(hardened=False)),
        ("numpy PCG64 (not a CSPRNG)", lambda: np.random.default_rng(0)),
    ):
        g = make()
        ts = []
        for _ in range(5):
            t0 = time.perf_counter()
            g.normal(0.0, 1.0, n)
            ts.append(time.perf_counter() - t0)
        out[label] = n / statistics.median(ts)
    return out


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
        "threads": args.threads, "cases": cases, "sampler_normals_per_s": sampler_speed(),
        "load_average_end": os.getloadavg(),
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.output).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({c["model"]: (c["ratio_median"], c["ratio_p90"]) for c in cases}, indent=1))


if __name__ == "__main__":
    main()
