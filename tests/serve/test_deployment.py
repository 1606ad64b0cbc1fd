"""Serving records a deployment in the lineage graph (model version -> deployment), at start and on
each hot reload to another version; and the request path stays on the event loop (no thread hop).

Model versions are added to the lineage graph as ``ws.models.register`` does (a ``model`` node), without
MLflow; the registry end to end (a real `keel serve` process) is in test_registry_serving.py.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from keelml.core.lineage import Edge
from keelml.core.workspace import Workspace
from keelml.serve import ServeConfig
from keelml.serve.source import DeploymentRecorder, deployment_node
from tests.serve.fakes import GOOD_ROW, FakeModel, FakeSource, fake_app

SPEC = "loans@production"
KEY = "s3cret-key-0123456789abcdef"


@pytest.fixture
def lws(tmp_path: Path) -> Iterator[Workspace]:
    ws = Workspace.init(tmp_path / "ws")
    with ws.catalog.begin() as conn:
        ws.catalog.lineage.add_node(conn, "dataset:loans@1", "dataset", "loans", 1)
        for version in (1, 2):
            ws.catalog.lineage.add_node(conn, f"model:loans@{version}", "model", "loans", version)
            ws.catalog.lineage.add_edge(conn, "dataset:loans@1", f"model:loans@{version}", "trained")
    try:
        yield ws
    finally:
        ws.close()


def test_start_and_reload_record_one_deployment_per_served_version(lws: Workspace, tmp_path: Path) -> None:
    source = FakeSource({1: FakeModel(weight=1.0), 2: FakeModel(weight=-1.0)})
    recorder = DeploymentRecorder(lws, SPEC, endpoint="http://10.0.0.5:8000", workers=2)
    with TestClient(fake_app(tmp_path / "storage", source, on_serve=recorder)) as client:
        v1 = deployment_node(SPEC, 1)
        assert client.get("/v1/model").json()["deployment"] == v1 == "deployment:loans@production/v1"
        node = lws.catalog.lineage.node(v1)
        assert (node.kind, node.name, node.version) == ("deployment", SPEC, 1)
        assert node.attrs["endpoint"] == "http://10.0.0.5:8000" and node.attrs["alias"] == "production"
        assert node.attrs["model_version"] == 1 and node.attrs["workers"] == 2 and node.attrs["started_at"]
        # the whole chain, walked upstream from the deployment: dataset version -> model version -> deployment
        up = lws.catalog.lineage.graph(v1, "upstream")
        assert Edge("model:loans@1", v1, "deployed") in up.edges
        assert Edge("dataset:loans@1", "model:loans@1", "trained") in up.edges

        source.alias = 2  # the alias moves: the reload serves and records v2
        assert client.app.state.service.holder.check() is True  # type: ignore[attr-defined]
        v2 = deployment_node(SPEC, 2)
        assert client.get("/v1/model").json()["deployment"] == v2
        assert Edge("model:loans@2", v2, "deployed") in lws.catalog.lineage.graph(v2, "upstream").edges
        assert client.post("/v1/predict", json={"row": GOOD_ROW}).json()["model_version"] == 2

        source.alias = 1  # rollback: the v1 deployment exists already, nothing is rewritten
        assert client.app.state.service.holder.check() is True  # type: ignore[attr-defined]
        assert client.get("/v1/model").json()["deployment"] == v1
    assert recorder.recorded == [v1, v2, v1]
    downstream = lws.catalog.lineage.graph("model:loans@1", "downstream")
    assert {n.id for n in downstream.nodes if n.kind == "deployment"} == {v1}


def test_a_catalog_that_cannot_be_written_does_not_stop_serving(
    lws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def locked() -> Any:
        raise RuntimeError("database is locked")

    monkeypatch.setattr(lws.catalog, "begin", locked)
    recorder = DeploymentRecorder(lws, SPEC)
    with TestClient(fake_app(tmp_path / "storage", on_serve=recorder)) as client:
        assert client.post("/v1/predict", json={"row": GOOD_ROW}).status_code == 200
        assert client.get("/v1/model").json()["deployment"] is None
    assert recorder.recorded == [] and "could not record deployment" in caplog.text


def test_a_worker_that_loses_the_race_to_write_the_node_reads_it_again(
    lws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Workers of one `keel serve --workers N` start together and record the same deployment."""
    lineage = lws.catalog.lineage
    original = lineage.add_node
    calls: list[str] = []

    def racing(conn: Any, node_id: str, *args: Any, **kwargs: Any) -> None:
        calls.append(node_id)
        if len(calls) == 1:  # the other worker's insert lands between our check and our insert
            with lws.catalog.begin() as other:
                original(other, node_id, *args, **kwargs)
            raise IntegrityError("INSERT INTO nodes", {}, Exception("UNIQUE constraint failed: nodes.id"))
        original(conn, node_id, *args, **kwargs)

    monkeypatch.setattr(lineage, "add_node", racing)
    recorder = DeploymentRecorder(lws, SPEC, workers=2)
    with TestClient(fake_app(tmp_path / "storage", on_serve=recorder)):
        pass
    v1 = deployment_node(SPEC, 1)
    assert calls == [v1, v1] and recorder.recorded == [v1] and "could not record" not in caplog.text
    assert Edge("model:loans@1", v1, "deployed") in lineage.graph(v1, "upstream").edges


