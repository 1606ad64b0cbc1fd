"""Entity keys resolved through the real feature store (SQLite online store), not a stand-in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from keelml import Workspace
from keelml.core.errors import ConfigError
from keelml.features import Entity, FeatureRepo, FeatureView
from keelml.serve import ServeConfig
from keelml.serve.source import OnlineFeatures
from tests.serve.fakes import fake_app

CUSTOMER = Entity("customer", keys=("customer_id",))
ORDERS = FeatureView("orders_latest", entity=CUSTOMER, source="orders", timestamp="ts",
                     ttl=dt.timedelta(days=7), features=("amount", "items"))  # fmt: skip


@pytest.fixture
def fws(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.init(tmp_path / "fws")
    recent = dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)
    orders = pa.table({
        "order_id": pa.array([1, 2, 3], pa.int64()), "customer_id": pa.array([1, 2, 2], pa.int64()),
        "ts": pa.array([recent - dt.timedelta(hours=2), recent - dt.timedelta(hours=1), recent],
                       pa.timestamp("us", "UTC")),
        "amount": pa.array([5000.0, 10.0, -7000.0]), "items": pa.array([1, 2, 3], pa.int64()),
    })  # fmt: skip
    ws.datasets.add("orders", orders, time="ts", id="order_id")
    ws.features.use(FeatureRepo(entities=(CUSTOMER,), views=(ORDERS,)))
    ws.features.materialize()
    try:
        yield ws
    finally:
        ws.features.close()
        ws.close()


def test_entity_keys_are_looked_up_in_the_online_store(fws: Workspace, tmp_path: Path) -> None:
    features = OnlineFeatures(fws, ["orders_latest:amount"])
    assert features.keys == ("customer_id",) and features.request_fields == ()
    config = ServeConfig(features=("orders_latest:amount",), log_flush_seconds=0.05)
    with TestClient(fake_app(tmp_path / "logs", config=config, features=features)) as client:
        rows = [
            {"customer_id": 1, "region": "south", "note": ""},
            {"customer_id": 2, "region": "south", "note": ""},
        ]
        reply = client.post("/v1/predict", json={"rows": rows})
        assert reply.status_code == 200, reply.text
        assert [p["label"] for p in reply.json()["predictions"]] == ["bad", "good"]  # amounts 5000 and -7000
        unknown = client.post("/v1/predict", json={"row": {"customer_id": 99, "region": "s", "note": ""}})
        assert unknown.status_code == 422
        assert unknown.json()["error"]["field"] == "rows[0].customer_id"
        assert "customer_id=99" in unknown.json()["error"]["constraint"]
        wrong = client.post("/v1/predict", json={"row": {"customer_id": "x" * 5, "region": "s", "note": ""}})
        assert wrong.status_code == 422


def test_unknown_feature_views_in_the_serve_settings_are_refused(fws: Workspace) -> None:
    with pytest.raises(ConfigError, match="unknown feature views: nope"):
        OnlineFeatures(fws, ["nope:amount"])
