"""Materialization, online lookups (SQLite and Redis), on-demand features and parity."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from keelml import Workspace
from keelml.core.errors import BackendUnavailableError, InvalidInputError
from keelml.features import (
    DerivedFeature,
    FeatureFunctionError,
    FeatureRepo,
    RedisOnlineStore,
    SQLiteOnlineStore,
    on_demand,
    open_online_store,
)
from keelml.testing.online_stores import check_online_store
from tests.features.conftest import (
    CUSTOMER,
    ORDERS,
    REPO,
    T0,
    flush_namespace,
    orders_table,
    redis_or_skip,
    safe_ratio,
)

NOW = T0 + dt.timedelta(days=29)
FEATURES = ["amount", "items", "amount_per_item"]


def _set_online_store(ws: Workspace, uri: str) -> Workspace:
    text = (
        (ws.root / "keel.toml")
        .read_text()
        .replace('online_store = "sqlite:///.keel/online.db"', f'online_store = "{uri}"')
    )
    (ws.root / "keel.toml").write_text(text)
    reopened = Workspace.open(ws.root)
    reopened.features.use(REPO)
    return reopened


@pytest.fixture(params=["sqlite", "redis"])
def online_ws(request: pytest.FixtureRequest, fws: Workspace) -> Iterator[Workspace]:
    """The feature workspace on the embedded SQLite store, then on the Redis server."""
    if request.param == "sqlite":
        yield fws
        return
    ws = _set_online_store(fws, redis_or_skip())
    try:
        yield ws
    finally:
        flush_namespace(ws.config.backends.online_store, ws.features.namespace)
        ws.features.close()
        ws.close()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_online_stores_pass_the_conformance_suite(backend: str, tmp_path: Path) -> None:
    if backend == "sqlite":
        check_online_store(lambda: SQLiteOnlineStore(str(tmp_path / "online.db")))
        return
    url = redis_or_skip()
    namespace = f"keel-test-{secrets.token_hex(6)}"
    try:
        check_online_store(lambda: RedisOnlineStore(url, namespace=namespace))
    finally:
        flush_namespace(url, namespace)


def test_materialize_then_lookup_is_at_parity(online_ws: Workspace) -> None:
    result = online_ws.features.materialize(now=NOW)
    (view,) = result.views
    assert view.entities_written == 20 and not view.incremental
    report = online_ws.features.check_parity(sample=20, now=NOW)
    assert report.entities == 20 and report.ok, report.to_json()
    assert set(report.features) == set(FEATURES)


def test_lookup_values_and_ttl(online_ws: Workspace) -> None:
    online_ws.features.materialize(now=NOW)
    rows = [{"customer_id": c} for c in range(22)]
    fresh = online_ws.features.get_online_features(rows, FEATURES, now=NOW).rows
    table = pa.table(
        {"customer_id": list(range(22)), "event_time": pa.array([NOW] * 22, pa.timestamp("us", "UTC"))}
    )
    offline = online_ws.features.get_historical_features(table, FEATURES).select(FEATURES).to_pylist()
    assert list(fresh) == offline
    assert fresh[20] == dict.fromkeys(FEATURES)  # never seen
    later = online_ws.features.get_online_features(rows, FEATURES, now=NOW + dt.timedelta(days=30)).rows
    assert all(r == dict.fromkeys(FEATURES) for r in later)  # all past the 3-day ttl
    one = online_ws.features.get_online_features([{"customer_id": 3}], ["amount"], now=NOW)
    assert one.features == ("amount",) and one.rows[0]["amount"] == fresh[3]["amount"]


def test_on_demand_features_use_request_data_in_both_paths(online_ws: Workspace) -> None:
    online_ws.features.materialize(now=NOW)
    online = online_ws.features.get_online_features(
        [{"customer_id": 1, "cart": 0.0}, {"customer_id": 1, "cart": 1e9}], ["bigger_than_cart"], now=NOW
    )
    assert [r["bigger_than_cart"] for r in online.rows] == [True, False]
    rows = pa.table(
        {
            "customer_id": [1, 1],
            "event_time": pa.array([NOW] * 2, pa.timestamp("us", "UTC")),
            "cart": [0.0, 1e9],
        }
    )
    offline = online_ws.features.get_historical_features(rows, ["bigger_than_cart"])
    assert offline.column("bigger_than_cart").to_pylist() == [True, False]
    with pytest.raises(InvalidInputError):
        online_ws.features.get_online_features([{"customer_id": 1}], ["bigger_than_cart"], now=NOW)


def test_incremental_materialize_reads_only_new_rows(online_ws: Workspace) -> None:
    online_ws.features.materialize(now=NOW)
    late = orders_table(events=5, seed=9)
    late = late.set_column(0, "order_id", pa.array(range(1000, 1005), pa.int64()))
    late = late.set_column(
        2, "ts", pa.array([NOW + dt.timedelta(hours=h) for h in range(1, 6)], pa.timestamp("us", "UTC"))
    )
    online_ws.datasets.append("orders", late)
    later = NOW + dt.timedelta(days=1)
    stale = online_ws.features.check_parity(sample=20, now=later)
    assert not stale.ok and stale.per_feature()["amount"] > 0  # the store has not seen the new rows
    result = online_ws.features.materialize(incremental=True, now=later)
    # the new rows plus the old ones between the previous cutoff and the new one
    assert result.views[0].incremental and result.views[0].entities_written >= len(
        set(late.column("customer_id").to_pylist())
    )
    assert result.views[0].entities_written < 20
    assert online_ws.features.check_parity(sample=20, now=later).ok


def test_a_function_failing_online_names_the_row(fws: Workspace, explains: Callable[..., str]) -> None:
    def fragile(batch: pa.Table) -> list[float]:
        if any(c < 0 for c in batch["cart"].to_pylist()):
            raise ValueError("negative cart")
        return batch["cart"].to_pylist()

    repo = FeatureRepo(
        entities=REPO.entities,
        views=REPO.views,
        derived=(on_demand("cart_value", fragile, request=("cart",)),),
    )
    fws.features.use(repo).materialize(now=NOW)
    rows = [{"customer_id": 1, "cart": 1.0}, {"customer_id": 2, "cart": -1.0}]
    with pytest.raises(FeatureFunctionError) as info:
        fws.features.get_online_features(rows, ["cart_value"], now=NOW)
    explains(info.value, "cart_value", "row 1", "negative cart")
    with pytest.raises(InvalidInputError) as bad:
        fws.features.get_online_features(
            [{"customer_id": 1, "cart": 1.0}, {"customer_id": 2, "cart": "x"}], ["bigger_than_cart"], now=NOW
        )
    explains(bad.value, "cart")


def test_unreachable_redis_is_a_clear_error(explains: Callable[..., str]) -> None:
    with pytest.raises(BackendUnavailableError) as info:
        open_online_store("redis://127.0.0.1:1/0")
    explains(info.value, "Redis", "127.0.0.1:1")


def test_unreachable_redis_from_keel_toml(fws: Workspace) -> None:
    ws = _set_online_store(fws, "redis://127.0.0.1:1/0")
    with pytest.raises(BackendUnavailableError):
        ws.features.materialize(now=NOW)
    ws.close()


def test_a_new_repo_replaces_the_planned_lookups(fws: Workspace) -> None:
    """Lookups are planned once per feature list; `use` of another repo must not reuse the plan."""
    fws.features.materialize(now=NOW)
    first = fws.features.get_online_features([{"customer_id": 3}], ["amount_per_item"], now=NOW).rows[0]
    doubled = DerivedFeature(
        "amount_per_item", lambda b: pc.multiply(safe_ratio(b), 2.0), inputs=("amount", "items")
    )
    fws.features.use(FeatureRepo(entities=(CUSTOMER,), views=(ORDERS,), derived=(doubled,)))
    again = fws.features.get_online_features([{"customer_id": 3}], ["amount_per_item"], now=NOW).rows[0]
    assert first["amount_per_item"] is not None
    assert again["amount_per_item"] == pytest.approx(2 * first["amount_per_item"])
    with pytest.raises(InvalidInputError, match="unknown feature"):
        fws.features.get_online_features([{"customer_id": 3}], ["bigger_than_cart"], now=NOW)
