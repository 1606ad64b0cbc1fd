"""Quantization of an exported ONNX graph: dynamic int8 (default), static int8, 4-bit weights, fp16.

- ``int8``: dynamic quantization, int8 weights per output channel; activations quantized at run time.
- ``int8-static``: QDQ int8 with activation ranges from calibration rows; only MatMul/Gemm are
  quantized, so LayerNorm, GELU, Softmax and residual adds stay in float.
- ``int4``: weight-only 4-bit blocks (``MatMulNBits``) for MatMuls with at least ``min_elements`` weights.
- ``fp16``: float16 weights and compute, float32 inputs and outputs.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError, missing_dependency

QUANTIZED = ("int8", "int8-static", "int4", "fp16")
FLOAT_OPS_KEPT = ("LayerNormalization", "Gelu", "Softmax", "Add")  # never quantized by int8-static
STATIC_OPS = ("MatMul", "Gemm")  # the only ops int8-static quantizes (inputs; outputs stay float)


class CalibrationSchemaError(InvalidInputError):
    """Calibration rows do not have the model's input fields or kinds."""


def _ort_quantization() -> Any:
    try:
        import onnxruntime.quantization as q  # type: ignore[import-untyped]
    except ImportError as exc:
        raise missing_dependency("onnxruntime", "export", "ONNX quantization") from exc
    return q


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ONNX Runtime's quantizers log advice and per-node notes on the root logger; keep the CLI clean."""
    loggers = [logging.getLogger(), logging.getLogger("onnxruntime.quantization.matmul_nbits_quantizer")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _io(graph: bytes, work: Any) -> tuple[Path, Path]:
    folder = Path(work)
    source = folder / "model.onnx"
    source.write_bytes(graph)
    return source, folder / "quantized.onnx"


# Weights use 7 of their 8 bits (``reduce_range``): on x86 CPUs without VNNI (AVX2, AVX-512 before
# Cascade Lake) ONNX Runtime multiplies uint8 activations by int8 weights with vpmaddubsw, whose int16
# pair sums saturate at full range. A logistic regression exported at full range scored p(bad) 0.51
# instead of fp32's 0.35 on an AVX2 EPYC; at 7 bits it matched fp32 within 3e-4. PyTorch's x86
# quantization makes the same choice. VNNI CPUs lose one bit of weight precision.
REDUCE_RANGE = True


def dynamic_int8(graph: bytes, *, reduce_range: bool = REDUCE_RANGE) -> bytes:
    """Int8 weights per output channel (MatMul, Gemm, embedding Gather); activations at run time.

    ``reduce_range=False`` uses all 8 bits of the weights: only safe on CPUs with VNNI (see above).
    """
    q = _ort_quantization()
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        source, target = _io(graph, tmp)
        q.quantize_dynamic(
            str(source), str(target), per_channel=True, weight_type=q.QuantType.QInt8,
            reduce_range=reduce_range,
            # fused graphs hold com.microsoft ops whose outputs shape inference cannot type: float
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": 1},
        )  # fmt: skip
        return target.read_bytes()


class _Feeds:
    """An ONNX Runtime CalibrationDataReader over preprocessed batches."""

    def __init__(self, batches: Sequence[Mapping[str, npt.NDArray[Any]]]) -> None:
        self._iter: Iterator[Mapping[str, npt.NDArray[Any]]] = iter(batches)

    def get_next(self) -> dict[str, npt.NDArray[Any]] | None:
        batch = next(self._iter, None)
        return None if batch is None else dict(batch)

    def rewind(self) -> None:  # the calibrator reads once; kept for the reader protocol
        return None


def static_int8(graph: bytes, batches: Sequence[Mapping[str, npt.NDArray[Any]]]) -> bytes:
    """QDQ int8 of MatMul/Gemm with activation ranges from ``batches`` (LayerNorm/GELU/Softmax/Add float)."""
    q = _ort_quantization()
    if not batches:
        raise CalibrationSchemaError(
            "static int8 quantization needs calibration rows",
            expected="at least one row with the model's input fields",
            received="no rows",
            fix="pass calibration rows (e.g. a sample of the training data)",
        )
    reader = _Feeds(batches)
    with tempfile.TemporaryDirectory() as tmp, _quiet():
        source, target = _io(graph, tmp)
        q.quantize_static(
            str(source), str(target), reader, quant_format=q.QuantFormat.QDQ, per_channel=True,
            activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8, reduce_range=REDUCE_RANGE,
            op_types_to_quantize=list(STATIC_OPS), calibrate_method=q.CalibrationMethod.MinMax,
            # MatMul/Gemm results stay float: else the bias/residual Adds and Softmax read them rounded
            extra_options={"MatMulConstBOnly": True, "OpTypesToExcludeOutputQuantization": list(STATIC_OPS)},
        )  # fmt: skip
        return float_readers_read_float(target.read_bytes())


def float_readers_read_float(graph: bytes) -> bytes:
    """Point every reader of a Q -> DQ activation other than MatMul/Gemm back at the float tensor.

    The QDQ quantizer hands the dequantized copy to *all* readers of a quantized activation, so a
    LayerNorm output read by the next MatMul and by the residual Add reached the Add rounded to 8 bits.
    """
    import onnx

    model = onnx.load_model_from_string(graph)
    nodes = model.graph.node
    quantized = {n.output[0]: n.input[0] for n in nodes if n.op_type == "QuantizeLinear"}
    float_of = {
        n.output[0]: quantized[n.input[0]]
        for n in nodes
        if n.op_type == "DequantizeLinear" and n.input[0] in quantized
    }
    for node in nodes:
        if node.op_type not in (*STATIC_OPS, "QuantizeLinear", "DequantizeLinear"):
            for i, name in enumerate(node.input):
                node.input[i] = float_of.get(name, name)
    out: bytes = model.SerializeToString()
    return out


def _small_matmuls(model: Any, min_elements: int) -> list[str]:
    weights = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}
    return [
        n.name
        for n in model.graph.node
        if n.op_type == "MatMul" and weights.get(n.input[1], min_elements) < min_elements
    ]


