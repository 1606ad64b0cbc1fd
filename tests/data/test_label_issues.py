"""Label issues (cleanlab on cross-validated probabilities), the review queue and relabel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

from keelml import Workspace
from keelml.core.errors import InvalidInputError
from keelml.data.label_issues import LabelIssuesConfig, find_label_issues_in, rank_issues
from keelml.data.relabel import label_issues, relabel, write_queue

FLIPPED = [3, 17, 42, 77, 120, 150]


def _tabular(n: int = 200, seed: int = 0) -> pa.Table:
    """Two well-separated blobs; the rows in FLIPPED carry the wrong label."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(0, 1, (n, 2)) + 4 * y[:, None]
    label = np.where(y == 1, "pos", "neg").astype(object)
    for i in (f for f in FLIPPED if f < n):
        label[i] = "neg" if label[i] == "pos" else "pos"
    return pa.table(
        {
            "id": pa.array([f"r{i}" for i in range(n)]),
            "a": x[:, 0],
            "b": x[:, 1],
            "colour": pa.array(rng.choice(["red", "blue"], n)),
            "label": pa.array(label.tolist()),
        }
    )


def _text(n: int = 160) -> pa.Table:
    good = ["delicious and tasty, I love this snack", "wonderful flavour, will buy again, great value"]
    bad = ["stale and bland, would not buy again", "awful taste, arrived broken, very disappointed"]
    texts, labels = [], []
    for i in range(n):
        positive = i % 2 == 0
        texts.append(f"{(good if positive else bad)[i % 4 // 2]} number {i}")
        labels.append("great" if positive else "other")
    for i in (4, 10, 21):
        labels[i] = "other" if labels[i] == "great" else "great"
    return pa.table({"review": texts, "score": labels})


def test_flipped_rows_rank_first_on_tabular_data() -> None:
    config = LabelIssuesConfig(model="linear", folds=3)
    table = _tabular().append_column("user", pa.array([f"user{i}" for i in range(200)]))  # huge cardinality
    report = find_label_issues_in(table, "label", id="id", config=config)
    found = {i.row for i in report.issues}
    assert set(FLIPPED) <= found and len(found) <= 2 * len(FLIPPED)
    assert [i.rank for i in report.issues] == list(range(1, len(report.issues) + 1))
    assert all(a.quality <= b.quality for a, b in zip(report.issues, report.issues[1:], strict=False))
    top = report.issues[0]
    assert top.id == f"r{top.row}" and top.given != top.suggested
    assert report.accuracy > 0.9 and report.classes == ("neg", "pos")


def test_ensemble_and_cleanlab_filters() -> None:
    small = _tabular(n=60)
    report = find_label_issues_in(small, "label", config=LabelIssuesConfig(model="ensemble", folds=2))
    assert report.model == "logistic regression + gradient boosting"
    assert {3, 17, 42} <= {i.row for i in report.issues}
    labels = np.array([0, 0, 1, 1, 1, 0])
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.2, 0.8], [0.9, 0.1], [0.7, 0.3]])
    flagged, quality = rank_issues(labels, probs, "predicted_neq_given")
    assert flagged.tolist() == [4] and quality[4] == pytest.approx(0.1)


def test_text_uses_tfidf_and_finds_flips() -> None:
    report = find_label_issues_in(_text(), "score", config=LabelIssuesConfig(folds=3))
    assert report.model == "logistic regression"
    assert {4, 10, 21} <= {i.row for i in report.issues}


def test_invalid_utf8_text_is_decoded_not_a_crash() -> None:
    table = _text()
    raw = [t.encode() for t in table.column("review").to_pylist()]
    raw[0] = b"caf\xe9 " + raw[0]
    table = table.set_column(0, "review", pa.array(raw, pa.binary()))
    report = find_label_issues_in(table, "score", config=LabelIssuesConfig(folds=3))
    assert report.checked == table.num_rows


def test_single_class_is_a_clear_error(explains: Callable[..., str]) -> None:
    table = pa.table({"x": [float(i) for i in range(20)], "y": ["a"] * 20})
    with pytest.raises(InvalidInputError) as info:
        find_label_issues_in(table, "y")
    explains(info.value, "at least two classes")


def test_labels_with_one_example_are_skipped_with_a_finding() -> None:
    table = _tabular(n=60)
    labels = table.column("label").to_pylist()
    labels[0], labels[1] = "solo", None
    table = table.set_column(4, "label", pa.array(labels))
    report = find_label_issues_in(table, "label", config=LabelIssuesConfig(model="linear", folds=3))
    assert report.checked == 58 and 0 not in {i.row for i in report.issues}
    assert any("solo (1)" in f for f in report.findings) and any("unlabeled" in f for f in report.findings)


