"""The export flow behind ``ws.exports.export``: load, export, quantize, evaluate, register.

A variant that misses the accuracy budget is still registered (so it can be inspected) but is tagged
``keel.within_budget=false``; it is never the winner and never picked for serving.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError
from keelml.core.progress import Progress
from keelml.core.refs import ArtifactRef, ModelRef
from keelml.core.workspace import Workspace
from keelml.export.api import (
    DEFAULT_LOADERS,
    RUNTIME_LOADER,
    ExportResult,
    VariantResult,
    dataset_ref,
    requirements,
)
from keelml.export.bundle import BundleInfo, InputField, write_bundle
from keelml.export.coreml_runtime import coreml_can_predict
from keelml.export.evaluation import SliceLike, TestSplit, accuracies
from keelml.export.features import columns_of
from keelml.export.fusion import FUSED_VARIANTS, Fusion, FusionReport, fuse
from keelml.export.onnx_export import LEGACY_OPSET, OnnxGraph, to_onnx
from keelml.export.protocol import Exportable, ExportSourceLike
from keelml.export.quantize import (
    CalibrationSchemaError,
    count_ops,
    dynamic_int8,
    fp16,
    int4_weights,
    static_int8,
)
from keelml.export.runtime import Preprocess, load_model
from keelml.export.targets import coreml_package, openvino_ir

CALIBRATION_ROWS = 128
GRAPHS = {"onnx": "model.onnx", "openvino": "model.xml", "coreml": "model.mlpackage.tar"}


def load_torch_model(ws: Workspace, info: Any) -> Exportable:
    """The trained model of a registered version, rebuilt by its loader string (never a static import)."""
    if "keel.format" in info.tags:
        raise InvalidInputError(
            f"{info.name}@{info.version} is already an export ({info.tags.get('keel.variant')})",
            expected="a trained (torch) model version",
            received=f"keel.format={info.tags['keel.format']}",
            fix=f"export its parent {info.tags.get('keel.parent', '')} instead",
        )
    loader = info.tags.get("keel.loader") or DEFAULT_LOADERS.get(str(info.tags.get("keel.task")))
    if not loader:
        raise InvalidInputError(
            f"cannot tell how to load {info.name}@{info.version}",
            expected="a keel.loader or keel.task tag on the version",
            received=", ".join(sorted(info.tags)),
            fix="re-register the model with keelml",
        )
    module_name, _, attr = str(loader).partition(":")
    target: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        target = getattr(target, part)
    model = target(ws.artifacts.read_bytes(ArtifactRef(info.artifact)))
    if not isinstance(model, Exportable):
        raise InvalidInputError(
            f"{info.name}@{info.version} cannot be exported",
            expected="a model with export_source() (keelml text or tabular classifiers)",
            received=type(model).__name__,
            fix="export a model trained with `keel train`",
        )
    return model


def calibration_batches(
    source: ExportSourceLike, info: BundleInfo, files: Mapping[str, bytes], rows: Any, batch_size: int = 16
) -> list[dict[str, npt.NDArray[Any]]]:
    """Preprocessed calibration batches; rows must have the model's fields with values of their kind."""
    names = [f.name for f in info.fields]
    try:
        columns = columns_of(rows, names)
    except InvalidInputError as exc:
        raise CalibrationSchemaError(
            "calibration data does not have the model's input fields",
            expected=", ".join(f"{f.name} ({f.kind})" for f in info.fields),
            received=exc.received or exc.problem,
            fix="pass rows with the same columns as the training data",
        ) from exc
    for f in info.fields:
        values = [v for v in columns[f.name] if v is not None]
        wrong = [v for v in values if not _of_kind(v, f.kind)]
        if wrong:
            raise CalibrationSchemaError(
                f"calibration column {f.name!r} has values of the wrong kind",
                expected=f"{f.kind} values",
                received=f"{type(wrong[0]).__name__} {str(wrong[0])[:40]!r} ({len(wrong)} of {len(values)})",
                fix="pass rows with the same column types as the training data",
            )
    n = len(columns[names[0]]) if names else 0
    prep = Preprocess(info, files)
    return [
        prep([{k: columns[k][i] for k in names} for i in range(s, min(n, s + batch_size))])
        for s in range(0, n, batch_size)
    ]