def int4_weights(graph: bytes, *, block_size: int = 32, min_elements: int = 4096) -> bytes:
    """4-bit symmetric block weights (``MatMulNBits``) for MatMuls with >= ``min_elements`` weights."""
    import onnx

    _ort_quantization()
    from onnxruntime.quantization.matmul_nbits_quantizer import (  # type: ignore[import-untyped]
        DefaultWeightOnlyQuantConfig,
        MatMulNBitsQuantizer,
    )

    model = onnx.load_model_from_string(graph)
    config = DefaultWeightOnlyQuantConfig(block_size=block_size, is_symmetric=True, accuracy_level=4)
    with _quiet():
        quantizer = MatMulNBitsQuantizer(
            model, block_size=block_size, is_symmetric=True, accuracy_level=4,
            nodes_to_exclude=_small_matmuls(model, min_elements), algo_config=config,
        )  # fmt: skip
        quantizer.process()
    out: bytes = quantizer.model.model.SerializeToString()
    return out


def fp16(graph: bytes) -> bytes:
    """Float16 weights and compute; inputs and outputs stay float32 (so callers do not change)."""
    import onnx

    _ort_quantization()
    from onnxruntime.transformers.float16 import convert_float_to_float16  # type: ignore[import-untyped]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = convert_float_to_float16(onnx.load_model_from_string(graph), keep_io_types=True)
    out: bytes = model.SerializeToString()
    return out


def count_ops(graph: bytes) -> dict[str, int]:
    """Operator histogram of a graph (which ops are quantized, which stay float)."""
    import onnx

    counts: dict[str, int] = {}
    for node in onnx.load_model_from_string(graph).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts
