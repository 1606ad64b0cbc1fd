from __future__ import annotations

import platform
from typing import Any

import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.export import ExportResult
from keelml.export import flow as export_flow
from keelml.export.quantize import CalibrationSchemaError, count_ops
from keelml.export.runtime import OnnxModel, OpenVinoModel, load_model
from keelml.export.targets import PlatformUnavailableError, tensorrt_session, tensorrt_unavailable_reason
from tests.train.conftest import loans


def test_static_int8_fp16_and_openvino_variants_are_registered_and_predict(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, _ = exported
    calibration = loans(64, seed=5).to_pylist()
    result = ws.exports.export("loan-clf@1", variants=("int8-static", "fp16", "openvino"), calibration=calibration,
                               accuracy_budget=0.05)  # fmt: skip
    by_name = {v.variant: v for v in result.variants}
    ops = count_ops(_graph(ws, str(by_name["int8-static"].ref)))
    # MatMul/Gemm inputs are quantized (QDQ pairs); Softmax and the rest stay float
    assert ops.get("QuantizeLinear", 0) > 0 and ops.get("DequantizeLinear", 0) > 0 and ops.get("Softmax") == 1
    static = OnnxModel.from_bytes(ws.exports.bundle(str(by_name["int8-static"].ref)))
    assert static.predict_proba(calibration[:3]).shape == (3, 2)
    for v in result.variants:
        assert v.metrics["accuracy_drop"] <= 0.05 and v.within_budget
    vino = load_model(ws.exports.bundle(str(by_name["openvino"].ref)))
    assert isinstance(vino, OpenVinoModel) and vino.predict_proba(calibration[:3]).shape == (3, 2)
    assert ws.models.show(str(by_name["openvino"].ref)).tags["keel.format"] == "openvino"


def _graph(ws: Workspace, spec: str) -> bytes:
    from keelml.export.bundle import read_bundle

    return read_bundle(ws.exports.bundle(spec))[1]["model.onnx"]


def test_calibration_rows_with_the_wrong_schema_are_refused(exported: tuple[Workspace, ExportResult]) -> None:
    ws, _ = exported
    with pytest.raises(CalibrationSchemaError, match="input fields") as info:
        ws.exports.export(
            "loan-clf@1", variants=("int8-static",), calibration=pa.table({"x": [1.0], "age": [3]})
        )
    assert "noise (number), region (category)" in str(info.value)
    bad_kind = [{"x": "high", "noise": 0.1, "region": "north"}]
    with pytest.raises(CalibrationSchemaError, match="'x' has values of the wrong kind"):
        ws.exports.export("loan-clf@1", variants=("int8-static",), calibration=bad_kind)


def test_a_variant_that_misses_the_budget_is_never_the_winner(
    exported: tuple[Workspace, ExportResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = exported
    real = export_flow.accuracies

    def worse_int4(predictor: Any, *args: Any, **kw: Any) -> dict[str, float]:
        out = real(predictor, *args, **kw)
        if getattr(getattr(predictor, "info", None), "variant", None) == "int4":
            out["test_accuracy"] -= 0.2  # as if 4-bit weights had broken the model
        return out

    monkeypatch.setattr(export_flow, "accuracies", worse_int4)
    result = ws.exports.export("loan-clf@1", variants=("int4",), accuracy_budget=0.01)
    (int4,) = result.variants
    assert not int4.within_budget and result.winner is None
    assert ws.models.show(str(int4.ref)).tags["keel.within_budget"] == "false"


def test_core_ml_converts_on_linux_and_says_plainly_it_predicts_only_on_macos(
    exported: tuple[Workspace, ExportResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = exported
    monkeypatch.setattr(platform, "system", lambda: "Linux")  # the off-macOS path, on a Mac too
    result = ws.exports.export("loan-clf@1", variants=("coreml",))
    (coreml,) = result.variants
    assert coreml.size_bytes > 0 and "macOS" in coreml.note and not coreml.within_budget
    with pytest.raises(PlatformUnavailableError, match="only on macOS"):
        load_model(ws.exports.bundle(str(coreml.ref)))
    with pytest.raises(PlatformUnavailableError, match="only on macOS"):
        ws.exports.serving_model(str(coreml.ref))


def test_tensorrt_is_skipped_with_a_reason_without_an_nvidia_gpu(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, _ = exported
    reason = tensorrt_unavailable_reason()
    if reason is None:  # a GPU machine: the TensorRT session must work
        session = tensorrt_session(_graph(ws, "loan-clf@2"), fp16=False)
        assert session.get_providers()[0] == "TensorrtExecutionProvider"
        return
    assert "NVIDIA GPU" in reason
    with pytest.raises(PlatformUnavailableError, match="TensorRT is not available"):
        tensorrt_session(_graph(ws, "loan-clf@2"))


def test_int8_probabilities_follow_fp32_on_cpus_without_vnni(
    exported: tuple[Workspace, ExportResult],
) -> None:
    """Full-range int8 weights saturate ONNX Runtime's AVX2 kernel (the int8 model flipped labels of
    an AVX2 EPYC); 7-bit weights keep int8 next to fp32 on every x86 CPU."""
    ws, result = exported
    by_variant = {v.variant: v for v in result.variants}
    rows = loans(64, seed=7).drop(["label"]).to_pylist()
    fp32 = load_model(ws.exports.bundle(str(by_variant["fp32"].ref))).predict_proba(rows)
    int8 = load_model(ws.exports.bundle(str(by_variant["int8"].ref))).predict_proba(rows)
    assert float(abs(fp32 - int8).max()) < 0.05


def test_tensorrt_reason_says_when_a_gpu_is_here_but_the_provider_is_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import onnxruntime as ort

    from keelml.export import targets

    # a CPU build of onnxruntime, whatever this machine has
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    monkeypatch.setattr(targets, "_nvidia_gpu_present", lambda: True)
    reason = targets.tensorrt_unavailable_reason() or ""
    assert reason.startswith("an NVIDIA GPU is here, but") and "no TensorRT provider" in reason
    monkeypatch.setattr(targets, "_nvidia_gpu_present", lambda: False)
    assert (targets.tensorrt_unavailable_reason() or "").startswith("no NVIDIA GPU here")
