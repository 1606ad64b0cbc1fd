"""DuckDB scanning sources in place: entity rows from files and datasets, incremental materialize."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keelml import Workspace
from keelml.core.errors import InvalidInputError
from keelml.features import FeatureView, MissingTimestampError, ParquetFiles, point_in_time
from tests.features.conftest import CUSTOMER, T0, orders_table

AFTER_ALL = T0 + dt.timedelta(days=31)  # later than every generated order


def _rows(n: int = 200, seed: int = 4) -> pa.Table:
    rng = np.random.default_rng(seed)
    times = [T0 + dt.timedelta(hours=int(h)) for h in rng.integers(0, 24 * 33, n)]
    return pa.table(
        {
            "customer_id": pa.array(rng.integers(0, 22, n), pa.int64()),
            "event_time": pa.array(times, pa.timestamp("us", "UTC")),
            "label": pa.array(rng.integers(0, 2, n), pa.int64()),
        }
    )


def test_entity_rows_from_a_file_or_a_dataset_give_the_same_rows(fws: Workspace, tmp_path: Path) -> None:
    rows = _rows()
    path = tmp_path / "rows.parquet"
    pq.write_table(rows, path)
    fws.datasets.add("labels", rows, time="event_time")
    features = ["amount", "amount_per_item"]
    from_arrow = fws.features.get_historical_features(rows, features, batch_rows=50)
    assert fws.features.get_historical_features(str(path), features, batch_rows=50).equals(from_arrow)
    assert fws.features.get_historical_features("labels", features, batch_rows=50).equals(from_arrow)
    assert from_arrow.column_names == ["customer_id", "event_time", "label", *features]
    ref = fws.features.create_training_dataset("train", "labels", features, label="label")
    assert fws.datasets.read(ref).num_rows == rows.num_rows


def test_entity_files_without_usable_timestamps_are_refused(
    fws: Workspace, tmp_path: Path, explains: Callable[..., str]
) -> None:
    no_time = tmp_path / "no_time.parquet"
    pq.write_table(pa.table({"customer_id": [1]}), no_time)
    with pytest.raises(MissingTimestampError) as info:
        fws.features.get_historical_features(str(no_time), ["amount"])
    explains(info.value, "event_time")
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(
        pa.table({"customer_id": [1, 2], "event_time": pa.array([T0, None], pa.timestamp("us", "UTC"))}),
        nulls,
    )
    with pytest.raises(MissingTimestampError) as info:
        fws.features.get_historical_features(str(nulls), ["amount"])
    explains(info.value, "row 1")
    numbers = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"customer_id": [1], "event_time": [1.5]}), numbers)
    with pytest.raises(MissingTimestampError) as info:
        fws.features.get_historical_features(str(numbers), ["amount"])
    explains(info.value, "DOUBLE")
    with pytest.raises(InvalidInputError):
        fws.features.get_historical_features(str(tmp_path / "missing.parquet"), ["amount"])


def test_ties_across_files_go_to_the_file_stored_last(tmp_path: Path) -> None:
    view = FeatureView(
        "v", entity=CUSTOMER, source="s", timestamp="ts", ttl=dt.timedelta(days=1), features=("x",)
    )
    paths = []
    for i, x in enumerate([1.0, 2.0]):
        paths.append(str(tmp_path / f"part{i}.parquet"))
        pq.write_table(
            pa.table(
                {"customer_id": [1, 1], "ts": pa.array([T0, T0], pa.timestamp("us", "UTC")), "x": [x, x + 10]}
            ),
            paths[-1],
        )
    rows = pa.table({"customer_id": [1], "event_time": pa.array([T0], pa.timestamp("us", "UTC"))})
    out = pa.Table.from_batches(
        list(point_in_time(rows, "event_time", [(view, ParquetFiles(tuple(paths)), ["x"])]))
    )
    assert out.column("x").to_pylist() == [12.0]


def test_incremental_materialize_reads_only_the_new_files(fws: Workspace) -> None:
    full = fws.features.materialize(now=AFTER_ALL)
    assert full.views[0].files_read == 1 and full.views[0].rows_read == 200
    nothing = fws.features.materialize(incremental=True, now=AFTER_ALL)
    assert (nothing.views[0].files_read, nothing.views[0].rows_read, nothing.views[0].entities_written) == (
        0,
        0,
        0,
    )
    late = orders_table(customers=3, events=5, seed=9)
    late = late.set_column(0, "order_id", pa.array(range(1000, 1005), pa.int64()))
    later = [AFTER_ALL + dt.timedelta(hours=h) for h in range(1, 6)]
    late = late.set_column(2, "ts", pa.array(later, pa.timestamp("us", "UTC")))
    fws.datasets.append("orders", late)
    now = AFTER_ALL + dt.timedelta(days=1)
    assert not fws.features.check_parity(sample=20, now=now).ok  # the store has not seen the new rows
    step = fws.features.materialize(incremental=True, now=now).views[0]
    # only the appended file is scanned: its 5 rows, not the 200 already materialized
    assert (step.files_read, step.rows_read, step.incremental) == (1, 5, True)
    assert step.entities_written == len(set(late.column("customer_id").to_pylist()))
    assert step.watermark == later[-1]
    assert fws.features.check_parity(sample=20, now=now).ok
