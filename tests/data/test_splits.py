"""Reproducible splits by random, time and group; versioned with lineage; checked for leakage."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import ColumnNotFoundError, InvalidInputError
from keelml.data.splits import SplitConfig, assign, split_dataset


def _table(n: int = 200) -> pa.Table:
    start = dt.datetime(2024, 1, 1)
    return pa.table(
        {
            "id": pa.array(range(n), pa.int64()),
            "x": pa.array(np.arange(n) % 17, pa.float64()),
            "user": pa.array([f"u{i % 20}" for i in range(n)]),
            "at": pa.array([start + dt.timedelta(hours=i) for i in range(n)], pa.timestamp("us")),
            "y": pa.array(["a"] * (n * 3 // 4) + ["b"] * (n // 4)),
        }
    )


def test_random_split_is_stratified_and_order_independent() -> None:
    table = _table()
    parts = assign(table, SplitConfig(test=0.2, seed=3), label="y", id="id")
    assert (parts == 1).sum() == 40
    labels = np.asarray(table.column("y").to_pylist())
    assert (labels[parts == 1] == "b").sum() == 10  # 25% of test, as in the whole
    shuffled = table.take(pa.array(np.random.default_rng(0).permutation(len(table))))
    again = assign(shuffled, SplitConfig(test=0.2, seed=3), label="y", id="id")
    by_id = dict(zip(shuffled.column("id").to_pylist(), again.tolist(), strict=True))
    assert [by_id[i] for i in range(len(table))] == parts.tolist()
    other_seed = assign(table, SplitConfig(test=0.2, seed=4), label="y", id="id")
    assert (other_seed != parts).any()


def test_exact_duplicates_stay_together() -> None:
    table = pa.table({"id": list(range(100)), "x": [float(i % 10) for i in range(100)]})
    parts = assign(table, SplitConfig(test=0.3), id="id")
    x = np.asarray(table.column("x"))
    assert all(len(set(parts[x == v].tolist())) == 1 for v in range(10))


def test_time_split_puts_the_latest_rows_in_test() -> None:
    table = _table()
    parts = assign(table, SplitConfig(by="time", column="at", test=0.2, validation=0.1))
    times = np.asarray(table.column("at").cast(pa.int64()))
    assert (
        times[parts == 0].max() < times[parts == 2].min() <= times[parts == 2].max() < times[parts == 1].min()
    )
    assert ((parts == 1).sum(), (parts == 2).sum()) == (40, 20)


def test_group_split_keeps_groups_whole() -> None:
    table = _table()
    parts = assign(table, SplitConfig(by="group", column="user", test=0.25, seed=1))
    users = np.asarray(table.column("user").to_pylist())
    assert all(len(set(parts[users == u].tolist())) == 1 for u in set(users))
    assert 0.15 <= (parts == 1).mean() <= 0.35


def test_config_and_input_errors(explains: Callable[..., str]) -> None:
    with pytest.raises(InvalidInputError) as info:
        SplitConfig(test=0.7, validation=0.4)
    explains(info.value, "do not leave rows for training")
    with pytest.raises(InvalidInputError) as info:
        SplitConfig(by="group")
    explains(info.value, "group column")
    with pytest.raises(InvalidInputError) as info:
        SplitConfig(by="alphabet")  # type: ignore[arg-type]
    explains(info.value, "unknown split method")
    with pytest.raises(ColumnNotFoundError):
        assign(_table(), SplitConfig(by="group", column="nope"))
    with_null = pa.table({"t": pa.array([1, None, 3], pa.int64())})
    with pytest.raises(InvalidInputError) as info:
        assign(with_null, SplitConfig(by="time", column="t"))
    explains(info.value, "missing values")


def test_split_dataset_writes_versioned_parts_with_lineage(local_ws: Workspace) -> None:
    local_ws.datasets.add("d", _table(), label="y", id="id", time="at")
    result = split_dataset(local_ws, "d", SplitConfig(seed=7))
    assert [(p.name, str(p.ref), p.rows) for p in result.parts] == [
        ("train", "d-train@1", 160),
        ("test", "d-test@1", 40),
    ]
    assert dict(result.parts[1].labels) == {"a": 30, "b": 10}
    assert result.leaked_rows == 0 and result.hard_leaked_rows == 0
    graph = local_ws.catalog.lineage.graph("dataset:d@1", "downstream")
    assert {(e.dst, e.relation) for e in graph.edges} == {
        ("dataset:d-train@1", "split"),
        ("dataset:d-test@1", "split"),
    }
    again = split_dataset(local_ws, "d@1", SplitConfig(seed=7))
    assert [p.ref for p in again.parts] == [p.ref for p in result.parts]  # same seed: same versions
    other = split_dataset(local_ws, "d@1", SplitConfig(seed=8))
    assert other.parts[0].ref.version == 2
    timed = split_dataset(local_ws, "d", SplitConfig(by="time", test=0.25))  # the dataset's time column
    assert timed.config.column == "at" and timed.parts[1].rows == 50


def test_leakage_is_reported_when_duplicates_cross_a_time_split(local_ws: Workspace) -> None:
    table = pa.table(
        {"id": list(range(10)), "t": list(range(10)), "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 1.0, 2.0]}
    )
    local_ws.datasets.add("dup", table, id="id")
    result = split_dataset(local_ws, "dup", SplitConfig(by="time", column="t", test=0.2))
    assert result.leakage[0].exact_rows == 2 and result.hard_leaked_rows == 2


def test_single_class_and_tiny_data(local_ws: Workspace, explains: Callable[..., str]) -> None:
    local_ws.datasets.add("one", pa.table({"x": [float(i) for i in range(10)], "y": ["a"] * 10}), label="y")
    assert [p.rows for p in split_dataset(local_ws, "one", SplitConfig(test=0.2)).parts] == [8, 2]
    local_ws.datasets.add("tiny", pa.table({"x": [1.0, 2.0]}))
    with pytest.raises(InvalidInputError) as info:
        split_dataset(local_ws, "tiny", SplitConfig(test=0.1))
    explains(info.value, "would be empty")
    with pytest.raises(InvalidInputError) as info:
        split_dataset(local_ws, "tiny", SplitConfig(by="time"))
    explains(info.value, "no time column")