def test_an_unregistered_model_version_gets_a_deployment_without_an_edge(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    try:
        with TestClient(fake_app(tmp_path / "storage", on_serve=DeploymentRecorder(ws, SPEC))) as client:
            assert client.get("/v1/model").json()["deployment"] == deployment_node(SPEC, 1)
        assert ws.catalog.lineage.graph(deployment_node(SPEC, 1), "upstream").edges == ()
    finally:
        ws.close()


@pytest.mark.parametrize("api_key", [None, KEY])
def test_predict_never_hops_to_the_thread_pool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api_key: str | None
) -> None:
    """A plain ``def`` dependency or endpoint would run in anyio's worker threads: a thread hop per
    request, most of the in-process request time (and much more on a loaded machine)."""
    hops: list[Callable[..., Any]] = []
    original = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        hops.append(func)
        return await original(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    headers = {"X-API-Key": KEY} if api_key else {}
    with TestClient(fake_app(tmp_path, api_key=api_key)) as client:
        hops.clear()  # start-up may use threads; requests must not
        for _ in range(3):
            assert client.post("/v1/predict", json={"row": GOOD_ROW}, headers=headers).status_code == 200
        assert client.post("/v1/predict", json={"row": {}}, headers=headers).status_code == 422
        if api_key:
            assert client.post("/v1/predict", json={"row": GOOD_ROW}).status_code == 401
    assert hops == []


@pytest.mark.parametrize("freeze", [True, False])
def test_start_up_objects_are_kept_out_of_full_collections(tmp_path: Path, freeze: bool) -> None:
    """Frozen after start (and again after a reload), so a full GC walks only what requests allocate;
    unfrozen at shutdown, so an app in a longer-lived process (tests, notebooks) leaves nothing behind."""
    source = FakeSource({1: FakeModel(weight=1.0), 2: FakeModel(weight=-1.0)})
    config = ServeConfig(log_flush_seconds=0.05, reload_seconds=3600, freeze_gc=freeze)
    assert gc.get_freeze_count() == 0
    with TestClient(fake_app(tmp_path, source, config=config)) as client:
        assert (gc.get_freeze_count() > 10_000) is freeze
        source.alias = 2
        assert client.app.state.service.holder.check() is True  # type: ignore[attr-defined]
        assert (gc.get_freeze_count() > 10_000) is freeze
        assert client.post("/v1/predict", json={"row": GOOD_ROW}).json()["model_version"] == 2
    assert gc.get_freeze_count() == 0
