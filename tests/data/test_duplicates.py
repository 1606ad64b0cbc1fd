"""Exact and near-duplicates, conflicting labels, and leakage between datasets."""

from __future__ import annotations

import pyarrow as pa

from keelml.data.duplicates import find_duplicates, find_leakage, normalise_text


def test_normalised_text() -> None:
    values = pa.array(["Ｇreat  FOOD!!", "great food", "  great\tfood. ", None, "Straße, 東京!"])
    assert normalise_text(values).to_pylist() == [
        "great food",
        "great food",
        "great food",
        None,
        "straße 東京",
    ]


def test_exact_duplicates_ignore_the_id_and_split_by_batch() -> None:
    table = pa.table({"id": [1, 2, 3, 4, 5], "x": [1.0, 1.0, 2.0, 1.0, 3.0], "y": ["a", "a", "b", "a", "b"]})
    batches = [table.slice(0, 2), table.slice(2, 3)]  # a group spans both batches
    report = find_duplicates(batches, label="y", id="id")
    assert (report.exact.groups, report.exact.rows) == (1, 2)
    assert report.exact.examples == ((1, 2, 4),)  # named by id
    assert report.conflicts.rows == 0


def test_conflicting_labels_and_missing_labels() -> None:
    table = pa.table({"x": [1.0, 1.0, 1.0, 2.0, 2.0], "y": ["a", "b", None, "c", None]})
    report = find_duplicates([table], label="y")
    assert (report.conflicts.groups, report.conflicts.rows) == (1, 3)
    assert report.conflicts.examples == ((0, 1, 2),)  # positions without an id column


def test_near_duplicates_by_normalised_text_with_conflicts() -> None:
    table = pa.table(
        {
            "text": ["Great food!", "great food", "GREAT FOOD", "bad", "", None],
            "y": ["a", "a", "b", "b", "a", "a"],
        }
    )
    report = find_duplicates([table], label="y", text_columns=("text",))
    near = report.near[0]
    assert (near.key, near.groups, near.rows, near.conflicting_groups) == ("text", 1, 2, 1)
    assert report.exact.rows == 0  # raw texts differ
    assert report.to_json()["near"][0]["examples"] == [[0, 1, 2]]


def test_leakage_by_features_text_and_id() -> None:
    train = pa.table({"id": [1, 2, 3], "text": ["alpha one", "beta two", "gamma"], "y": ["a", "b", "a"]})
    test = pa.table(
        {"id": [3, 9, 10, 11], "text": ["Alpha ONE!", "delta", "gamma", "new"], "y": ["a", "a", "b", "b"]}
    )
    report = find_leakage(
        [train], [test], label="y", id="id", text_columns=("text",), names=("train", "test")
    )
    assert report.id_rows == 1 and report.text_rows == {"text": 2}
    assert report.exact_rows == 1  # "gamma" vs "gamma": same features (id and label excluded)
    assert report.leaked_rows == 2 and report.hard_rows == 1
    assert report.examples == (3, 10)
    assert report.to_json()["share"] == 0.5
