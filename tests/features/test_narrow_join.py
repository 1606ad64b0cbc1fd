"""The narrow ASOF join with late fetch, with and without the per-key time-window cut.

Every plan must give the brute-force answer: latest row at or before T (ties to the row stored
last, across files too), within ttl, composite keys, null keys, two views with different ttls.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from keelml.features import Entity, FeatureView, ParquetFiles, point_in_time
from keelml.features.offline import _bounds, _share, check_entity_rows
from keelml.features.scan import connect, register

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
SHOP = Entity("shop_item", keys=("shop", "item"))
US = pa.timestamp("us", "UTC")


def _events(rng: np.random.Generator, n: int, name: str) -> pa.Table:
    minutes = rng.integers(0, 60 * 24 * 20, n) // 30 * 30  # coarse times: many ties
    return pa.table(
        {
            "shop": pa.array(rng.integers(0, 3, n), pa.int64()),
            "item": pa.array([f"i{v}" for v in rng.integers(0, 4, n)]),
            "ts": pa.array([T0 + dt.timedelta(minutes=int(m)) for m in minutes], US),
            name: rng.normal(size=n),
        }
    )


def _reference(feats: pa.Table, rows: pa.Table, name: str, ttl: dt.timedelta) -> list[float | None]:
    events = [{**e, "i": i} for i, e in enumerate(feats.to_pylist())]
    out: list[float | None] = []
    for row in rows.to_pylist():
        seen = [
            e
            for e in events
            if (e["shop"], e["item"]) == (row["shop"], row["item"]) and e["ts"] <= row["event_time"]
        ]
        best = max(seen, key=lambda e: (e["ts"], e["i"]), default=None)
        out.append(best[name] if best and row["event_time"] - best["ts"] <= ttl else None)
    return out


@pytest.mark.parametrize("prefilter", [True, False, None])
def test_every_plan_gives_the_reference_answer(tmp_path: Path, prefilter: bool | None) -> None:
    rng = np.random.default_rng(5)
    a, b = _events(rng, 400, "a"), _events(rng, 300, "b")
    halves = [a.slice(0, 200), a.slice(200)]  # a's rows in two files, stored in this order
    paths = []
    for i, part in enumerate(halves):
        paths.append(str(tmp_path / f"a{i}.parquet"))
        pq.write_table(part, paths[-1])
    minutes = rng.integers(-600, 60 * 24 * 22, 250) // 30 * 30  # on the event grid: exact-T ties
    rows = pa.table(
        {
            "shop": pa.array(
                [None if i % 50 == 0 else int(v) for i, v in enumerate(rng.integers(0, 4, 250))]
            ),
            "item": pa.array([f"i{v}" for v in rng.integers(0, 5, 250)]),
            "event_time": pa.array([T0 + dt.timedelta(minutes=int(m)) for m in minutes], US),
            "label": pa.array(np.arange(250)),
        }
    )
    ttl_a, ttl_b = dt.timedelta(days=2), dt.timedelta(hours=5)
    va = FeatureView("va", entity=SHOP, source="s", timestamp="ts", ttl=ttl_a, features=("a",))
    vb = FeatureView("vb", entity=SHOP, source="s", timestamp="ts", ttl=ttl_b, features=("b",))
    out = pa.Table.from_batches(
        list(
            point_in_time(
                rows,
                "event_time",
                [(va, ParquetFiles(tuple(paths)), ["a"]), (vb, b, ["b"])],
                batch_rows=64,
                prefilter=prefilter,
            )
        )
    )
    assert out.column_names == ["shop", "item", "event_time", "label", "a", "b"]
    assert out.column("label").to_pylist() == list(range(250))
    expected_a, expected_b = _reference(a, rows, "a", ttl_a), _reference(b, rows, "b", ttl_b)
    assert out.column("a").to_pylist() == expected_a
    assert out.column("b").to_pylist() == expected_b
    assert None in expected_b and sum(v is not None for v in expected_b) > 20


def _share_of(rows: pa.Table, feats: pa.Table, ttl: dt.timedelta) -> float:
    con = connect(1, None, None)
    register(con, "e_src", check_entity_rows(rows, "event_time", ["shop", "item"]), rows.column_names)
    con.execute("CREATE TEMP VIEW e AS SELECT * FROM e_src")
    register(con, "f", feats, feats.column_names)
    bounds = _bounds(con, {}, ("shop", "item"), "event_time")
    share = _share(con, bounds, "f", 'CAST("ts" AS TIMESTAMPTZ)', int(ttl.total_seconds() * 1_000_000))
    con.close()
    return share


def test_the_cut_is_skipped_only_when_each_key_spans_the_whole_range() -> None:
    feats = _events(np.random.default_rng(1), 500, "a")  # 20 days of events
    snapshot = pa.table(  # every key at one time: each window is the ttl
        {
            "shop": pa.array([0, 1, 2], pa.int64()),
            "item": ["i0", "i1", "i2"],
            "event_time": pa.array([T0 + dt.timedelta(days=10)] * 3, US),
        }
    )
    assert _share_of(snapshot, feats, dt.timedelta(days=1)) == pytest.approx(1 / 20, rel=0.05)
    spread = pa.table(  # each key at the start and at the end: every window spans the range
        {
            "shop": pa.array([0, 0, 1, 1], pa.int64()),
            "item": ["i0", "i0", "i1", "i1"],
            "event_time": pa.array([T0, T0 + dt.timedelta(days=21)] * 2, US),
        }
    )
    assert _share_of(spread, feats, dt.timedelta(days=1)) > 0.99


@pytest.mark.parametrize("prefilter", [None, True, False])
def test_times_before_1970_unpack_to_the_right_row(prefilter: bool | None) -> None:
    """Negative event times: the packed (time, position) key must unpack to the same row."""
    one = Entity("c", keys=("cid",))
    view = FeatureView(
        "v", entity=one, source="s", timestamp="ts", ttl=dt.timedelta(hours=3), features=("x",)
    )
    epoch = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    at = [epoch + dt.timedelta(hours=h) for h in (-50, -49, -47, -1, 1, 2, 3)]
    feats = pa.table(
        {"cid": [1, 1, 2, 2, 3, 3, 3], "ts": pa.array(at, US), "x": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]}
    )
    ask = [epoch + dt.timedelta(hours=h) for h in (-48, -46, -45, 1, 3, 5, 6)]
    rows = pa.table({"cid": [1, 1, 1, 2, 3, 2, 3], "at": pa.array(ask, US)})
    out = pa.Table.from_batches(list(point_in_time(rows, "at", [(view, feats, ["x"])], prefilter=prefilter)))
    assert out.column("x").to_pylist() == [2.0, 2.0, None, 4.0, 7.0, None, 7.0]
