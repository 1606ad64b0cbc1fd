"""Other targets: OpenVINO IR (CPU), Core ML (convert and save anywhere; predict on macOS), TensorRT.

TensorRT runs through ONNX Runtime's TensorRT execution provider (or the ``tensorrt`` package) and
needs an NVIDIA GPU; where there is none, :func:`tensorrt_unavailable_reason` says why it is skipped.
"""

from __future__ import annotations

import io
import platform
import shutil
import tarfile
import tempfile
import warnings
from pathlib import Path
from typing import Any

from keelml.core.errors import KeelError, missing_dependency
from keelml.export.protocol import ExportSourceLike


class PlatformUnavailableError(KeelError, RuntimeError):
    """The target runs only on another platform or hardware (Core ML: macOS; TensorRT: NVIDIA GPU)."""

    exit_code = 8


def openvino_ir(graph: bytes) -> dict[str, bytes]:
    """ONNX -> OpenVINO IR files ``model.xml`` + ``model.bin`` (weights kept in fp32)."""
    try:
        import openvino as ov  # type: ignore[import-untyped]
    except ImportError as exc:
        raise missing_dependency("openvino", "openvino", "the OpenVINO target") from exc
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "model.onnx"
        source.write_bytes(graph)
        model = ov.convert_model(str(source))
        ov.save_model(model, str(Path(tmp) / "model.xml"), compress_to_fp16=False)
        return {name: (Path(tmp) / name).read_bytes() for name in ("model.xml", "model.bin")}


# The batch sizes a Core ML export accepts are declared in the model (1 to this); the runtime
# (keelml.export.coreml_runtime) splits larger batches into chunks of this size.
COREML_MAX_BATCH = 64


def coreml_package(source: ExportSourceLike, *, max_batch: int = COREML_MAX_BATCH) -> dict[str, bytes]:
    """torch -> a Core ML ``mlprogram`` package, stored as ``model.mlpackage.tar``.

    Conversion works on Linux; prediction (:class:`keelml.export.coreml_runtime.CoreMlModel`) needs
    macOS, where Apple's Core ML runtime is. Integer inputs are declared int32, the others float32.
    """
    try:
        import coremltools as ct  # type: ignore[import-untyped]
    except ImportError as exc:
        raise missing_dependency("coremltools", "coreml", "the Core ML target") from exc
    import numpy as np
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        trace: Any = torch.jit.trace  # untyped in torch
        traced = trace(source.module.eval(), tuple(source.example_inputs))
        inputs = []
        for name, example in zip(source.input_names, source.example_inputs, strict=True):
            dims = [ct.RangeDim(1, max_batch)] + [
                ct.RangeDim(1, 512) if i in source.dynamic_axes.get(name, {}) else int(d)
                for i, d in enumerate(example.shape)
                if i > 0
            ]
            dtype = np.int32 if example.dtype in (torch.int64, torch.int32) else np.float32
            inputs.append(ct.TensorType(name=name, shape=ct.Shape(shape=dims), dtype=dtype))
        model = ct.convert(
            traced, inputs=inputs, convert_to="mlprogram", minimum_deployment_target=ct.target.macOS13
        )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model.mlpackage"
        model.save(str(folder))
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(str(folder), arcname="model.mlpackage")
        return {"model.mlpackage.tar": buffer.getvalue()}


def coreml_unavailable() -> PlatformUnavailableError:
    return PlatformUnavailableError(
        "Core ML models predict only on macOS",
        expected="macOS (Apple's Core ML runtime)",
        received=f"{platform.system()} {platform.machine()}",
        fix="copy the exported .mlpackage to a Mac (or serve the ONNX int8/fp32 variant here)",
    )


def _nvidia_gpu_present() -> bool:
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def tensorrt_unavailable_reason() -> str | None:
    """None when TensorRT can run here (ONNX Runtime has its TensorRT provider), else why not."""
    try:
        import onnxruntime as ort  # type: ignore[import-untyped]
    except ImportError:
        return "onnxruntime is not installed"
    providers = ort.get_available_providers()
    if "TensorrtExecutionProvider" in providers:
        return None
    gpu = "an NVIDIA GPU is here, but" if _nvidia_gpu_present() else "no NVIDIA GPU here, and"
    return (
        f"{gpu} this onnxruntime offers only {', '.join(providers)} (no TensorRT provider): install "
        "onnxruntime-gpu and TensorRT's libraries on a machine with an NVIDIA GPU "
        "(benchmarks/gpu/tensorrt_check.sh does, given a package index)"
    )


def tensorrt_session(graph: bytes, *, fp16: bool = True, cache_dir: str | None = None) -> Any:
    """An ONNX Runtime session on the TensorRT execution provider (CUDA as the fallback for other ops)."""
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        raise PlatformUnavailableError(
            "TensorRT is not available on this machine",
            expected="an NVIDIA GPU with onnxruntime-gpu (TensorRT provider) or tensorrt",
            received=reason,
            fix="run on a GPU machine (benchmarks/gpu/tensorrt_check.sh), or use the ONNX CPU variants",
        )
    import onnxruntime as ort

    options: dict[str, Any] = {"trt_fp16_enable": fp16}
    if cache_dir:
        options.update(trt_engine_cache_enable=True, trt_engine_cache_path=cache_dir)
    providers = [("TensorrtExecutionProvider", options), "CUDAExecutionProvider", "CPUExecutionProvider"]
    return ort.InferenceSession(graph, providers=providers)
