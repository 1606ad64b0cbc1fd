from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.compress import DistillConfig, FitSettings, PruneConfig
from keelml.compress.distill import text_student
from keelml.compress.source import resolve
from keelml.core.errors import ColumnNotFoundError, InvalidInputError
from tests.compress.conftest import SLICES

TABULAR_FIT = FitSettings(epochs=15, patience=5, learning_rate=1e-2)
TEXT_FIT = FitSettings(epochs=3, learning_rate=5e-3)


def reload(ws: Workspace, spec: str) -> object:
    info = ws.models.show(spec)
    from keelml.core.refs import ArtifactRef

    return resolve(info.tags["keel.loader"])(ws.artifacts.read_bytes(ArtifactRef(info.artifact)))


def test_tabular_student_is_narrower_keeps_accuracy_and_is_registered_with_lineage(
    compress_ws: Workspace,
) -> None:
    ws = compress_ws
    result = ws.compress.distill("loan-clf@1", DistillConfig(hidden=(8,), fit=TABULAR_FIT), slices=SLICES)
    assert result.parameters < result.parent_parameters / 5
    assert result.accuracy.accuracy >= result.parent_accuracy.accuracy - 0.05
    assert set(result.accuracy.slices) == {"north", "south"}
    info = result.registered
    assert info.name == "loan-clf" and info.version >= 2
    assert info.tags["keel.variant"] == "distilled" and info.tags["keel.compressed_from"] == "loan-clf@1"
    assert info.metrics["test_accuracy"] == pytest.approx(result.accuracy.accuracy)
    assert "slice_north_accuracy" in info.metrics
    graph = ws.catalog.lineage.graph(info.ref.node_id, "upstream")
    assert any(e.src == "model:loan-clf@1" and e.relation == "distilled" for e in graph.edges)
    loaded = reload(ws, result.spec or "")
    rows = ws.training.split("loans", loaded.config, task="tabular")[0]["test"]  # type: ignore[attr-defined]
    np.testing.assert_allclose(loaded.predict_proba(rows), result.model.predict_proba(rows), atol=1e-6)  # type: ignore[attr-defined]


def test_pruned_mlp_has_fewer_neurons_and_recovers(compress_ws: Workspace) -> None:
    result = compress_ws.compress.prune(
        "loan-clf@1", PruneConfig(amount=0.75, fit=TABULAR_FIT), register=False
    )
    assert result.model.config.hidden == (16, 8)
    assert result.parameters < result.parent_parameters / 3
    assert result.accuracy.accuracy >= result.parent_accuracy.accuracy - 0.05
    assert result.registered is None


def test_gradual_pruning_reaches_the_same_widths_in_steps(compress_ws: Workspace) -> None:
    result = compress_ws.compress.prune(
        "loan-clf@1", PruneConfig(amount=0.75, steps=3, fit=TABULAR_FIT), register=False
    )
    assert result.model.config.hidden == (16, 8)  # as in one step: a share of the original widths
    assert result.description.endswith("in 3 steps")
    assert result.accuracy.accuracy >= result.parent_accuracy.accuracy - 0.05
    text = compress_ws.compress.prune("review-clf@1", PruneConfig(amount=0.5, steps=2, fit=TEXT_FIT),
                                      register=False)  # fmt: skip
    layer = text.model.module.encoder.encoder.layer[0]
    assert layer.attention.self.query.out_features == 8 and layer.intermediate.dense.out_features == 16


def test_text_student_keeps_the_teachers_first_layers_and_reloads(compress_ws: Workspace) -> None:
    ws = compress_ws
    teacher = ws.compress.source("review-clf@1")
    result = ws.compress.distill(teacher, DistillConfig(layers=1, fit=TEXT_FIT))
    encoder = result.model.module.encoder
    assert len(encoder.encoder.layer) == 1 and encoder.config.num_hidden_layers == 1
    merged = teacher.model.merged().module.encoder
    start = text_student(teacher.model, 1).module.encoder
    np.testing.assert_allclose(  # initialised from the teacher: the embeddings are the teacher's
        start.embeddings.word_embeddings.weight.detach().numpy(),
        merged.embeddings.word_embeddings.weight.detach().numpy(),
    )
    query = encoder.encoder.layer[0].attention.self.query.weight.detach().numpy()
    # the whole student trains (the merged LoRA teacher's base weights came frozen: only the head moved)
    assert not np.allclose(query, merged.encoder.layer[0].attention.self.query.weight.detach().numpy())
    assert result.accuracy.accuracy >= 0.9
    loaded = reload(ws, result.spec or "")
    texts = ["great tasty coffee", "stale awful chips"]
    np.testing.assert_allclose(loaded.predict_proba(texts), result.model.predict_proba(texts), atol=1e-5)  # type: ignore[attr-defined]


def test_text_pruning_removes_heads_and_ffn_units_and_round_trips(compress_ws: Workspace) -> None:
    result = compress_ws.compress.prune("review-clf@1", PruneConfig(amount=0.5, fit=TEXT_FIT))
    layer = result.model.module.encoder.encoder.layer[0]
    assert layer.attention.self.query.out_features == 8  # 1 of 2 heads of size 8
    assert layer.intermediate.dense.out_features == 16
    assert result.parameters < result.parent_parameters
    assert result.accuracy.accuracy >= 0.9
    loaded = reload(compress_ws, result.spec or "")
    texts = ["great tasty coffee", "stale awful chips"]
    np.testing.assert_allclose(loaded.predict_proba(texts), result.model.predict_proba(texts), atol=1e-5)  # type: ignore[attr-defined]
    assert loaded.export_source().module is not None  # type: ignore[attr-defined]  # the export hook works


def test_transfer_rows_add_soft_targets_and_wrong_columns_are_refused(compress_ws: Workspace) -> None:
    ws = compress_ws
    extra = pa.table({"review": ["great fresh coffee", "awful stale snack"] * 10})
    result = ws.compress.distill("review-clf@1", DistillConfig(layers=1, fit=TEXT_FIT), transfer=extra,
                                 register=False)  # fmt: skip
    assert result.accuracy.accuracy >= 0.9
    with pytest.raises(ColumnNotFoundError, match="transfer rows lack") as caught:
        ws.compress.distill("review-clf@1", transfer=pa.table({"text": ["x"]}), register=False)
    assert "review" in (caught.value.expected or "")


def test_bad_settings_are_clear_errors(compress_ws: Workspace) -> None:
    with pytest.raises(InvalidInputError, match="pruning settings"):
        PruneConfig(amount=1.0)
    with pytest.raises(InvalidInputError, match="distillation settings") as caught:
        FitSettings(temperature=0, alpha=2)
    assert "temperature=0" in (caught.value.received or "") and "alpha=2" in (caught.value.received or "")
    with pytest.raises(InvalidInputError, match="more layers than the teacher"):
        compress_ws.compress.distill("review-clf@1", DistillConfig(layers=5), register=False)
    with pytest.raises(KeyError, match="no registered model version"):
        compress_ws.compress.distill("nope@1")
