"""Validation of versions and batches against a schema: each anomaly, and every kind of bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import InvalidInputError
from keelml.data.batches import VersionSource
from keelml.data.quality import validate_dataset, version_schema
from keelml.data.report_html import write_validation_html
from keelml.data.schema import DataSchema
from keelml.data.validation import ValidationReport, validate

N = 400


def _reference(seed: int = 0, n: int = N) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "id": pa.array(np.arange(n), pa.int64()),
            "age": pa.array(rng.integers(18, 90, n).astype(float)),
            "region": pa.array(rng.choice(["EU", "US", "APAC"], n)),
            "label": pa.array(rng.choice(["yes", "no"], n)),
        }
    )


def _kinds(report: ValidationReport, severity: str | None = None) -> set[str]:
    return {a.kind for a in report.anomalies if severity is None or a.severity == severity}


@pytest.fixture
def ws(local_ws: Workspace) -> Workspace:
    local_ws.datasets.add("d", _reference(), label="label", id="id")
    return local_ws


def test_clean_new_version_passes(ws: Workspace) -> None:
    new = _reference(seed=1)
    ws.datasets.add("d", new.set_column(0, "id", pa.array(np.arange(N, 2 * N), pa.int64())))
    report = validate_dataset(ws, "d@2", against="d@1")
    assert report.ok, report.anomalies
    assert report.rows == N and report.reference == "d@1"
    assert {c.name for c in report.columns} == {"id", "age", "region", "label"}
    assert all(c.drift is not None for c in report.columns if c.name in ("age", "region"))


def test_out_of_range_unknown_categories_and_missing_values_block(ws: Workspace) -> None:
    bad = _reference(seed=2)
    age = bad.column("age").to_pylist()
    age[:50] = [200.0] * 50
    age[50:60] = [None] * 10
    region = bad.column("region").to_pylist()
    region[:30] = ["MARS"] * 30
    bad = bad.set_column(1, "age", pa.array(age)).set_column(2, "region", pa.array(region))
    report = validate_dataset(ws, bad, against="d@1")
    assert not report.ok
    assert {"out_of_range", "unexpected_values", "missing_values"} <= _kinds(report, "blocking")
    unexpected = next(a for a in report.anomalies if a.kind == "unexpected_values")
    assert unexpected.rows == 30 and unexpected.examples == ("MARS",)


def test_a_few_violations_only_warn(ws: Workspace) -> None:
    bad = _reference(seed=3)
    age = bad.column("age").to_pylist()
    age[0] = 95.0  # one value out of range: 0.25% < the 1% tolerated
    report = validate_dataset(ws, bad.set_column(1, "age", pa.array(age)), against="d@1")
    assert report.ok and "out_of_range" in _kinds(report, "warning")


def test_environments_label_required_in_training_absent_in_serving(ws: Workspace) -> None:
    serving = _reference(seed=4).drop_columns(["label"])
    assert validate_dataset(ws, serving, against="d@1", environment="serving").ok
    training = validate_dataset(ws, serving, against="d@1", environment="training")
    assert "missing_column" in _kinds(training, "blocking")
    with_label = validate_dataset(ws, _reference(seed=4), against="d@1", environment="serving")
    assert with_label.ok and "label_in_serving" in _kinds(with_label, "warning")


def test_missing_and_unexpected_columns(ws: Workspace) -> None:
    batch = _reference(seed=5).drop_columns(["region"]).append_column("extra", pa.array([1] * N))
    report = validate_dataset(ws, batch, against="d@1")
    assert "missing_column" in _kinds(report, "blocking") and "unexpected_column" in _kinds(report, "warning")


def test_drift_is_a_warning_with_p_value(ws: Workspace) -> None:
    shifted = _reference(seed=6)
    shifted = shifted.set_column(1, "age", pa.array(np.clip(np.asarray(shifted.column("age")) + 30, 18, 89)))
    report = validate_dataset(ws, shifted, against="d@1")
    drift = next(a for a in report.anomalies if a.kind == "drift")
    assert drift.column == "age" and drift.severity == "warning" and "p=" in drift.description


def test_mixed_types_in_a_numeric_column(ws: Workspace, tmp_path: Path) -> None:
    path = tmp_path / "batch.csv"
    rows = "\n".join(f"{i},{'unknown' if i % 7 == 0 else 30 + i % 40},EU,yes" for i in range(100))
    path.write_text("id,age,region,label\n" + rows + "\n")
    report = validate_dataset(ws, path, against="d@1")
    mixed = next(a for a in report.anomalies if a.kind == "mixed_types")
    assert mixed.severity == "blocking" and mixed.rows == 15 and mixed.examples == ("unknown",)


def test_mixed_types_in_a_text_column_is_a_finding(local_ws: Workspace) -> None:
    values = [str(i) for i in range(95)] + ["unknown"] * 5
    local_ws.datasets.add("m", pa.table({"size": values, "y": ["a", "b"] * 50}), label="y")
    report = validate_dataset(local_ws, "m")
    assert report.reference is None  # a self-check
    assert "mixed_types" in _kinds(report, "warning")


def test_all_missing_column(local_ws: Workspace) -> None:
    table = pa.table(
        {"x": [1.0, 2.0, 3.0, 4.0], "empty": pa.array([None] * 4, pa.string()), "y": ["a", "b", "a", "b"]}
    )
    local_ws.datasets.add("e", table, label="y")
    self_check = validate_dataset(local_ws, "e")
    assert self_check.ok and "all_missing" in _kinds(self_check, "warning")
    ok_before = table.set_column(1, "empty", pa.array(["p", "q", "p", "q"]))
    local_ws.datasets.add("f", ok_before, label="y")
    report = validate_dataset(local_ws, table, against="f@1")
    assert "all_missing" in _kinds(report, "blocking")


def test_invalid_utf8_is_found_with_rows(local_ws: Workspace, tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text("id,text,y\n1,fine,a\n2,good,b\n3,ok,a\n")
    local_ws.datasets.add("t", good, label="y", id="id")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"id,text,y\n4,fine,a\n5,caf\xe9,b\n6,ok,a\n")
    report = validate_dataset(local_ws, bad, against="t@1")
    utf8 = next(a for a in report.anomalies if a.kind == "invalid_utf8")
    assert utf8.severity == "blocking" and utf8.rows == 1 and "row 1" in utf8.examples[0]
    local_ws.datasets.add("u", bad, label="y", id="id")  # stored as bytes: the self-check finds it too
    assert "invalid_utf8" in _kinds(validate_dataset(local_ws, "u"), "blocking")


def test_single_class_blocks_training(local_ws: Workspace) -> None:
    local_ws.datasets.add("s", pa.table({"x": [1.0, 2.0, 3.0], "y": ["a", "a", "a"]}), label="y")
    report = validate_dataset(local_ws, "s")
    assert "single_class" in _kinds(report, "blocking")
    assert validate_dataset(local_ws, "s", environment="serving").ok


def test_labels_with_one_example_are_reported(local_ws: Workspace) -> None:
    labels = ["a", "b"] * 20 + ["rare1", "rare2"]
    local_ws.datasets.add("r", pa.table({"x": [float(i) for i in range(42)], "y": labels}), label="y")
    rare = next(a for a in validate_dataset(local_ws, "r").anomalies if a.kind == "rare_class")
    assert rare.rows == 2 and rare.examples == ("rare1", "rare2")


def test_huge_label_cardinality(local_ws: Workspace) -> None:
    n = 300
    table = pa.table({"x": [float(i) for i in range(n)], "y": [f"user{i}" for i in range(n)]})
    local_ws.datasets.add("h", table, label="y")
    assert "label_cardinality" in _kinds(validate_dataset(local_ws, "h"), "warning")


def test_duplicates_and_conflicting_labels(local_ws: Workspace) -> None:
    table = pa.table(
        {
            "id": pa.array(range(6), pa.int64()),
            "x": [1.0, 1.0, 2.0, 2.0, 3.0, 4.0],
            "y": ["a", "a", "a", "b", "a", "b"],
        }
    )
    local_ws.datasets.add("dup", table, label="y", id="id")
    report = validate_dataset(local_ws, "dup")
    assert report.duplicates is not None
    assert report.duplicates.exact.rows == 1 and report.duplicates.exact.examples == ((0, 1),)
    assert report.duplicates.conflicts.rows == 2 and report.duplicates.conflicts.examples == ((2, 3),)
    assert {"duplicate_rows", "conflicting_labels"} <= _kinds(report, "warning")


def test_leakage_against_another_dataset(ws: Workspace) -> None:
    ref = ws.datasets.read("d@1")
    ws.datasets.add("test", ref.slice(0, 50), label="label", id="id")
    report = validate_dataset(ws, "test", leakage_with="d@1")
    assert report.leakage is not None and report.leakage.hard_rows == 50
    assert "leakage" in _kinds(report, "blocking")


def test_a_batch_needs_a_schema(ws: Workspace, explains: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        validate_dataset(ws, _reference())
    explains(info.value, "against a schema", "--against")


def test_an_edited_schema_file_is_used(ws: Workspace, tmp_path: Path) -> None:
    path = version_schema(ws, "d@1").write(tmp_path / "s.yaml")
    path.write_text(path.read_text().replace("maximum: 89.0", "maximum: 50.0"))
    report = validate_dataset(ws, "d@1", schema=DataSchema.read(path))
    assert "out_of_range" in _kinds(report, "blocking")


def test_streams_batches_with_bounded_state(ws: Workspace) -> None:
    source = VersionSource.of(ws, "d@1")
    batches = list(source.batches(batch_rows=64))
    assert len(batches) == 7 and max(b.num_rows for b in batches) == 64
    report = validate(iter(batches), version_schema(ws, "d@1"), target="d@1")
    assert report.rows == N and report.ok


def test_json_and_html_report(ws: Workspace, tmp_path: Path) -> None:
    bad = _reference(seed=7)
    report = validate_dataset(ws, bad.set_column(2, "region", pa.array(["MARS"] * N)), against="d@1")
    data = report.to_json()
    assert data["ok"] is False and data["blocking"] >= 1 and data["anomalies"][0]["severity"] == "blocking"
    page = write_validation_html(report, tmp_path / "r.html").read_text()
    assert "plotly" in page and "MARS" in page and "FAILED" in page
