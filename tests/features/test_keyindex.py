"""The sorted key index gives exactly the ASOF JOIN's answer, is built once per source version, and
steps aside (to the join) for views it cannot serve."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.features import Entity, FeatureRepo, FeatureView, point_in_time
from keelml.features.keyindex import KeyIndex, indexed_point_in_time, unsupported
from tests.features.conftest import ORDERS, orders_table

T0 = dt.datetime(1969, 12, 20, tzinfo=dt.UTC)  # the times straddle 1970: negative epoch microseconds
ENTITY = Entity("c", keys=("cid",))


def view(ttl_hours: int = 30, features: tuple[str, ...] = ("x", "n")) -> FeatureView:
    return FeatureView("v", entity=ENTITY, source="s", timestamp="ts", ttl=dt.timedelta(hours=ttl_hours),
                       features=features)  # fmt: skip


def feature_rows(seed: int, n: int = 400) -> pa.Table:
    """Keys -3..8 (some null), hourly times with many ties, features with nulls."""
    rng = np.random.default_rng(seed)
    hours = rng.integers(0, 24 * 20, n)
    hours[n // 2 :] = hours[: n - n // 2]  # every second row ties an earlier one on time
    keys = rng.integers(-3, 9, n)
    keys[n // 2 :] = keys[: n - n // 2]  # ... and on key
    return pa.table(
        {
            "cid": pa.array([None if i % 37 == 0 else int(k) for i, k in enumerate(keys)], pa.int64()),
            "ts": pa.array(
                [None if i % 41 == 5 else T0 + dt.timedelta(hours=int(h)) for i, h in enumerate(hours)],
                pa.timestamp("us", "UTC"),
            ),
            "x": pa.array([None if i % 13 == 0 else float(i) for i in range(n)], pa.float64()),
            "n": pa.array(np.arange(n), pa.int32()),
        }
    )


def entity_rows(seed: int, n: int = 500) -> pa.Table:
    rng = np.random.default_rng(seed + 100)
    minutes = rng.integers(-600, 60 * 24 * 22, n)
    minutes[::7] = (minutes[::7] // 60) * 60  # exactly on the hour: on a feature row's time
    keys = rng.integers(-5, 11, n)  # -5, -4, 9, 10 have no rows
    return pa.table(
        {
            "cid": pa.array([None if i % 53 == 0 else int(k) for i, k in enumerate(keys)], pa.int64()),
            "at": pa.array([T0 + dt.timedelta(minutes=int(m)) for m in minutes], pa.timestamp("us", "UTC")),
            "label": pa.array(np.arange(n) % 2),
        }
    )


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("ttl_hours", [1, 30, 24 * 400])
def test_the_index_gives_the_asof_joins_answer(seed: int, ttl_hours: int) -> None:
    v, source, rows = view(ttl_hours), feature_rows(seed), entity_rows(seed)
    joined = pa.Table.from_batches(list(point_in_time(rows, "at", [(v, source, ["x", "n"])], batch_rows=64)))
    index = KeyIndex.build(source, v)
    assert index is not None
    got = pa.Table.from_batches(
        list(indexed_point_in_time(rows, "at", [(v, index, ["x", "n"])], batch_rows=64))
    )
    assert got.schema == joined.schema
    assert got.to_pylist() == joined.to_pylist()
    assert 0 < got.column("n").null_count < rows.num_rows  # some rows matched, some did not


def test_wide_keys_with_nulls_and_other_feature_types_match_the_join() -> None:
    at = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    big = 2**60  # past float64's 2^53: a null in the key column must not turn the keys into floats
    v = FeatureView("v", entity=ENTITY, source="s", timestamp="ts", ttl=dt.timedelta(days=2),
                    features=("s", "b", "d", "ls"))  # fmt: skip
    source = pa.table(
        {
            "cid": pa.array([big, big + 1, None, big], pa.int64()),
            "ts": pa.array([at, at + dt.timedelta(hours=1), at, None], pa.timestamp("ms", "UTC")),
            "s": ["a", "b", "c", "d"],
            "b": [True, False, None, True],
            "d": pa.array([dt.date(2024, 1, 1)] * 4),
            "ls": pa.array(["x", "y", "z", "w"], pa.large_string()),
        }
    )
    rows = pa.table(
        {"cid": pa.array([big, big + 1, big + 2, None], pa.int64()), "at": [at + dt.timedelta(hours=5)] * 4}
    )
    want = pa.Table.from_batches(list(point_in_time(rows, "at", [(v, source, list(v.features))])))
    index = KeyIndex.build(source, v)
    assert index is not None
    got = pa.Table.from_batches(list(indexed_point_in_time(rows, "at", [(v, index, list(v.features))])))
    assert got.schema == want.schema and got.to_pylist() == want.to_pylist()
    assert got.column("s").to_pylist() == ["a", "b", None, None]


def _recode(table: pa.Table, kind: pa.DataType, offset: int = 0) -> pa.Table:
    """``table`` with its integer ``cid`` keys turned into ``kind`` (strings like "k-3", or uint64)."""
    values = table.column("cid").to_pylist()
    if pa.types.is_uint64(kind):
        keys = pa.array([None if k is None else k + offset for k in values], kind)
    else:
        text = [None if k is None else f"k{k}" for k in values]
        keys = pa.array([t if t is None or not pa.types.is_binary(kind) else t.encode() for t in text], kind)
    return table.set_column(table.column_names.index("cid"), "cid", keys)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize(
    ("source_kind", "rows_kind"),
    [(pa.string(), pa.string()), (pa.large_string(), pa.string()), (pa.string(), pa.large_string()),
     (pa.binary(), pa.binary()), (pa.uint64(), pa.uint64())],
)  # fmt: skip
def test_string_binary_and_uint64_keys_are_coded_and_give_the_joins_answer(
    seed: int, source_kind: pa.DataType, rows_kind: pa.DataType, tmp_path: Path
) -> None:
    offset = 2**63 + 5  # uint64 keys past int64: the codes, not the values, are packed
    v = view(30)
    source = _recode(feature_rows(seed), source_kind, offset)
    rows = _recode(entity_rows(seed), rows_kind, offset)  # keys -5, -4, 9, 10 are not in the source
    joined = pa.Table.from_batches(list(point_in_time(rows, "at", [(v, source, ["x", "n"])], batch_rows=64)))
    built = KeyIndex.build(source, v)
    assert built is not None and built.vocabulary is not None and built.accepts(rows_kind)
    built.save(tmp_path / "i")
    for index in (built, KeyIndex.load(tmp_path / "i")):  # the vocabulary survives the round trip
        assert index is not None
        got = pa.Table.from_batches(
            list(indexed_point_in_time(rows, "at", [(v, index, ["x", "n"])], batch_rows=64))
        )
        assert got.schema == joined.schema and got.to_pylist() == joined.to_pylist()
        assert 0 < got.column("n").null_count < rows.num_rows
    assert not built.accepts(pa.int64())  # integer entity keys against a coded index: the join decides


def test_exact_ttl_edge_and_ties_go_to_the_row_stored_last() -> None:
    at = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)
    source = pa.table({"cid": [1, 1, 1], "ts": [at, at, at - dt.timedelta(hours=1)], "x": [1.0, 2.0, 3.0],
                       "n": pa.array([0, 1, 2], pa.int32())})  # fmt: skip
    rows = pa.table({"cid": [1, 1], "at": [at, at + dt.timedelta(hours=1)]})
    index = KeyIndex.build(source, view(ttl_hours=1))
    assert index is not None
    out = pa.Table.from_batches(list(indexed_point_in_time(rows, "at", [(view(1), index, ["x"])])))
    assert out.column("x").to_pylist() == [2.0, 2.0]  # the later-stored tie; T - ts == ttl is kept


def test_views_the_index_cannot_serve_are_named_with_a_reason() -> None:
    two = FeatureView("v", entity=Entity("c", keys=("a", "b")), source="s", timestamp="ts",
                      ttl=dt.timedelta(days=1), features=("x",))  # fmt: skip
    assert "2 key columns" in (unsupported(two, pa.schema([("a", pa.int64()), ("b", pa.int64())])) or "")
    assert "is double" in (unsupported(view(), pa.schema([("cid", pa.float64())])) or "")
    assert "not a column" in (unsupported(view(), pa.schema([("other", pa.int64())])) or "")
    for kind in (pa.string(), pa.large_string(), pa.binary(), pa.uint64(), pa.int8()):
        assert unsupported(view(), pa.schema([("cid", kind)])) is None
    wide = pa.table({"cid": pa.array([0, 2**40], pa.int64()), "ts": pa.array([0, 2**30], pa.timestamp("us", "UTC")),
                     "x": [0.0, 1.0], "n": pa.array([0, 1], pa.int32())})  # fmt: skip
    assert KeyIndex.build(wide, view()) is None  # 41 key bits + 31 time bits > 62: the join serves it


def test_saved_indexes_load_and_damaged_ones_are_refused(tmp_path: Path) -> None:
    index = KeyIndex.build(feature_rows(0), view())
    assert index is not None
    index.save(tmp_path / "i")
    loaded = KeyIndex.load(tmp_path / "i")
    assert loaded is not None and np.array_equal(loaded.keys, index.keys)
    assert loaded.features.equals(index.features)
    assert KeyIndex.load(tmp_path / "absent") is None
    (tmp_path / "i" / "meta.json").write_text('{"format": 0}')
    assert KeyIndex.load(tmp_path / "i") is None
    (tmp_path / "i" / "meta.json").write_text("{not json")
    assert KeyIndex.load(tmp_path / "i") is None
    assert [p.name for p in tmp_path.iterdir()] == ["i"]  # no temporary folder left behind


def test_an_empty_source_matches_nothing() -> None:
    empty = feature_rows(0).slice(0, 0)
    index = KeyIndex.build(empty, view())
    assert index is not None
    out = pa.Table.from_batches(
        list(indexed_point_in_time(entity_rows(0, 5), "at", [(view(), index, ["x"])]))
    )
    assert out.column("x").null_count == 5


def test_the_workspace_builds_the_index_once_per_source_version(
    fws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(4)
    times = [
        orders_table().column("ts")[0].as_py() + dt.timedelta(hours=int(h))
        for h in rng.integers(-5, 800, 300)
    ]
    rows = pa.table({"customer_id": pa.array(rng.integers(0, 22, 300), pa.int64()), "event_time": times})
    joined = fws.features.get_historical_features(rows, ["amount", "amount_per_item"])
    indexed = fws.features.get_historical_features(rows, ["amount", "amount_per_item"], index=True)
    assert indexed.to_pylist() == joined.to_pylist()
    folders = list((fws.storage_root / "features" / "index").iterdir())
    assert len(folders) == 1 and folders[0].name.startswith(ORDERS.name)

    def no_rebuild(*args: object) -> None:
        raise AssertionError("the saved index should have been used")

    monkeypatch.setattr(KeyIndex, "build", no_rebuild)
    again = fws.features.get_historical_features(rows, ["amount"], index=True)
    assert again.column("amount").to_pylist() == joined.column("amount").to_pylist()
    monkeypatch.undo()
    (folders[0] / "meta.json").write_text("{damaged")  # a damaged index is rebuilt in place
    fixed = fws.features.get_historical_features(rows, ["amount"], index=True)
    assert fixed.column("amount").to_pylist() == joined.column("amount").to_pylist()
    assert KeyIndex.load(folders[0]) is not None
    fws.datasets.add("orders", orders_table(seed=9), time="ts", id="order_id")  # a new version: a new index
    newer = fws.features.get_historical_features(rows, ["amount"], index=True)
    assert newer.to_pylist() == fws.features.get_historical_features(rows, ["amount"]).to_pylist()
    left = list((fws.storage_root / "features" / "index").iterdir())
    assert len(left) == 1 and left != folders  # the older version's index was replaced


def test_a_view_with_a_string_key_is_served_by_a_coded_index(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "w")
    try:
        orders = orders_table()
        ws.datasets.add("orders", orders.set_column(1, "customer_id", orders.column("customer_id").cast(pa.string())),
                        time="ts", id="order_id")  # fmt: skip
        ws.features.use(FeatureRepo(entities=(Entity("customer", keys=("customer_id",)),), views=(ORDERS,)))
        rows = pa.table(
            {"customer_id": ["1", "2"], "event_time": [dt.datetime(2024, 1, 20, tzinfo=dt.UTC)] * 2}
        )
        a = ws.features.get_historical_features(rows, ["amount"], index=True)
        assert a.to_pylist() == ws.features.get_historical_features(rows, ["amount"]).to_pylist()
        assert a.column("amount").null_count < rows.num_rows  # the string keys matched
        saved = KeyIndex.load(next((ws.storage_root / "features" / "index").iterdir()))
        assert saved is not None and saved.vocabulary is not None
        ints = pa.table({"customer_id": [1, 2], "event_time": rows.column("event_time")})
        b = ws.features.get_historical_features(ints, ["amount"], index=True)  # not the index's key type
        assert b.to_pylist() == ws.features.get_historical_features(ints, ["amount"]).to_pylist()
    finally:
        ws.features.close()
        ws.close()


def test_bad_entity_rows_get_the_joins_errors_through_the_index(fws: Workspace) -> None:
    from keelml.features import FeatureNameConflictError, MissingTimestampError

    at = orders_table().column("ts")[0].as_py()
    with pytest.raises(MissingTimestampError, match="no timestamp column"):
        fws.features.get_historical_features(pa.table({"customer_id": [1]}), ["amount"], index=True)
    nulls = pa.table({"customer_id": [1, 2], "event_time": pa.array([at, None], pa.timestamp("us", "UTC"))})
    with pytest.raises(MissingTimestampError, match="1 entity rows have no timestamp"):
        fws.features.get_historical_features(nulls, ["amount"], index=True)
    clash = pa.table({"customer_id": [1], "event_time": [at], "amount": [1.0]})
    with pytest.raises(FeatureNameConflictError):
        fws.features.get_historical_features(clash, ["amount"], index=True)
