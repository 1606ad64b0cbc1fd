"""Against a live MLflow tracking server (a subprocess on a free local port), not the embedded SQLite."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from keelml import Workspace
from keelml.pipeline.training import train_tabular
from keelml.train import TabularConfig
from tests.train.conftest import loans

START_TIMEOUT_S = 240.0  # ~15 s on an idle machine; 111-150+ s measured at load 15-21 on 2 cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1.0) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    mlflow = Path(sys.executable).with_name("mlflow")
    command = [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
               "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1"]  # fmt: skip
    log = (root / "server.log").open("wb")
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"mlflow server did not start: {(root / 'server.log').read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.mark.slow
def test_train_register_promote_against_a_tracking_server(server: str, tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    text = (ws.root / "keel.toml").read_text()
    assert "sqlite:///.keel/mlflow.db" in text
    (ws.root / "keel.toml").write_text(text.replace("sqlite:///.keel/mlflow.db", server))
    ws = Workspace.open(ws.root)
    ws.datasets.add("loans", loans(), label="label", id="id")
    run = train_tabular(ws, "loans", name="loan-clf", config=TabularConfig(model="logreg", epochs=3))
    ws.models.promote("loan-clf@1", "staging")

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=server, registry_uri=server)  # what the server itself holds
    stored = client.get_run(run.run_id)
    assert stored.info.status == "FINISHED" and stored.data.params["dataset"] == "loans@1"
    assert {a.path for a in client.list_artifacts(run.run_id)} >= {"evaluation.json", "training.json"}
    version = client.get_model_version_by_alias("loan-clf", "staging")
    assert version.version == "1" and version.run_id == run.run_id
    assert ws.models.show("loan-clf@staging").version == 1

    with pytest.raises(RuntimeError), ws.models.run("failing", "boom") as failing:
        raise RuntimeError("boom")
    assert client.get_run(failing.run_id).info.status == "FAILED"
