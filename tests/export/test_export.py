from __future__ import annotations

import numpy as np
import pytest
import torch

from keelml import ArtifactRef, Workspace
from keelml.core.errors import InvalidInputError, NotFoundError
from keelml.export import ExportResult
from keelml.export.bundle import read_bundle
from keelml.export.onnx_export import UnsupportedModelError, to_onnx
from keelml.export.runtime import OnnxModel
from keelml.train.exporting import ExportSource, probability_module
from keelml.train.tabular import TabularClassifier
from tests.train.conftest import loans


def test_variants_are_new_versions_with_lineage_tags_and_accuracy(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, result = exported
    assert result.exporter == "dynamo" and result.fallback_reason is None
    assert result.parity_max_abs_diff < 1e-4
    assert [v.variant for v in result.variants] == ["fp32", "int8"]
    fp32, int8 = (ws.models.show(str(v.ref)) for v in result.variants)
    assert (fp32.version, int8.version) == (2, 3)
    assert fp32.tags["keel.format"] == "onnx" and fp32.tags["keel.variant"] == "fp32"
    assert int8.tags["keel.parent"] == "loan-clf@1" and int8.tags["keel.variant"] == "int8"
    assert int8.tags["keel.loader"] == "keelml.export.runtime:load_model"
    assert {"test_accuracy", "slice_north_accuracy", "slice_south_accuracy", "accuracy_drop"} <= set(
        int8.metrics
    )
    # the fp32 export reproduces the torch model's accuracy exactly on the same test split
    assert fp32.metrics["test_accuracy"] == pytest.approx(result.parent_metrics["test_accuracy"])
    assert int8.metrics["size_bytes"] < fp32.metrics["size_bytes"]
    edges = ws.catalog.lineage.graph("model:loan-clf@1", "downstream").edges
    assert {(e.dst, e.relation) for e in edges} >= {
        ("model:loan-clf@2", "exported"),
        ("model:loan-clf@3", "quantized"),
    }
    assert result.winner in ("fp32", "int8")


def test_serving_model_prefers_the_int8_child_and_serves_exports_as_they_are(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, _ = exported
    info, model = ws.exports.serving_model("loan-clf@1")
    assert info.version == 3 and isinstance(model, OnnxModel) and model.info.variant == "int8"
    info, model = ws.exports.serving_model("loan-clf@2")
    assert info.version == 2 and model.info.variant == "fp32"
    parent = ws.models.show("loan-clf@1")
    torch_model = TabularClassifier.from_bytes(ws.artifacts.read_bytes(ArtifactRef(parent.artifact)))
    rows = loans(40, seed=3).to_pylist()
    # fp32 matches the torch model to float precision; rows are plain dicts (no pandas)
    expected = torch_model.predict_proba(loans(40, seed=3))
    np.testing.assert_allclose(model.predict_proba(rows), expected, atol=1e-5)


def test_a_torch_version_without_exports_says_run_keel_export(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, _ = exported
    from keelml.pipeline.training import train_tabular
    from keelml.train import TabularConfig

    train_tabular(ws, "loans", name="other-clf", config=TabularConfig(model="logreg", epochs=1))
    with pytest.raises(NotFoundError) as info:
        ws.exports.serving_model("other-clf@1")
    assert "keel export other-clf@1" in str(info.value)


def test_exporting_an_export_or_an_unknown_variant_is_refused(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, _ = exported
    with pytest.raises(InvalidInputError, match="already an export"):
        ws.exports.export("loan-clf@3")
    with pytest.raises(InvalidInputError, match="unknown export variant int3"):
        ws.exports.export("loan-clf@1", variants=("int3",))


def test_an_unsupported_operator_is_named_with_the_fallback_tried() -> None:
    class Histogram(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(4, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(x) + torch.histc(x, bins=3)[:3]

    source = ExportSource("tabular", probability_module(Histogram()), (torch.randn(2, 4),), ("features",),
                          {"features": {0: "batch"}}, ("a", "b", "c"), (), {}, {})  # fmt: skip
    with pytest.raises(UnsupportedModelError) as info:
        to_onnx(source)
    assert "aten::histc" in info.value.ops
    assert "tried dynamo then legacy" in str(info.value)


def test_bundle_holds_graph_manifest_and_preprocessing(exported: tuple[Workspace, ExportResult]) -> None:
    ws, result = exported
    info, files = read_bundle(ws.exports.bundle("loan-clf@3"))
    assert set(files) == {"model.onnx"}
    assert info.task == "tabular" and info.variant == "int8" and info.parent == "loan-clf@1"
    assert [(f.name, f.kind) for f in info.fields] == [
        ("x", "number"),
        ("noise", "number"),
        ("region", "category"),
    ]
    assert info.opset == result.opset and info.preprocessing["kind"] == "tabular"
