"""Definitions, apply and point-in-time retrieval (checked against a brute-force reference)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import ColumnNotFoundError, InvalidInputError
from keelml.features import (
    DerivedFeature,
    FeatureFunctionError,
    FeatureNameConflictError,
    FeatureRepo,
    FeatureView,
    MissingTimestampError,
    point_in_time,
)
from tests.features.conftest import CUSTOMER, ORDERS, PER_ITEM, REPO, T0, orders_table


def _reference(orders: pa.Table, rows: pa.Table, ttl: dt.timedelta) -> list[float | None]:
    """Latest amount at or before each row's time, within ttl: the definition, row by row."""
    events = [{**e, "i": i} for i, e in enumerate(orders.to_pylist())]
    out: list[float | None] = []
    for row in rows.to_pylist():
        seen = [e for e in events if e["customer_id"] == row["customer_id"] and e["ts"] <= row["event_time"]]
        best = max(seen, key=lambda e: (e["ts"], e["i"]), default=None)
        out.append(best["amount"] if best and row["event_time"] - best["ts"] <= ttl else None)
    return out


def _entity_rows(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    times = [T0 + dt.timedelta(minutes=int(m)) for m in rng.integers(-600, 60 * 24 * 35, n)]
    return pa.table(
        {
            "customer_id": pa.array(rng.integers(0, 22, n), pa.int64()),  # ids 20, 21 have no events
            "event_time": pa.array(times, pa.timestamp("us", "UTC")),
        }
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_point_in_time_matches_the_reference(fws: Workspace, seed: int) -> None:
    rows = _entity_rows(300, seed)
    out = fws.features.get_historical_features(rows, ["amount", "amount_per_item"], batch_rows=64)
    assert out.num_rows == rows.num_rows
    assert out.column("customer_id").equals(rows.column("customer_id"))  # order kept across batches
    expected = _reference(orders_table(), rows, ORDERS.ttl)
    assert out.column("amount").to_pylist() == expected
    assert any(v is None for v in expected) and any(v is not None for v in expected)


def test_exactly_at_the_event_time_and_at_the_ttl_edge(fws: Workspace) -> None:
    first = orders_table().sort_by("ts").to_pylist()[0]
    at = first["ts"]
    rows = pa.table(
        {
            "customer_id": [first["customer_id"]] * 3,
            "event_time": pa.array([at - dt.timedelta(microseconds=1), at, at], pa.timestamp("us", "UTC")),
        }
    )
    values = fws.features.get_historical_features(rows, ["amount"]).column("amount").to_pylist()
    assert values[0] is None and values[1] == first["amount"]


def test_naive_and_string_timestamps_are_utc(fws: Workspace) -> None:
    rows = pa.table({"customer_id": [0, 0], "event_time": ["2024-01-20T00:00:00", "2024-01-21T00:00:00"]})
    naive = pa.table(
        {"customer_id": [0, 0], "event_time": pa.array([dt.datetime(2024, 1, 20), dt.datetime(2024, 1, 21)])}
    )
    a = fws.features.get_historical_features(rows, ["amount"]).column("amount")
    b = fws.features.get_historical_features(naive, ["amount"]).column("amount")
    assert a.to_pylist() == b.to_pylist()


def test_entity_rows_without_timestamps_are_refused(fws: Workspace, explains: Callable[..., str]) -> None:
    with pytest.raises(MissingTimestampError) as info:
        fws.features.get_historical_features(pa.table({"customer_id": [1]}), ["amount"])
    explains(info.value, "event_time")
    empty = pa.table(
        {"customer_id": pa.array([], pa.int64()), "event_time": pa.array([], pa.timestamp("us", "UTC"))}
    )
    with pytest.raises(InvalidInputError) as info:
        fws.features.get_historical_features(empty, ["amount"])
    explains(info.value, "no entity rows")
    with_null = pa.table(
        {"customer_id": [1, 2], "event_time": pa.array([T0, None], pa.timestamp("us", "UTC"))}
    )
    with pytest.raises(MissingTimestampError) as info:
        fws.features.get_historical_features(with_null, ["amount"])
    explains(info.value, "row 1")


def test_a_function_failing_on_one_row_names_the_row(fws: Workspace, explains: Callable[..., str]) -> None:
    def fragile(batch: pa.Table) -> list[float]:
        out = []
        for cid, amount in zip(batch["customer_id"].to_pylist(), batch["amount"].to_pylist(), strict=True):
            if cid == 7:
                raise ZeroDivisionError("customer 7")
            out.append(amount or 0.0)
        return out

    bad = DerivedFeature("fragile", fragile, inputs=("amount",), request=("customer_id",))
    fws.features.use(FeatureRepo(entities=(CUSTOMER,), views=(ORDERS,), derived=(bad,)))
    rows = pa.table(
        {"customer_id": [1, 2, 7, 3], "event_time": pa.array([T0] * 4, pa.timestamp("us", "UTC"))}
    )
    with pytest.raises(FeatureFunctionError) as info:
        fws.features.get_historical_features(rows, ["fragile"])
    explains(info.value, "row 2", "'customer_id': 7", "ZeroDivisionError")


def test_conflicting_feature_names_are_refused(explains: Callable[..., str]) -> None:
    other = FeatureView(
        "other",
        entity=CUSTOMER,
        source="orders",
        timestamp="ts",
        ttl=dt.timedelta(days=1),
        features=("amount",),
    )
    with pytest.raises(FeatureNameConflictError) as info:
        FeatureRepo(entities=(CUSTOMER,), views=(ORDERS, other))
    explains(info.value, "amount", "orders_latest", "other")
    with pytest.raises(FeatureNameConflictError):
        FeatureRepo(
            views=(ORDERS,), derived=(DerivedFeature("items", lambda b: b["amount"], inputs=("amount",)),)
        )
    with pytest.raises(FeatureNameConflictError):
        FeatureView(
            "v", entity=CUSTOMER, source="orders", timestamp="ts", ttl=dt.timedelta(days=1), features=("ts",)
        )


def test_entity_rows_with_a_feature_named_column_are_refused(fws: Workspace) -> None:
    rows = pa.table(
        {"customer_id": [1], "event_time": pa.array([T0], pa.timestamp("us", "UTC")), "amount": [1.0]}
    )
    with pytest.raises(FeatureNameConflictError):
        fws.features.get_historical_features(rows, ["amount"])


def test_apply_versions_by_digest_with_lineage(fws: Workspace) -> None:
    first = fws.features.apply()
    assert [(r.name, r.version, r.status) for r in first.registered] == [
        ("orders_latest", 1, "new"),
        ("amount_per_item", 1, "new"),
        ("bigger_than_cart", 1, "new"),
    ]
    assert fws.features.apply().changed() == ()
    up = fws.catalog.lineage.graph("feature_view:orders_latest@1", "upstream")
    assert "dataset:orders@1" in {n.id for n in up.nodes}
    changed = DerivedFeature("amount_per_item", lambda b: b["amount"], inputs=("amount", "items"))
    fws.features.use(FeatureRepo(entities=(CUSTOMER,), views=(ORDERS,), derived=(changed,)))
    again = {r.name: (r.version, r.status) for r in fws.features.apply().registered}
    assert again == {"orders_latest": (1, "unchanged"), "amount_per_item": (2, "updated")}


def test_a_definition_with_a_missing_column_is_refused(fws: Workspace, explains: Callable[..., str]) -> None:
    bad = FeatureView(
        "bad",
        entity=CUSTOMER,
        source="orders",
        timestamp="ts",
        ttl=dt.timedelta(days=1),
        features=("amount", "discount"),
    )
    fws.features.use(FeatureRepo(entities=(CUSTOMER,), views=(bad,)))
    with pytest.raises(ColumnNotFoundError) as info:
        fws.features.apply()
    explains(info.value, "discount", "bad")
    with pytest.raises(ColumnNotFoundError):
        fws.features.get_historical_features(_entity_rows(3, 0), ["amount"])


def test_training_dataset_is_a_version_with_lineage(fws: Workspace) -> None:
    fws.features.apply()
    fws.datasets.add(
        "requests",
        _entity_rows(50, 3).append_column("label", pa.array([i % 2 for i in range(50)])),
        time="event_time",
    )
    ref = fws.features.create_training_dataset(
        "train", "requests", ["amount", "amount_per_item"], label="label"
    )
    table = fws.datasets.read(ref)
    assert table.num_rows == 50 and {"amount", "amount_per_item", "label"} <= set(table.column_names)
    parents = {n.id for n in fws.catalog.lineage.graph(ref.node_id, "upstream").nodes}
    assert {"dataset:orders@1", "dataset:requests@1", "feature_view:orders_latest@1"} <= parents


def test_definitions_load_from_the_module_in_keel_toml(fws: Workspace) -> None:
    (fws.root / "feature_repo.py").write_text(
        "import datetime as dt\n"
        "from keelml.features import Entity, FeatureView\n"
        "customer = Entity('customer', keys=('customer_id',))\n"
        "orders = FeatureView('orders_latest', entity=customer, source='orders', timestamp='ts',\n"
        "                     ttl=dt.timedelta(days=3), features=('amount',))\n"
    )
    with (fws.root / "keel.toml").open("a") as fh:
        fh.write('\n[features]\ndefinitions = "feature_repo.py"\n')
    ws = Workspace.open(fws.root)
    assert ws.features.repo.feature_names() == ("amount",)
    assert REPO.feature_names()[0] == "amount" and PER_ITEM.name == "amount_per_item"
    ws.close()


def test_a_row_one_microsecond_later_is_never_joined() -> None:
    view = FeatureView(
        "v", entity=CUSTOMER, source="s", timestamp="ts", ttl=dt.timedelta(days=1), features=("x",)
    )
    at = T0 + dt.timedelta(hours=1)
    feats = pa.table(
        {
            "customer_id": [1, 1],
            "ts": pa.array(
                [at + dt.timedelta(microseconds=1), at - dt.timedelta(hours=1)], pa.timestamp("us", "UTC")
            ),
            "x": [99.0, 1.0],
        }
    )
    rows = pa.table({"customer_id": [1], "event_time": pa.array([at], pa.timestamp("us", "UTC"))})
    out = pa.Table.from_batches(list(point_in_time(rows, "event_time", [(view, feats, ["x"])])))
    assert out.column("x").to_pylist() == [1.0]


def test_ties_on_event_time_go_to_the_row_stored_last() -> None:
    view = FeatureView(
        "v", entity=CUSTOMER, source="s", timestamp="ts", ttl=dt.timedelta(days=1), features=("x",)
    )
    feats = pa.table(
        {"customer_id": [1, 1, 1], "ts": pa.array([T0] * 3, pa.timestamp("us", "UTC")), "x": [1.0, 2.0, 3.0]}
    )
    rows = pa.table({"customer_id": [1], "event_time": pa.array([T0], pa.timestamp("us", "UTC"))})
    out = pa.Table.from_batches(list(point_in_time(rows, "event_time", [(view, feats, ["x"])])))
    assert out.column("x").to_pylist() == [3.0]


def test_pandas_mode_functions_give_the_same_values(fws: Workspace) -> None:
    as_pandas = DerivedFeature(
        "per_item_pd", lambda df: df["amount"] / df["items"], inputs=("amount", "items"), mode="pandas"
    )
    fws.features.use(FeatureRepo(entities=(CUSTOMER,), views=(ORDERS,), derived=(PER_ITEM, as_pandas)))
    out = fws.features.get_historical_features(_entity_rows(100, 5), ["amount_per_item", "per_item_pd"])
    assert out.column("per_item_pd").to_pylist() == out.column("amount_per_item").to_pylist()
    fws.features.materialize(now=T0 + dt.timedelta(days=29))
    online = fws.features.get_online_features(
        [{"customer_id": 1}], ["per_item_pd", "amount_per_item"], now=T0 + dt.timedelta(days=29)
    )
    assert online.rows[0]["per_item_pd"] == online.rows[0]["amount_per_item"]


def test_view_qualified_names(fws: Workspace, explains: Callable[..., str]) -> None:
    rows = _entity_rows(5, 1)
    qualified = fws.features.get_historical_features(rows, ["orders_latest:amount"])
    assert qualified.column("amount").equals(
        fws.features.get_historical_features(rows, ["amount"]).column("amount")
    )
    with pytest.raises(InvalidInputError) as info:
        fws.features.get_historical_features(rows, ["orders_latest:nope"])
    explains(info.value, "nope")
    with pytest.raises(InvalidInputError):
        fws.features.get_historical_features(rows, ["no_view:amount"])
