"""Accuracy of cached compressed models across seeds: their int8 exports on the test and held-out reviews.

bench_compress.py / bench_compress_ab.py register each model they train in the cached teacher's
workspace and remember it in ``bench-compress.json`` under its settings key (``... seed=N``). This
script takes such keys, exports each model to int8 where that export is missing (fused, as
bench_compress.py does), and reports the int8 accuracy on keelml's 800 internal test reviews and on the
1,000 held-out reviews of modeldata/testing_data, the drop against the fp32 teacher, and the mean and
spread over the keys. No timing: latency does not depend on the seed.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compress_seeds.py --teacher-epochs 1
       --teacher-max-length 64 --keys "prune amount=0.6667 epochs=3" "prune ... seed=1" ... --output NAME
Writes benchmarks/results/NAME.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys

os.environ["HF_HUB_OFFLINE"] = "1"

import torch
from bench_compress import RESULTS, exported, heldout, heldout_reviews, reuse
from bench_export import TEACHER, cached_teacher

from keelml.export.runtime import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument("--teacher-max-length", type=int, default=64)
    parser.add_argument("--keys", nargs="+", required=True, help="settings keys of bench-compress.json")
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--output", default="compress-seeds")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ws, folder = cached_teacher(args.teacher_epochs, args.teacher_max_length)
    source = ws.compress.source(TEACHER)
    texts, labels = heldout_reviews(args.test_rows)
    classes = source.model.classes
    teacher_test = float(source.info.metrics["test_accuracy"])
    teacher_held = heldout(source.model.predict_proba, texts, labels, classes)
    rows = []
    for key in args.keys:
        made = reuse(ws, folder, key, 0)
        if made is None:
            raise SystemExit(f"no model remembered under {key!r} in {folder / 'bench-compress.json'}")
        int8 = exported(ws, made.spec, ("int8",)).variant("int8")
        runtime = load_model(ws.artifacts.read_bytes(int8.artifact), threads=1)
        test, held_acc = (
            float(int8.metrics["test_accuracy"]),
            heldout(runtime.predict_proba, texts, labels, classes),
        )
        rows.append({"key": key, "spec": made.spec, "description": made.description,
                     "int8_test_accuracy": test, "int8_test_drop_points": (teacher_test - test) * 100,
                     "int8_heldout_accuracy": held_acc, "int8_heldout_drop_points": (teacher_held - held_acc) * 100})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    summary = {
        name: {"mean": statistics.fmean(r[name] for r in rows), "min": min(r[name] for r in rows),
               "max": max(r[name] for r in rows)}
        for name in ("int8_test_drop_points", "int8_heldout_drop_points")
    }  # fmt: skip
    out = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compress_seeds.py " + " ".join(sys.argv[1:]),
        "teacher": {"test_accuracy": teacher_test, "heldout_accuracy": teacher_held},
        "rows": rows, "summary": summary, "load_average_end": os.getloadavg(),
    }  # fmt: skip
    (RESULTS / f"{args.output}.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
