"""Validation-only fidelity of every student bench_compress(_ab).py cached for the MiniLM teacher.

For each student remembered in the teacher workspace's ``bench-compress.json``: accuracy on keelml's 400
validation reviews, agreement of its predicted class with the teacher's, and the mean KL(teacher ||
student) of the two predicted distributions (with its standard error over the rows). The KL is a
continuous, per-row measure, so it ranks students with less noise than 400 rows of accuracy (one row
is 0.25 point); it says how well a student imitates the teacher, not how accurate either is. No test
or held-out row is read.

Usage: OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/compress_fidelity.py [--output NAME]
Writes benchmarks/results/NAME.json (default compress-fidelity).
"""

from __future__ import annotations

import argparse
import json
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import torch
from bench_compress import RESULTS, reuse
from bench_export import TEACHER, cached_teacher


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher-epochs", type=int, default=1)
    parser.add_argument("--teacher-max-length", type=int, default=64)
    parser.add_argument("--output", default="compress-fidelity")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ws, folder = cached_teacher(args.teacher_epochs, args.teacher_max_length)
    source = ws.compress.source(TEACHER)
    rows, y = source.parts["validation"], source.labels("validation")
    teacher = source.model.predict_proba(rows)
    made = json.loads((folder / "bench-compress.json").read_text())
    out: dict[str, object] = {
        "teacher_validation_accuracy": float((teacher.argmax(1) == y).mean()),
        "rows": len(y),
    }
    for key in made:
        student = reuse(ws, folder, key, 0)
        if student is None:
            continue
        probs = student.model.predict_proba(rows)
        kl = (teacher * (np.log(np.clip(teacher, 1e-8, 1)) - np.log(np.clip(probs, 1e-8, 1)))).sum(1)
        out[key] = {
            "spec": student.spec,
            "validation_accuracy": float((probs.argmax(1) == y).mean()),
            "agreement_with_teacher": float((probs.argmax(1) == teacher.argmax(1)).mean()),
            "kl_teacher_student_mean": float(kl.mean()),
            "kl_standard_error": float(kl.std(ddof=1) / np.sqrt(len(kl))),
        }
        print(key, json.dumps(out[key]), flush=True)
    out["load_average_end"] = os.getloadavg()
    (RESULTS / f"{args.output}.json").write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
