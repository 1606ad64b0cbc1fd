"""Stored profiles agree with profiles recomputed from the data, also after appends."""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.progress import NoProgress
from keelml.data.profile import DatasetProfile
from keelml.data.writer import scan


def _recomputed(ws: Workspace, spec: str, label: str | None) -> DatasetProfile:
    """The profile of the version's rows read back, computed in one go (one batch)."""
    return scan(ws.datasets.read(spec), label, NoProgress()).profile


def _assert_exact_stats_equal(stored: DatasetProfile, fresh: DatasetProfile) -> None:
    assert stored.rows == fresh.rows
    assert [c.name for c in stored.columns] == [c.name for c in fresh.columns]
    assert stored.label == fresh.label
    assert stored.label_distribution == fresh.label_distribution
    for mine, theirs in zip(stored.columns, fresh.columns, strict=True):
        where = mine.name
        assert (mine.dtype, mine.rows, mine.nulls) == (theirs.dtype, theirs.rows, theirs.nulls), where
        # HLL registers of a union are the max of the parts': exactly equal, not just close
        assert mine.distinct == theirs.distinct, where
        if theirs.moments is None:
            assert mine.moments is None, where
            continue
        assert mine.moments is not None, where
        assert mine.moments.count == theirs.moments.count, where
        assert mine.moments.minimum == theirs.moments.minimum, where
        assert mine.moments.maximum == theirs.moments.maximum, where
        assert math.isclose(mine.moments.mean, theirs.moments.mean, rel_tol=1e-9, abs_tol=1e-12), where
        assert math.isclose(mine.moments.std, theirs.moments.std, rel_tol=1e-6, abs_tol=1e-12), where
        if theirs.quantiles is not None and theirs.quantiles.points:
            assert mine.quantiles is not None and mine.quantiles.count == theirs.quantiles.count, where


def test_stored_profile_equals_the_profile_of_the_data(ws: Workspace, make_table) -> None:
    table = make_table(200, with_nulls=True)
    ref = ws.datasets.add("d", table, id="id", label="label")
    stored = ws.datasets.profile(ref)
    fresh = _recomputed(ws, str(ref), "label")
    _assert_exact_stats_equal(stored, fresh)
    assert stored.rows == 200
    assert stored.column("x").nulls == 50
    assert stored.column("label").nulls == 40
    labels = table.column("label").drop_null().to_pylist()
    assert stored.label_distribution == {v: labels.count(v) for v in set(labels)}
    assert abs(stored.column("id").distinct_estimate - 200) <= 4  # an estimate (HLL), within 2%
    assert stored.column("x").kind == "numeric"
    assert stored.column("label").kind == "categorical"


def test_profile_after_append_equals_the_profile_of_the_whole(ws: Workspace, make_table) -> None:
    ws.datasets.add("d", make_table(150, with_nulls=True), id="id", label="label")
    ws.datasets.append("d", make_table(90, start=150, seed=1, with_nulls=True))
    ref = ws.datasets.append("d", make_table(40, start=240, seed=2, labels=("cat", "emu")))
    stored = ws.datasets.profile(ref)
    assert stored.rows == 280
    _assert_exact_stats_equal(stored, _recomputed(ws, str(ref), "label"))
    assert stored.label_distribution["emu"] == 20


def test_profile_after_append_of_an_outlier_updates_min_max_and_mean(ws: Workspace) -> None:
    ws.datasets.add("d", pa.table({"id": [1, 2, 3], "x": [1.0, 2.0, 3.0]}), id="id")
    ref = ws.datasets.append("d", pa.table({"id": [4], "x": [1e6]}))
    moments = ws.datasets.profile(ref).column("x").moments
    assert moments is not None
    assert (moments.count, moments.minimum, moments.maximum) == (4, 1.0, 1e6)
    assert math.isclose(moments.mean, (6.0 + 1e6) / 4, rel_tol=1e-12)
    assert math.isclose(moments.std, float(np.std([1.0, 2.0, 3.0, 1e6])), rel_tol=1e-9)


