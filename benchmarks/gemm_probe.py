"""Single-thread GEMM probe: ONNX Runtime int8 (MatMulInteger u8 x s8) and fp32 MatMul vs torch fp32, 768^3.

A one-minute check of what this machine's cores give before trusting a latency ratio: the int8
speed-ups of the compression benchmarks follow ONNX Runtime's int8 GEMM rate, which differed by 1.6x
between two VMs reporting the same CPU (benchmarks/results/compress.md, session 8).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gemm_probe.py
"""

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import onnxruntime as ort
import torch
from onnx import TensorProto, helper

N = 768


def session(op: str, a_type: int, b_type: int, out_type: int) -> Any:
    """An ONNX Runtime session (1 thread) of one ``op`` over two N x N inputs."""
    inputs = [helper.make_tensor_value_info(x, t, [N, N]) for x, t in (("a", a_type), ("b", b_type))]
    out = helper.make_tensor_value_info("y", out_type, [N, N])
    graph = helper.make_graph([helper.make_node(op, ["a", "b"], ["y"])], "g", inputs, [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def median_s(call: Callable[[], object], calls: int = 40) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    gop = 2 * N**3 / 1e9
    int8 = session("MatMulInteger", TensorProto.UINT8, TensorProto.INT8, TensorProto.INT32)
    a8 = rng.integers(0, 255, (N, N), dtype=np.uint8)
    b8 = rng.integers(-127, 127, (N, N), dtype=np.int8)
    print("onnxruntime int8 GOP/s", round(gop / median_s(lambda: int8.run(None, {"a": a8, "b": b8})), 1))
    fp32 = session("MatMul", TensorProto.FLOAT, TensorProto.FLOAT, TensorProto.FLOAT)
    a, b = rng.random((N, N), dtype=np.float32), rng.random((N, N), dtype=np.float32)
    print("onnxruntime fp32 GFLOP/s", round(gop / median_s(lambda: fp32.run(None, {"a": a, "b": b})), 1))
    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    print("torch fp32 GFLOP/s", round(gop / median_s(lambda: ta @ tb), 1))
    print("onnxruntime", ort.__version__, "torch", torch.__version__)


if __name__ == "__main__":
    main()
