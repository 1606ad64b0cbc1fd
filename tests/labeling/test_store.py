"""ws.labels end to end: suggest -> fill in -> import -> agreement, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import ColumnNotFoundError, EmptySourceError, SourceNotFoundError
from keelml.labeling import BatchRejectedError, BudgetTooLargeError, EmptyPoolError
from tests.labeling.conftest import CLASSES, pool_table


def _truth_for(batch_ids, truth):
    return {str(i): truth[int(i)] for i in batch_ids}


def _state(ws: Workspace, name: str = "pets") -> tuple[list[int], int]:
    versions = [v.ref.version for v in ws.datasets.log(name)]
    return versions, ws.labels.annotations(name).num_rows


def test_one_labeling_round_suggest_import_and_lineage(pets, fill, tmp_path: Path) -> None:
    ws, truth = pets
    s = ws.labels.suggest("pets", 12, strategy="margin", output=tmp_path / "batch.csv")
    assert s.path == tmp_path / "batch.csv" and len(s.ids) == 12
    assert s.pool_size == 90 and s.labeled == 30 and s.strategy == "margin" and s.model == "logreg"
    assert all(i >= 30 for i in s.ids)  # only unlabeled rows are suggested
    header = (tmp_path / "batch.csv").read_text().splitlines()[0].split(",")
    assert header[:5] == ["id", "x1", "x2", "note", "label"]
    assert {"keel_suggested", "keel_confidence", "keel_rank", "keel_batch"} <= set(header)

    filled = fill(tmp_path / "batch.csv", _truth_for(s.ids, truth))
    result = ws.labels.import_batch("pets", filled, annotator="ann")
    assert result.imported == 12 and result.rows_labeled == 12 and result.batches == (s.batch_id,)
    assert result.dataset is not None and result.dataset.version == 2
    log = ws.datasets.log("pets")
    assert log[-1].operation == "label-import" and log[-1].source == str(filled.resolve())
    table = ws.datasets.read("pets")
    labels = dict(zip(table.column("id").to_pylist(), table.column("label").to_pylist(), strict=True))
    assert all(labels[i] == truth[i] for i in s.ids)
    assert sum(v is not None for v in labels.values()) == 42
    ann = ws.labels.annotations("pets")
    assert ann.num_rows == 12 and set(ann.column("annotator").to_pylist()) == {"ann"}
    assert set(ann.column("batch_id").to_pylist()) == {s.batch_id}
    assert ann.schema.field("annotated_at").type == pa.timestamp("us", tz="UTC")
    # lineage: the new version derives from the previous one and from the annotations version
    graph = ws.catalog.lineage.graph(result.dataset.node_id, "upstream")
    assert set(graph.children(result.dataset.node_id)) == {result.annotations.node_id, "dataset:pets@1"}

    # the next round no longer suggests labeled rows
    nxt = ws.labels.suggest("pets", 10)
    assert not set(nxt.ids) & set(s.ids) and nxt.pool_size == 78


@pytest.mark.parametrize("strategy", ["random", "least_confidence", "entropy", "bald", "kcenter", "hybrid"])
def test_every_strategy_suggests_from_the_cli_api(pets, strategy: str) -> None:
    ws, _ = pets
    s = ws.labels.suggest("pets", 5, strategy=strategy)
    assert len(set(s.ids)) == 5 and s.strategy == strategy


def test_jsonl_batches_and_per_row_annotators(pets, fill, tmp_path: Path) -> None:
    ws, truth = pets
    s = ws.labels.suggest("pets", 6, output=tmp_path / "b.jsonl")
    first = json.loads((tmp_path / "b.jsonl").read_text().splitlines()[0])
    assert first["label"] is None and "note" in first
    filled = fill(tmp_path / "b.jsonl", _truth_for(s.ids, truth), "filled.jsonl", annotator="zoe")
    result = ws.labels.import_batch("pets", filled)
    assert result.annotators == ("zoe",) and result.imported == 6


def test_mlp_and_probability_file_models(pets, tmp_path: Path) -> None:
    ws, _ = pets
    assert ws.labels.suggest("pets", 4, strategy="bald", model="mlp").model == "mlp"
    probs = pa.table(
        {"id": pa.array(np.arange(120), pa.int64()), **{c: np.full(120, 1 / 3) for c in CLASSES}}
    )
    probs = probs.set_column(1, "cat", pa.array(np.r_[np.full(50, 0.9), np.full(70, 0.34)]))
    import pyarrow.parquet as pq

    pq.write_table(probs, tmp_path / "probs.parquet")
    s = ws.labels.suggest("pets", 5, model=str(tmp_path / "probs.parquet"))
    assert s.model == "file:probs.parquet" and all(i >= 50 for i in s.ids)
    pq.write_table(probs.slice(0, 60), tmp_path / "partial.parquet")
    with pytest.raises(ValueError, match="lacks 60 unlabeled rows"):
        ws.labels.suggest("pets", 5, model=str(tmp_path / "partial.parquet"))
    with pytest.raises(SourceNotFoundError):
        ws.labels.suggest("pets", 5, model="nope.parquet")


def test_cold_start_picks_a_diverse_batch(local_ws: Workspace) -> None:
    table, _ = pool_table(60, labeled=0)
    local_ws.datasets.add("cold", table, label="label", id="id")
    s = local_ws.labels.suggest("cold", 6)
    assert s.note is not None and "cold start" in s.note and s.strategy == "kcenter"


def test_repeat_import_changes_nothing_and_a_second_annotator_adds_agreement(
    pets, fill, tmp_path: Path
) -> None:
    ws, truth = pets
    s = ws.labels.suggest("pets", 20, output=tmp_path / "b.csv")
    right = _truth_for(s.ids, truth)
    ws.labels.import_batch("pets", fill(tmp_path / "b.csv", right, "a.csv"), annotator="ann")
    before = _state(ws)
    again = ws.labels.import_batch("pets", tmp_path / "a.csv", annotator="ann")
    assert again.imported == 0 and again.already_imported == 20 and again.dataset is None
    assert _state(ws) == before
    wrong = {
        k: (CLASSES[(CLASSES.index(v) + 1) % 3] if i < 5 else v) for i, (k, v) in enumerate(right.items())
    }
    ws.labels.import_batch("pets", fill(tmp_path / "b.csv", wrong, "b2.csv"), annotator="bob")
    ws.labels.import_batch("pets", fill(tmp_path / "b.csv", right, "c.csv"), annotator="cy")
    report = ws.labels.agreement("pets")
    assert report.stats.items == 20 and report.stats.multiply_labeled == 20
    assert report.stats.annotators == ("ann", "bob", "cy")
    assert 0.5 < report.stats.alpha < 1.0 and 0.5 < report.stats.fleiss < 1.0
    agree = {q.annotator: q.agreement_with_consensus for q in report.stats.per_annotator}
    assert agree["ann"] == 1.0 and agree["cy"] == 1.0 and agree["bob"] == pytest.approx(0.75)
    assert report.consensus == right
    data = report.to_json()
    assert {p["a"] + p["b"] for p in data["cohen_kappa_pairs"]} == {"annbob", "anncy", "bobcy"}
    # resolved labels already equal the consensus (majority vote): writing it is refused as a no-op
    with pytest.raises(ValueError, match="already holds"):
        ws.labels.agreement("pets", write=True)


def test_consensus_write_fixes_a_tie_broken_the_wrong_way(pets, fill, tmp_path: Path) -> None:
    ws, truth = pets
    s = ws.labels.suggest("pets", 8, output=tmp_path / "b.csv")
    right = _truth_for(s.ids, truth)
    wrong = {k: CLASSES[(CLASSES.index(v) + 1) % 3] for k, v in right.items()}
    ws.labels.import_batch("pets", fill(tmp_path / "b.csv", right, "r1.csv"), annotator="a1")
    ws.labels.import_batch("pets", fill(tmp_path / "b.csv", right, "r2.csv"), annotator="a2")
    ws.labels.import_batch("pets", fill(tmp_path / "b.csv", wrong, "w1.csv"), annotator="w1")
    ws.labels.import_batch("pets", fill(tmp_path / "b.csv", wrong, "w2.csv"), annotator="w2")
    table = ws.datasets.read("pets")
    got = {
        str(i): v
        for i, v in zip(table.column("id").to_pylist(), table.column("label").to_pylist(), strict=True)
    }
    assert all(got[k] == v for k, v in wrong.items())  # 2-2 tie: the latest label wins on import
    report = ws.labels.agreement("pets", use_model=False, write=True)
    assert report.stats.method == "majority"
    assert ws.datasets.log("pets")[-1].operation == "label-consensus"


# -- bad input: nothing half-imported -----------------------------------------------------------


def _bad(
    ws: Workspace, path: Path, explains, *needles: str, annotator: str | None = "ann"
) -> BatchRejectedError:
    before = _state(ws)
    with pytest.raises(BatchRejectedError) as info:
        ws.labels.import_batch("pets", path, annotator=annotator)
    explains(info.value, *needles)
    assert _state(ws) == before, "a rejected batch must not write anything"
    return info.value


def test_unknown_ids_are_rejected_whole(pets, write_rows, explains) -> None:
    ws, _ = pets
    rows = [{"id": 40, "label": "cat"}, {"id": 9999, "label": "dog"}, {"id": "abc", "label": "dog"}]
    err = _bad(ws, write_rows(rows), explains, "unknown id", "9999", "abc")
    assert [f.kind for f in err.findings] == ["unknown id"] and err.findings[0].rows == 2


def test_conflicting_labels_from_one_annotator_are_rejected(pets, write_rows, explains) -> None:
    ws, _ = pets
    rows = [{"id": 40, "label": "cat"}, {"id": 40, "label": "dog"}, {"id": 41, "label": "cat"}]
    _bad(ws, write_rows(rows), explains, "conflicting labels", "40 by ann")
    # the same label twice is a harmless repeat
    dup = [{"id": 40, "label": "cat"}, {"id": 40, "label": "cat"}]
    assert ws.labels.import_batch("pets", write_rows(dup, "dup.csv"), annotator="ann").imported == 1


def test_labels_outside_the_class_set_are_rejected(pets, write_rows, explains) -> None:
    ws, _ = pets
    rows = [{"id": 40, "label": "cat"}, {"id": 41, "label": "Dog"}, {"id": 42, "label": "bird"}]
    _bad(ws, write_rows(rows), explains, "outside the class set", "41='Dog'", "42='bird'", "--classes")
    # declaring the class set admits a new class
    ok = ws.labels.import_batch(
        "pets",
        write_rows([{"id": 42, "label": "bird"}], "ok.csv"),
        annotator="ann",
        classes=[*CLASSES, "bird"],
    )
    assert ok.imported == 1


def test_all_problems_are_reported_at_once(pets, write_rows, explains) -> None:
    ws, _ = pets
    rows = [
        {"id": 9999, "label": "cat", "annotator": "a"},
        {"id": 40, "label": "bird", "annotator": "a"},
        {"id": 41, "label": "cat", "annotator": "a"},
        {"id": 41, "label": "dog", "annotator": "a"},
        {"id": 43, "label": "dog", "annotator": ""},
    ]
    err = _bad(ws, write_rows(rows), explains, "5 problem rows", annotator=None)
    assert {f.kind for f in err.findings} == {
        "unknown id",
        "label outside the class set",
        "conflicting labels",
        "missing annotator",
    }


def test_relabeling_an_imported_row_in_the_same_batch_is_a_conflict(pets, write_rows, explains) -> None:
    ws, _ = pets
    ws.labels.import_batch(
        "pets", write_rows([{"id": 40, "label": "cat", "keel_batch": "b1"}], "a.csv"), annotator="ann"
    )
    _bad(
        ws, write_rows([{"id": 40, "label": "dog", "keel_batch": "b1"}], "b.csv"), explains, "earlier import"
    )
    # as a new batch it is a correction: the annotator's latest label wins
    ws.labels.import_batch(
        "pets", write_rows([{"id": 40, "label": "dog", "keel_batch": "b2"}], "c.csv"), annotator="ann"
    )
    assert ws.labels.resolved("pets")["40"] == "dog"


def test_batches_without_the_needed_columns_or_labels(pets, write_rows, explains, tmp_path: Path) -> None:
    ws, _ = pets
    before = _state(ws)
    with pytest.raises(ColumnNotFoundError) as info:
        ws.labels.import_batch("pets", write_rows([{"ident": 1, "label": "cat"}]), annotator="a")
    explains(info.value, "no id column 'id'")
    with pytest.raises(EmptySourceError) as empty:
        ws.labels.import_batch("pets", write_rows([{"id": 40, "label": ""}], "blank.csv"), annotator="a")
    explains(empty.value, "no labels")
    with pytest.raises(ValueError) as who:
        ws.labels.import_batch("pets", write_rows([{"id": 40, "label": "cat"}], "who.csv"))
    explains(who.value, "who labeled it", "--annotator")
    with pytest.raises(ValueError, match="cannot use"):
        ws.labels.import_batch("pets", write_rows([{"id": 40, "label": "cat"}], "x.txt"), annotator="a")
    with pytest.raises(SourceNotFoundError):
        ws.labels.import_batch("pets", tmp_path / "missing.csv", annotator="a")
    (tmp_path / "broken.jsonl").write_text('{"id": 40, "label": "cat"}\n{"id": 41,\n')
    with pytest.raises(ValueError, match="cannot read the batch"):
        ws.labels.import_batch("pets", tmp_path / "broken.jsonl", annotator="a")
    assert _state(ws) == before


def test_empty_pool_and_budget_larger_than_the_pool(local_ws: Workspace, explains) -> None:
    table, _ = pool_table(30, labeled=30)
    local_ws.datasets.add("full", table, label="label", id="id")
    with pytest.raises(EmptyPoolError) as info:
        local_ws.labels.suggest("full", 5)
    explains(info.value, "no unlabeled rows")
    table, _ = pool_table(30, labeled=20)
    local_ws.datasets.add("small", table, label="label", id="id")
    with pytest.raises(BudgetTooLargeError) as big:
        local_ws.labels.suggest("small", 11)
    explains(big.value, "budget of 11", "10 unlabeled rows", "--budget 10")


def test_a_dataset_needs_id_and_label_columns(local_ws: Workspace, explains) -> None:
    table, _ = pool_table(20)
    local_ws.datasets.add("noid", table, label="label")
    with pytest.raises(ValueError) as info:
        local_ws.labels.suggest("noid", 2)
    explains(info.value, "no id column", "--id")


def test_blank_strings_count_as_unlabeled_and_int_labels_round_trip(local_ws: Workspace, write_rows) -> None:
    table = pa.table(
        {"id": [1, 2, 3, 4, 5, 6], "x": [0.1, 0.2, 0.9, 1.0, 0.5, 0.6], "label": [0, 0, 1, 1, None, None]}
    )
    local_ws.datasets.add("ints", table, label="label", id="id")
    s = local_ws.labels.suggest("ints", 2)
    assert set(s.ids) == {5, 6}
    local_ws.labels.import_batch(
        "ints", write_rows([{"id": 5, "label": 1}, {"id": 6, "label": 0}]), annotator="a"
    )
    out = local_ws.datasets.read("ints")
    assert out.schema.field("label").type == pa.int64()
    assert out.column("label").to_pylist() == [0, 0, 1, 1, 1, 0]
    texts = pa.table(
        {"id": [1, 2, 3], "t": ["a good one", "not sure here", "a bad one"], "label": ["x", "", "y"]}
    )
    local_ws.datasets.add("blanks", texts, label="label", id="id")
    assert local_ws.labels.suggest("blanks", 1).ids == (2,)


def test_default_features_leave_out_identifier_like_columns() -> None:
    from keelml.labeling.models import infer_features

    table = pa.table(
        {
            "id": [1, 2, 3, 4],
            "sku": ["B01", "B02", "B03", "B04"],
            "colour": ["red", "red", "blue", "red"],
            "review": ["very good indeed", "quite bad really", "okay I guess", "would buy again"],
            "price": [1.0, 2.0, 3.0, 4.0],
            "label": ["a", "b", None, None],
        }
    )
    spec = infer_features(table, {"id", "label"})
    assert spec.numeric == ("price",) and spec.categorical == ("colour",) and spec.text == ("review",)