def test_column_kind_after_append_is_the_kind_of_the_whole(local_ws: Workspace) -> None:
    # First version: long strings (free text). After appending many short ones the column's mean
    # length is short, so the whole is categorical, whatever order the rows arrived in.
    long_rows = pa.table({"id": [1, 2], "s": ["x" * 60, "y" * 60]})
    short_rows = pa.table({"id": list(range(3, 40)), "s": ["a"] * 37})
    local_ws.datasets.add("d", long_rows, id="id")
    ref = local_ws.datasets.append("d", short_rows)
    fresh = _recomputed(local_ws, str(ref), None)
    assert fresh.column("s").kind == "categorical"
    assert local_ws.datasets.profile(ref).column("s").kind == fresh.column("s").kind


def test_profile_after_write_version_is_recomputed(ws: Workspace, make_table) -> None:
    ws.datasets.add("d", make_table(30), id="id", label="label")
    relabelled = ws.datasets.read("d").set_column(3, "label", pa.array(["zebra"] * 30))
    ref = ws.datasets.write_version("d", relabelled, operation="relabel")
    assert ws.datasets.profile(ref).label_distribution == {"zebra": 30}
    _assert_exact_stats_equal(ws.datasets.profile(ref), _recomputed(ws, str(ref), "label"))


def test_profile_of_a_multi_batch_table(local_ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    # Force several batches so the stored profile is a merge of batch profiles.
    monkeypatch.setattr("keelml.data.writer.BATCH_ROWS", 64)
    rng = np.random.default_rng(11)
    table = pa.table(
        {
            "id": np.arange(500),
            "x": rng.normal(size=500),
            "label": pa.array(rng.choice(["a", "b", "c", "d"], 500)),
        }
    )
    ref = local_ws.datasets.add("d", table, id="id", label="label")
    _assert_exact_stats_equal(local_ws.datasets.profile(ref), _recomputed(local_ws, str(ref), "label"))


def test_all_null_columns_can_be_stored_and_profiled(ws: Workspace) -> None:
    table = pa.table(
        {
            "id": [1, 2, 3],
            "f": pa.array([None, None, None], pa.float64()),
            "s": pa.array([None, None, None], pa.string()),
            "nan": pa.array([float("nan")] * 3),
        }
    )
    ref = ws.datasets.add("d", table, id="id")
    profile = ws.datasets.profile(ref)
    assert profile.column("f").nulls == 3
    assert profile.column("s").missing_rate == 1.0
    assert profile.column("f").summary()["distinct"] == 0


def test_stored_profile_is_standard_json(local_ws: Workspace) -> None:
    # The profile lives in a JSON column; PostgreSQL's json type rejects NaN and Infinity.
    table = pa.table({"id": [1, 2], "f": pa.array([None, None], pa.float64()), "s": ["a", None]})
    ref = local_ws.datasets.add("d", table, id="id")
    record = local_ws.catalog.get_version("d", ref.version)
    json.dumps(record.profile, allow_nan=False)  # raises ValueError on NaN / Infinity


def test_summary_is_readable(local_ws: Workspace, make_table) -> None:
    ref = local_ws.datasets.add("d", make_table(100), id="id", label="label")
    summary = local_ws.datasets.profile(ref).column("x").summary()
    assert summary["kind"] == "numeric"
    assert set(summary["quantiles"]) == {"0.0", "0.01", "0.05", "0.25", "0.5", "0.75", "0.95", "0.99", "1.0"}
    assert summary["stats"]["min"] <= summary["quantiles"]["0.5"] <= summary["stats"]["max"]
    assert local_ws.datasets.profile(ref).column("label").summary()["top"] == {
        "cat": 34,
        "dog": 33,
        "fish": 33,
    }
