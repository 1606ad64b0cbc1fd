"""One MiniLM attention layer in ONNX Runtime, op by op: where the fused int8 model's time goes.

A fused int8 export runs each layer's attention as one ``QAttention`` (int8 QKV projection + fp32
attention core). On a CPU whose int8 GEMM is fast (AMX) the int8 model gained only ~2x over fp32
(benchmarks/results/compress.md, session 9); this probe times, at batch 1 and sequence 128 with 38
padded positions, interleaved in shuffled rounds on one thread (median CPU time per call):

- ``Attention`` fp32 (QKV projection + core), ``QAttention`` int8 (incl. its DynamicQuantizeLinear);
- the parts: QKV projection alone (fp32 ``MatMul``, int8 ``DynamicQuantizeMatMul``) and the attention
  core alone (``MultiHeadAttention`` on ready q, k, v with the key padding mask).

for 12 heads (the teacher) and 3 heads (the teacher pruned by 75 %), head size 32, hidden 384.

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

import numpy as np
from bench_export_gops import _cpu_model, timed_loop
from onnx import TensorProto, helper, numpy_helper

from keelml.export.runtime import session

SEQ, HIDDEN, HEAD = 128, 384, 32
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def _session(nodes: list[Any], inits: list[Any], inputs: list[Any]) -> Any:
    graph = helper.make_graph(
        nodes,
        "probe",
        inputs,
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=inits,
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]
    return session(helper.make_model(graph, opset_imports=opsets).SerializeToString())


def calls(heads: int, rng: np.random.Generator) -> dict[str, Any]:
    """The five calls for one layer of ``heads`` heads, each a closure over its own session and feeds."""
    width = heads * HEAD
    x = rng.standard_normal((1, SEQ, HIDDEN)).astype(np.float32)
    q = rng.standard_normal((1, SEQ, width)).astype(np.float32)
    mask = np.ones((1, SEQ), np.int32)
    mask[0, 90:] = 0
    w = numpy_helper.from_array((rng.standard_normal((HIDDEN, 3 * width)) * 0.05).astype(np.float32), "w")
    w8 = numpy_helper.from_array(rng.integers(-127, 127, (HIDDEN, 3 * width), dtype=np.int8), "w8")
    bias = numpy_helper.from_array(np.zeros(3 * width, np.float32), "b")
    scale = numpy_helper.from_array(np.array(0.01, np.float32), "s")
    zero = numpy_helper.from_array(np.array(0, np.int8), "z")
    x_in = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, SEQ, HIDDEN])
    m_in = helper.make_tensor_value_info("m", TensorProto.INT32, [1, SEQ])
    qkv_in = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, SEQ, width]) for n in "qkv"]
    ms = "com.microsoft"
    fp32_attention = _session(
        [helper.make_node("Attention", ["x", "w", "b", "m"], ["y"], domain=ms, num_heads=heads)],
        [w, bias],
        [x_in, m_in],
    )
    int8_attention = _session(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["xq", "xs", "xz"]),
         helper.make_node("QAttention", ["xq", "w8", "b", "xs", "s", "m", "xz", "z"], ["y"], domain=ms,
                          num_heads=heads)],
        [w8, bias, scale, zero], [x_in, m_in],
    )  # fmt: skip
    fp32_qkv = _session([helper.make_node("MatMul", ["x", "w"], ["y"])], [w], [x_in])
    int8_qkv = _session(
        [helper.make_node("DynamicQuantizeMatMul", ["x", "w8", "s", "z", "b"], ["y"], domain=ms)],
        [w8, bias, scale, zero], [x_in],
    )  # fmt: skip
    core = _session(
        [helper.make_node("MultiHeadAttention", ["q", "k", "v", "", "m"], ["y"], domain=ms, num_heads=heads)],
        [], [*qkv_in, m_in],
    )  # fmt: skip
    return {
        f"{heads} heads: Attention fp32 (QKV + core)": lambda: fp32_attention.run(None, {"x": x, "m": mask}),
        f"{heads} heads: QAttention int8 (QKV + core)": lambda: int8_attention.run(None, {"x": x, "m": mask}),
        f"{heads} heads: QKV MatMul fp32": lambda: fp32_qkv.run(None, {"x": x}),
        f"{heads} heads: QKV DynamicQuantizeMatMul int8": lambda: int8_qkv.run(None, {"x": x}),
        f"{heads} heads: MultiHeadAttention core fp32": lambda: core.run(
            None, {"q": q, "k": q, "v": q, "m": mask}
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--output", default="attention-probe")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    probe = {**calls(12, rng), **calls(3, rng)}
    times = timed_loop(probe, args.rounds, seed=0)
    rows = {name: {"cpu_median_ms": 1e3 * float(np.median(t["cpu"])),
                   "cpu_p90_ms": 1e3 * float(np.percentile(t["cpu"], 90))} for name, t in times.items()}  # fmt: skip
    for name, row in rows.items():
        print(f"{name:50s} {row['cpu_median_ms']:7.3f} ms (p90 {row['cpu_p90_ms']:.3f})")
    payload = {
        "command": "OMP_NUM_THREADS=1 .venv/bin/python benchmarks/attention_probe.py "
        + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs ({_cpu_model()})",
        "load_after": os.getloadavg(),
        "rows": rows,
    }
    with open(os.path.join(RESULTS, f"{args.output}.json"), "w", encoding="utf-8") as fh:
        json.dump(payload, fh, indent=2)


if __name__ == "__main__":
    main()
