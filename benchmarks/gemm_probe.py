"""Single-thread GEMM probe: ONNX Runtime int8 (MatMulInteger u8 x s8) and fp32 MatMul vs torch fp32, 768^3.

A one-minute check of what this machine's cores give before trusting a latency ratio: the int8
speed-ups of the compression benchmarks follow ONNX Runtime's int8 GEMM rate, which differed by 1.6x
between two VMs reporting the same CPU (benchmarks/results/compress.md, session 8). The int8 call is
bench_export_gops.py's peak call; the three calls are interleaved in shuffled rounds (its timed_loop)
and the rates come from the median CPU time of a call.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gemm_probe.py
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from bench_export_gops import matmul_integer, timed_loop
from onnx import TensorProto, helper

from keelml.export.runtime import session

N = 768


def matmul_fp32(a: np.ndarray, b: np.ndarray) -> Any:
    """One ONNX Runtime fp32 MatMul call of ``a @ b`` (1 thread) as a closure."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["a", "b"], ["c"])], "fp32",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [N, N]) for x in ("a", "b")],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [N, N])],
    )  # fmt: skip
    sess = session(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    return lambda: sess.run(None, {"a": a, "b": b})


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    a, b = rng.random((N, N), dtype=np.float32), rng.random((N, N), dtype=np.float32)
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    calls = {
        "onnxruntime int8 GOP/s": matmul_integer(N, N, N, threads=1),
        "onnxruntime fp32 GFLOP/s": matmul_fp32(a, b),
        "torch fp32 GFLOP/s": lambda: ta @ tb,
    }
    gop = 2 * N**3 / 1e9
    for name, times in timed_loop(calls, rounds=40, seed=0).items():
        print(name, round(gop / float(np.median(times["cpu"])), 1))
    print("onnxruntime", ort.__version__, "torch", torch.__version__)


if __name__ == "__main__":
    main()
