"""create_training_dataset streams the joined rows into one version; a failure part way leaves none."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.data import delta
from keelml.features import (
    DerivedFeature,
    FeatureFunctionError,
    FeatureRepo,
    FeatureView,
    JoinMemoryError,
    point_in_time,
)
from tests.features.conftest import CUSTOMER, ORDERS, PER_ITEM, T0


def _rows(n: int) -> pa.Table:
    times = [T0 + dt.timedelta(hours=5 * i) for i in range(n)]
    return pa.table(
        {
            "customer_id": pa.array([i % 23 for i in range(n)], pa.int64()),
            "event_time": pa.array(times, pa.timestamp("us", "UTC")),
            "label": pa.array([i % 2 for i in range(n)], pa.int64()),
        }
    )


def test_small_batches_give_the_rows_of_one_read(fws: Workspace) -> None:
    rows = _rows(120)
    wanted = ["amount", "items", "amount_per_item"]
    ref = fws.features.create_training_dataset("train", rows, wanted, label="label", batch_rows=7)
    stored = fws.datasets.read(ref)
    expected = fws.features.get_historical_features(rows, wanted)
    assert stored.num_rows == 120
    assert stored.to_pylist() == expected.to_pylist()  # in the entity rows' order
    assert fws.datasets.dataset("train").label_column == "label"
    assert fws.datasets.version(ref).source == "features:amount,items,amount_per_item"


def test_a_failure_in_a_later_batch_leaves_no_version(
    fws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    written: list[int] = []
    add = delta._StreamFiles.add

    def spy(self: delta._StreamFiles, batch: pa.RecordBatch) -> None:
        written.append(batch.num_rows)
        add(self, batch)

    monkeypatch.setattr(delta._StreamFiles, "add", spy)

    def fragile(batch: pa.Table) -> list[float]:
        if 22 in batch["customer_id"].to_pylist():
            raise ValueError("customer 22")
        return [0.0] * batch.num_rows

    bad = DerivedFeature("fragile", fragile, inputs=("amount",), request=("customer_id",))
    fws.features.use(FeatureRepo(entities=(CUSTOMER,), views=(ORDERS,), derived=(PER_ITEM, bad)))
    tables = fws.storage_root / "datasets" / "tables"
    before = sorted(tables.rglob("*.parquet"))
    # customer 22 is first in row 22: the batches of rows 0-9 and 10-19 are written before it fails
    with pytest.raises(FeatureFunctionError, match="22"):
        fws.features.create_training_dataset("train", _rows(60), ["amount", "fragile"], batch_rows=10)
    assert written == [10, 10]  # two batches were in files before the third failed
    assert fws.catalog.find_dataset("train") is None
    assert sorted(tables.rglob("*.parquet")) == before
    assert not [p for p in tables.iterdir() if p.name.startswith("train-")]


def test_the_spill_directory_is_made_with_its_parents(fws: Workspace) -> None:
    """DuckDB makes only the last level of its temp_directory, and only once it spills."""
    spill = fws.storage_root / "tmp" / "duckdb"
    assert not spill.parent.exists()
    fws.features.create_training_dataset("train", _rows(10), ["amount"], memory_limit="64MB")
    assert spill.is_dir()


def test_a_join_over_the_memory_limit_is_a_clear_error(explains: Callable[..., str]) -> None:
    rng = np.random.default_rng(0)
    n, t0 = 200_000, 1_700_000_000_000_000
    view = FeatureView(
        "v", entity=CUSTOMER, source="s", timestamp="ts", ttl=dt.timedelta(days=1), features=("x",)
    )
    feats = pa.table(
        {
            "customer_id": rng.integers(0, 1000, n),
            "ts": pa.array(t0 + rng.integers(0, 10**11, n)).cast(pa.timestamp("us", "UTC")),
            "x": rng.normal(size=n),
        }
    )
    rows = pa.table(
        {
            "customer_id": rng.integers(0, 1000, n),
            "event_time": pa.array(t0 + rng.integers(0, 10**11, n)).cast(pa.timestamp("us", "UTC")),
        }
    )
    with pytest.raises(JoinMemoryError) as info:
        list(point_in_time(rows, "event_time", [(view, feats, ["x"])], memory_limit="1MB", threads=1))
    assert isinstance(info.value, MemoryError)
    explains(info.value, "memory limit", "memory_limit=1MB")
