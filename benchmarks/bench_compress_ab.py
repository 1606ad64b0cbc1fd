"""Distillation settings A/B on the cached MiniLM teacher, judged on the 400 validation reviews only.

One student (or, with ``--prune``, one pruned teacher) per call, made exactly as bench_compress.py makes it (same options, same cache key): it is
registered in the teacher's workspace and remembered in ``bench-compress.json``, so the full
bench_compress.py run with the chosen settings reuses it instead of training it again. This script
prints and writes only **validation** accuracy (keelml's 400-review validation split, the one the
best epoch is picked on) next to the teacher's on the same rows; the internal test split and the 1,000
held-out reviews are left to the final bench_compress.py run, so no setting is chosen on them.

Usage: OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/bench_compress_ab.py --tag TAG
       [bench_compress.py's teacher and student options: --teacher-epochs 1 --teacher-max-length 64
        --layers 2 | --teacher-layers 0 5, --student-epochs, --student-lr, --schedule linear, ...]
Writes benchmarks/results/compress-ab-TAG.json.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"

import torch
from bench_compress import (
    RESULTS,
    build_parser,
    distill_student,
    parse,
    prune_key,
    pruned_model,
    remember,
    reuse,
    student_key,
)
from bench_export import TEACHER, cached_teacher

from keelml.compress.evaluate import evaluate_model


def main() -> None:
    parser = build_parser()
    parser.add_argument("--tag", required=True)
    parser.add_argument("--prune", action="store_true", help="judge the pruned teacher instead of a student")
    args = parse(parser)
    torch.set_num_threads(args.threads)
    t0, c0, load0 = time.time(), time.process_time(), os.getloadavg()
    ws, folder = cached_teacher(
        args.teacher_epochs, args.teacher_max_length, rows=args.train_rows, base=args.base
    )
    source = ws.compress.source(TEACHER)
    teacher_parameters = sum(int(p.numel()) for p in source.model.module.parameters())
    if args.prune:  # the teacher pruned by --prune-amount (--prune-steps), recovered by distillation
        key = prune_key(args)
        pruned = pruned_model(ws, folder, source, args, teacher_parameters)
        spec, model, best_epoch = pruned.spec, pruned.model, None
    else:
        key = student_key(args)
        made = reuse(ws, folder, key, teacher_parameters)
        if made is None:
            student = distill_student(ws, source, args)
            remember(folder, key, str(student.spec))
            spec, model, best_epoch = student.spec, student.model, student.best_epoch
        else:  # made by an earlier call: re-measure its validation accuracy
            spec, model, best_epoch = made.spec, made.model, None
    y = source.labels("validation")
    validation = evaluate_model(model, source.parts["validation"], y, ()).accuracy
    teacher_validation = evaluate_model(source.model, source.parts["validation"], y, ()).accuracy
    rows = source.parts["validation"]
    agreement = float(
        (model.predict_proba(rows).argmax(1) == source.model.predict_proba(rows).argmax(1)).mean()
    )
    out = {
        "tag": args.tag, "key": key, "spec": spec, "best_epoch": best_epoch,
        "validation_rows": len(y), "validation_accuracy": validation,
        "teacher_validation_accuracy": teacher_validation,
        "validation_drop_points": (teacher_validation - validation) * 100,
        "validation_agreement_with_teacher": agreement,
        "wall_s": time.time() - t0, "cpu_s": time.process_time() - c0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "command": f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '')} nice -n {os.nice(0)} .venv/bin/python benchmarks/bench_compress_ab.py "
        + " ".join(sys.argv[1:]),
        "load_average_start": load0, "load_average_end": os.getloadavg(),
        "versions": {"torch": torch.__version__},
    }  # fmt: skip
    (RESULTS / f"compress-ab-{args.tag}.json").write_text(json.dumps(out, indent=2), encoding="utf-8")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
