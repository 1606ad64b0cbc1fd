"""Fixtures: a workspace with an `orders` dataset and definitions over it; Redis on loopback.

``redis_url`` gives a Redis URL on 127.0.0.1:6379 (a fresh namespace per test comes from the
workspace path). Without the server, the Redis tests are skipped locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from keelml import Workspace
from keelml.features import DerivedFeature, Entity, FeatureRepo, FeatureView, on_demand

REDIS_URL = "redis://127.0.0.1:6379/15"
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def redis_or_skip() -> str:
    try:
        import redis

        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:
        message = (
            f"Redis online-store tests cannot run: {type(exc).__name__}: {exc}. To enable them, "
            "start a Redis server on 127.0.0.1:6379 (e.g. `redis-server --daemonize yes`) "
            "and pip install 'keelml[features]'."
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI=true: the Redis server is required in CI)", pytrace=False)
        pytest.skip(message)
    return REDIS_URL


def flush_namespace(url: str, namespace: str) -> None:
    """Delete every key a test wrote under ``namespace`` (data and metadata)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{namespace}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


def orders_table(customers: int = 20, events: int = 200, seed: int = 0) -> pa.Table:
    """Random order events: customer_id, ts (hours after T0), amount, items (>= 0, some 0)."""
    rng = np.random.default_rng(seed)
    hours = rng.integers(0, 24 * 30, events)
    return pa.table(
        {
            "order_id": pa.array(np.arange(events), pa.int64()),
            "customer_id": pa.array(rng.integers(0, customers, events), pa.int64()),
            "ts": pa.array([T0 + dt.timedelta(hours=int(h)) for h in hours], pa.timestamp("us", "UTC")),
            "amount": pa.array(np.round(rng.gamma(2.0, 20.0, events), 2)),
            "items": pa.array(rng.integers(1, 6, events), pa.int64()),
        }
    )


def safe_ratio(batch: pa.Table) -> pa.Array:
    return pc.divide(pc.cast(batch["amount"], pa.float64()), pc.cast(batch["items"], pa.float64()))


CUSTOMER = Entity("customer", keys=("customer_id",))
ORDERS = FeatureView(
    "orders_latest",
    entity=CUSTOMER,
    source="orders",
    timestamp="ts",
    ttl=dt.timedelta(days=3),
    features=("amount", "items"),
)
PER_ITEM = DerivedFeature("amount_per_item", safe_ratio, inputs=("amount", "items"))
BIG = on_demand(
    "bigger_than_cart", lambda b: pc.greater(b["amount"], b["cart"]), request=("cart",), inputs=("amount",)
)
REPO = FeatureRepo(entities=(CUSTOMER,), views=(ORDERS,), derived=(PER_ITEM, BIG))


@pytest.fixture
def fws(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace with the `orders` dataset (time column ts) and REPO in use."""
    ws = Workspace.init(tmp_path / "fws")
    ws.datasets.add("orders", orders_table(), time="ts", id="order_id")
    ws.features.use(REPO)
    try:
        yield ws
    finally:
        ws.features.close()
        ws.close()