def test_huge_label_cardinality_is_refused(explains: Callable[..., str]) -> None:
    table = pa.table({"x": [float(i) for i in range(100)], "y": [f"u{i}" for i in range(100)]})
    with pytest.raises(InvalidInputError) as info:
        find_label_issues_in(table, "y")
    explains(info.value, "100 classes", "--label")


def test_no_feature_columns_and_all_missing_features(explains: Callable[..., str]) -> None:
    table = pa.table({"empty": pa.array([None] * 20, pa.string()), "y": ["a", "b"] * 10})
    with pytest.raises(InvalidInputError) as info:
        find_label_issues_in(table, "y")
    explains(info.value, "no column usable", "empty (all missing)")


def test_config_is_validated(explains: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        LabelIssuesConfig(folds=1)
    explains(info.value, "folds")
    with pytest.raises(InvalidInputError):
        LabelIssuesConfig(model="deep")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        LabelIssuesConfig(margin=10)


def test_queue_then_relabel_makes_a_new_version_with_lineage(local_ws: Workspace, tmp_path: Path) -> None:
    local_ws.datasets.add("t", _tabular(), label="label", id="id")
    report = label_issues(local_ws, "t", LabelIssuesConfig(model="linear", folds=3))
    queue = write_queue(local_ws, report, tmp_path / "queue.csv")
    rows = pcsv.read_csv(queue)
    assert rows.column_names == [
        "rank",
        "id",
        "given_label",
        "suggested_label",
        "label_quality",
        "preview",
        "corrected_label",
    ]
    assert "a=" in rows.column("preview")[0].as_py()
    corrected = rows.column("corrected_label").to_pylist()
    corrected[0] = rows.column("suggested_label")[0].as_py()
    pcsv.write_csv(rows.set_column(6, "corrected_label", pa.array(corrected, pa.string())), queue)
    result = relabel(local_ws, "t@1", queue)
    assert (result.ref.version, result.changed, result.unchanged) == (2, 1, 0)
    assert local_ws.datasets.version("t@2").operation == "relabel"
    before, after = local_ws.datasets.read("t@1"), local_ws.datasets.read("t@2")
    assert before.column("label") != after.column("label")  # t@1 is untouched: time travel
    upstream = local_ws.catalog.lineage.graph("dataset:t@2", "upstream")
    assert {e.relation for e in upstream.edges} == {"relabel"}
    accepted = relabel(local_ws, "t@1", queue, accept_suggested=True)
    assert accepted.changed == len(report.issues)
    graph = local_ws.catalog.lineage.graph("dataset:t@3", "upstream")
    assert ("dataset:t@1", "dataset:t@3") in {(e.src, e.dst) for e in graph.edges}


def test_relabel_errors(local_ws: Workspace, tmp_path: Path, explains: Callable[..., str]) -> None:
    local_ws.datasets.add("t", _tabular(n=20), label="label", id="id")
    empty = pa.table({"id": ["r1"], "corrected_label": pa.array([""], pa.string())})
    with pytest.raises(InvalidInputError) as info:
        relabel(local_ws, "t", empty)
    explains(info.value, "no correction")
    with pytest.raises(InvalidInputError) as info:
        relabel(local_ws, "t", pa.table({"id": ["nope"], "corrected_label": ["pos"]}))
    explains(info.value, "not in t@1", "nope")
    with pytest.raises(InvalidInputError) as info:
        relabel(local_ws, "t", pa.table({"key": ["r1"], "corrected_label": ["pos"]}))
    explains(info.value, "no 'id' column")
    local_ws.datasets.add("n", pa.table({"x": [1.0, 2.0], "y": pa.array([0, 1], pa.int64())}), label="y")
    with pytest.raises(InvalidInputError) as info:
        relabel(local_ws, "n", pa.table({"row": ["0"], "corrected_label": ["abc"]}))
    explains(info.value, "not a valid y")
    assert relabel(local_ws, "n", pa.table({"row": ["0"], "corrected_label": ["1"]})).changed == 1


def test_dataset_without_label(local_ws: Workspace, explains: Callable[..., str]) -> None:
    local_ws.datasets.add("u", pa.table({"x": [1.0, 2.0]}))
    with pytest.raises(InvalidInputError) as info:
        label_issues(local_ws, "u")
    explains(info.value, "no label column")