def _of_kind(value: Any, kind: str) -> bool:
    if kind == "text":
        return isinstance(value, str)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True  # any value can be a category


def _variant_files(
    variant: str, base: OnnxGraph, source: ExportSourceLike, batches: Sequence[Mapping[str, Any]],
    fused: bytes | None = None,
) -> tuple[str, dict[str, bytes]]:  # fmt: skip
    """(format, files) of one variant; fp32, int8 and fp16 start from the ``fused`` graph when given."""
    graph = fused if fused is not None and variant in FUSED_VARIANTS else base.graph
    if variant == "fp32":
        return "onnx", {"model.onnx": graph}
    if variant == "int8":
        return "onnx", {"model.onnx": dynamic_int8(graph)}
    if variant == "int8-static":
        return "onnx", {"model.onnx": static_int8(base.graph, batches)}
    if variant == "int4":
        return "onnx", {"model.onnx": int4_weights(base.graph)}
    if variant == "fp16":
        return "onnx", {"model.onnx": fp16(graph)}
    if variant == "openvino":
        return "openvino", openvino_ir(base.graph)
    return "coreml", coreml_package(source)


def _graph_size(files: Mapping[str, bytes]) -> int:
    return sum(len(v) for k, v in files.items() if k.startswith("model."))


def run_export(
    ws: Workspace,
    spec: str,
    variants: Sequence[str],
    *,
    calibration: Any,
    accuracy_budget: float,
    slices: Sequence[SliceLike],
    exporter: str,
    register: bool,
    progress: Progress,
    fusion: bool = True,
) -> ExportResult:
    if not 0 <= accuracy_budget < 1:
        raise InvalidInputError(
            "the accuracy budget is a fraction of accuracy (0.005 = half a point)",
            expected="0 <= budget < 1", received=str(accuracy_budget),
            fix="pass e.g. --accuracy-budget 0.005",
        )  # fmt: skip
    models: Any = ws.models
    parent = models.show(spec)
    model = load_torch_model(ws, parent)
    source = model.export_source()
    template = BundleInfo(
        task=source.task, classes=tuple(source.classes),
        fields=tuple(InputField(n, k) for n, k in source.fields), variant="fp32",
        parent=f"{parent.name}@{parent.version}", opset=None, input_names=tuple(source.input_names),
        preprocessing=dict(source.preprocessing),
    )  # fmt: skip
    dref = dataset_ref(parent.tags)
    batches: list[dict[str, Any]] = []
    if "int8-static" in variants:  # checked before the slow steps: a wrong schema fails fast
        datasets: Any = ws.datasets
        rows = calibration if calibration is not None else datasets.read(dref).slice(0, CALIBRATION_ROWS)
        batches = calibration_batches(source, template, source.files, rows)
    progress.stage("exporting to ONNX")
    base = to_onnx(source, exporter=exporter)
    fused = Fusion(FusionReport(False, "not requested (fusion=False)"))
    if fusion and any(v in FUSED_VARIANTS for v in variants):
        progress.stage("fusing transformer layers")
        fused = fuse(source)
    template = BundleInfo(**{**_fields(template), "opset": base.opset, "exporter": base.exporter})
    training: Any = ws.training
    table, label = training.test_split(dref, dict(source.config), task=source.task)
    split = TestSplit.of(table, label, slices)
    progress.stage("evaluating the torch model")
    reference = accuracies(model, source.classes, split)  # type: ignore[arg-type]  # has predict_proba
    results: list[VariantResult] = []
    for variant in variants:
        progress.stage(f"{variant} variant")
        fmt, files = _variant_files(variant, base, source, batches, fused.graph)
        is_fused = fused.graph is not None and variant in FUSED_VARIANTS
        fused_info = {"exporter": "legacy+fusion", "opset": LEGACY_OPSET} if is_fused else {}
        info = BundleInfo(
            **{**_fields(template), "variant": variant, "format": fmt, "graph": GRAPHS[fmt], **fused_info}
        )
        bundle = write_bundle(info, {**source.files, **files})
        artifact = ws.artifacts.put_bytes(bundle)
        size = _graph_size(files)
        metrics: dict[str, float] = {"size_bytes": float(size)}
        note = ""
        if variant == "int4" and count_ops(files["model.onnx"]).get("MatMulNBits", 0) == 0:
            note = "no MatMul large enough for 4-bit blocks: the graph is the fp32 one"
        if fmt == "coreml" and not coreml_can_predict():
            note = "Core ML predicts only on macOS (with coremltools): accuracy not measured here"
            within = False
            drop = float("nan")
        else:
            runtime = load_model(bundle, threads=1)
            metrics.update(accuracies(runtime, source.classes, split))
            drop = reference["test_accuracy"] - metrics["test_accuracy"]
            metrics["accuracy_drop"] = drop
            within = drop <= accuracy_budget + 1e-12
        if variant == "fp32":
            metrics["parity_max_abs_diff"] = base.max_abs_diff
        if is_fused and fused.report.max_abs_diff is not None:
            metrics["fused_parity_max_abs_diff"] = fused.report.max_abs_diff
        ref = (
            _register(ws, parent, variant, fmt, artifact, metrics, within, base, source.task, is_fused)
            if register
            else None
        )
        results.append(VariantResult(variant, ref, artifact, size, metrics, drop, within, note))
    eligible = [r for r in results if r.within_budget]
    winner = min(eligible, key=lambda r: r.size_bytes).variant if eligible else None
    return ExportResult(
        ModelRef(parent.name, parent.version), base.exporter, base.fallback_reason, base.opset,
        base.max_abs_diff,
        reference, tuple(results), accuracy_budget, winner, fused.report,
    )  # fmt: skip


