"""Export paths the main tests do not take: the legacy fallback, and shapes baked in by tracing."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from keelml import Workspace
from keelml.export import ExportResult, onnx_export
from keelml.export.bundle import read_bundle
from keelml.export.onnx_export import ParityError, to_onnx
from keelml.pipeline.training import train_tabular
from keelml.train import TabularConfig
from keelml.train.exporting import ExportSource, probability_module

TEXT_AXES = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"}}


class DataDependentBranch(torch.nn.Module):
    """Branches on a tensor's value: torch.export cannot guard on it, TorchScript tracing takes one path."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.abs().sum() > 0:
            return self.linear(x)
        return -self.linear(x)


class MeanOverTracedLength(torch.nn.Module):
    """Divides by ``int(ids.shape[1])``: tracing bakes the example's sequence length into the graph."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = torch.nn.Embedding(10, 3)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        length = int(ids.shape[1])
        return (self.embedding(ids) * mask.unsqueeze(-1)).sum(dim=1) / length


def _tabular(module: torch.nn.Module) -> ExportSource:
    torch.manual_seed(0)
    return ExportSource("tabular", probability_module(module), (torch.randn(2, 4),), ("features",),
                        {"features": {0: "batch"}}, ("a", "b", "c"), (), {}, {})  # fmt: skip


def test_a_model_dynamo_cannot_export_falls_back_to_legacy_with_the_reason() -> None:
    torch.manual_seed(0)
    graph = to_onnx(_tabular(DataDependentBranch()))
    assert graph.exporter == "legacy" and graph.opset == onnx_export.LEGACY_OPSET
    assert graph.fallback_reason is not None and "data-dependent" in graph.fallback_reason
    assert graph.max_abs_diff < 1e-4  # the parity check ran on the legacy graph


def test_a_legacy_fallback_is_recorded_on_the_registered_version(
    exported: tuple[Workspace, ExportResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    ws, _ = exported
    train_tabular(ws, "loans", name="fallback-clf", config=TabularConfig(model="logreg", epochs=1))

    def dynamo_fails(module: Any, source: Any) -> bytes:
        raise RuntimeError("Could not guard on data-dependent expression Eq(u0, 1)")

    monkeypatch.setattr(onnx_export, "_dynamo", dynamo_fails)
    result = ws.exports.export("fallback-clf@1", variants=("fp32",))
    assert result.exporter == "legacy" and result.opset == onnx_export.LEGACY_OPSET
    assert result.fallback_reason == "RuntimeError: Could not guard on data-dependent expression Eq(u0, 1)"
    version = ws.models.show(str(result.variants[0].ref))
    assert version.tags["keel.exporter"] == "legacy" and version.tags["keel.fused"] == "false"
    assert version.tags["keel.exporter_fallback"] == result.fallback_reason
    assert version.metrics["parity_max_abs_diff"] < 1e-4
    assert read_bundle(ws.exports.bundle(str(result.variants[0].ref)))[0].exporter == "legacy"


def test_a_sequence_length_baked_into_the_graph_fails_parity_at_another_length() -> None:
    torch.manual_seed(0)
    ids = torch.tensor([[1, 2, 3, 4, 5], [6, 7, 0, 0, 0]])
    source = ExportSource("text", probability_module(MeanOverTracedLength()), (ids, (ids > 0).long()),
                          ("input_ids", "attention_mask"), TEXT_AXES, ("a", "b", "c"), (), {}, {})  # fmt: skip
    # the batch check alone passes: the tripled batch has the example's sequence length
    with pytest.raises(ParityError, match=r"at sequence length 2 \(the example's is 5\)"):
        to_onnx(source, exporter="legacy")


def test_a_dynamo_graph_that_misses_parity_falls_back_to_legacy(monkeypatch: pytest.MonkeyPatch) -> None:
    """auto mode treats a dynamo graph that computes something else like a failed export."""
    source = _tabular(torch.nn.Linear(4, 3))
    other = to_onnx(_tabular(torch.nn.Linear(4, 3)), exporter="legacy").graph  # other weights
    monkeypatch.setattr(onnx_export, "_dynamo", lambda module, src: other)
    graph = to_onnx(source)
    assert graph.exporter == "legacy" and graph.max_abs_diff < 1e-4
    assert graph.fallback_reason is not None and graph.fallback_reason.startswith("ParityError")
    monkeypatch.setattr(onnx_export, "_legacy", lambda module, src: other)
    with pytest.raises(ParityError):  # both graphs wrong: the parity error, not "unsupported operator"
        to_onnx(source)