def _fields(info: BundleInfo) -> dict[str, Any]:
    return {name: getattr(info, name) for name in info.__dataclass_fields__}


def _register(
    ws: Workspace, parent: Any, variant: str, fmt: str, artifact: ArtifactRef, metrics: Mapping[str, float],
    within: bool, base: OnnxGraph, task: str, is_fused: bool = False,
) -> ModelRef:  # fmt: skip
    models: Any = ws.models
    clean = {k: v for k, v in metrics.items() if not np.isnan(v)}
    parent_spec = f"{parent.name}@{parent.version}"
    tags = {"keel.format": fmt, "keel.variant": variant, "keel.parent": parent_spec,
            "keel.within_budget": "true" if within else "false", "keel.exporter": base.exporter,
            "keel.fused": "true" if is_fused else "false"}  # fmt: skip
    if base.fallback_reason:  # why dynamo was not used: kept with the version, not only in the result
        tags["keel.exporter_fallback"] = base.fallback_reason[:500]
    with models.run(experiment=parent.name, run_name=f"{variant} export of {parent_spec}") as run:
        run.log_params({"variant": variant, "format": fmt, "parent": parent_spec, "exporter": base.exporter,
                        "opset": base.opset, "fused": is_fused})  # fmt: skip
        run.log_metrics(clean)
        run.set_tags(tags)
        info = models.register(
            parent.name, run, artifact=artifact, dataset=dataset_ref(parent.tags), metrics=clean,
            loader=RUNTIME_LOADER, pip_requirements=requirements(task, variant), task=task, tags=tags,
        )  # fmt: skip
    ref = ModelRef(info.name, info.version)
    with ws.catalog.begin() as conn:
        relation = "exported" if variant in ("fp32", "openvino", "coreml") else "quantized"
        ws.catalog.lineage.add_edge(conn, f"model:{parent_spec}", ref.node_id, relation)
    return ref
