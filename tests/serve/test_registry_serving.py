"""The service over a real registered model: trained (torch), exported to ONNX fp32 + int8, promoted.

Slow (training, export, subprocesses): one workspace per module.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keelml import Workspace
from keelml.core import request_log
from keelml.pipeline.training import train_tabular
from keelml.serve.server import build_app, config_of
from keelml.train import TabularConfig
from tests.serve.test_load import ROOT, free_port, wait_ready
from tests.train.conftest import loans

pytestmark = pytest.mark.slow
ROW = {"x": 0.3, "noise": 0.1, "region": "north"}


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """loan-clf@1 (torch) with exports @2 (fp32) and @3 (int8); production -> 1."""
    root = tmp_path_factory.mktemp("serving") / "ws"
    ws = Workspace.init(root)
    ws.datasets.add("loans", loans(), label="label", id="id")
    train_tabular(ws, "loans", name="loan-clf", config=TabularConfig(model="logreg", epochs=2))
    result = ws.exports.export("loan-clf@1", variants=("fp32", "int8"))
    assert [v.ref.version for v in result.variants] == [2, 3]
    ws.models.promote("loan-clf@1", "production")
    return ws


@pytest.fixture
def client(ws: Workspace) -> Iterator[TestClient]:
    ws.models.promote("loan-clf@1", "production")
    with TestClient(build_app(ws, "loan-clf@production", config_of(ws), None)) as c:
        yield c


def test_serves_the_int8_export_of_the_alias_with_lineage_and_card(client: TestClient) -> None:
    reply = client.post("/v1/predict", json={"rows": [ROW, {**ROW, "region": "south", "x": -2.0}]})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["model_version"] == 3 and body["variant"] == "int8"
    assert [p["label"] for p in body["predictions"]] == ["bad", "good"]
    model = client.get("/v1/model").json()
    assert model["version"] == 3 and model["alias_version"] == 1
    assert model["inputs"] == {"x": "number", "noise": "number", "region": "category"}
    assert "model:loan-clf@1 -> model:loan-clf@3 (quantized)" in model["description"]["lineage"]
    assert "test_accuracy" in model["description"]["metrics"]
    missing = client.post("/v1/predict", json={"row": {"x": 1.0, "region": "north"}})
    assert missing.status_code == 422 and missing.json()["error"]["field"] == "rows[0].noise"


def test_alias_moves_and_rollbacks_are_followed(ws: Workspace, client: TestClient) -> None:
    holder = client.app.state.service.holder  # type: ignore[attr-defined]
    assert holder.check() is False
    ws.models.promote("loan-clf@2", "production")  # an exported version is served as is
    assert holder.check() is True
    after = client.post("/v1/predict", json={"row": ROW}).json()
    assert after["model_version"] == 2 and after["variant"] == "fp32"
    ws.models.rollback("loan-clf", "production")
    assert holder.check() is True
    assert client.post("/v1/predict", json={"row": ROW}).json()["model_version"] == 3


NO_TORCH = """
import sys
import keelml
from fastapi.testclient import TestClient
from keelml import Workspace
from keelml.serve.server import build_app, config_of
ws = Workspace.open(sys.argv[1])
with TestClient(build_app(ws, "loan-clf@production", config_of(ws), None)) as client:
    reply = client.post("/v1/predict", json={"row": %r})
    assert reply.status_code == 200, reply.text
print(",".join(m for m in ("torch", "transformers", "peft", "opacus", "flwr") if m in sys.modules) or "none")
"""


def test_the_serving_path_never_imports_torch(ws: Workspace) -> None:
    ws.models.promote("loan-clf@1", "production")
    done = subprocess.run([sys.executable, "-c", NO_TORCH % (ROW,), str(ws.root)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "none"


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as reply:
        return json.loads(reply.read())


def _post(url: str, body: Any) -> Any:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.loads(reply.read())


def test_keel_serve_follows_the_alias_and_logs_every_prediction(ws: Workspace) -> None:
    ws.models.promote("loan-clf@1", "production")
    started = datetime.now(UTC)  # the module's other tests log to the same tables
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "keel"), "-w", str(ws.root), "serve", "loan-clf@production",
         "--port", str(port), "--reload-seconds", "0.3", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "KEEL_API_KEY": ""},
    )  # fmt: skip
    try:
        wait_ready(f"{base}/readyz", server, timeout=90)
        ids = [p["prediction_id"] for p in _post(f"{base}/v1/predict", {"rows": [ROW] * 3})["predictions"]]
        ws.models.promote("loan-clf@2", "production")
        deadline = time.time() + 30
        while _get(f"{base}/v1/model")["version"] != 2 and time.time() < deadline:
            time.sleep(0.2)
        assert _get(f"{base}/v1/model")["version"] == 2
        ids.append(_post(f"{base}/v1/predict", {"row": ROW})["predictions"][0]["prediction_id"])
        assert _post(f"{base}/v1/feedback", {"prediction_id": ids[0], "label": "bad"}) == {"accepted": 1}
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
    assert server.returncode == 0
    log = request_log.read(request_log.request_log_path(ws.storage_root, "loan-clf"), since=started)
    assert log is not None and sorted(log.column("prediction_id").to_pylist()) == sorted(ids)
    assert sorted(log.column("model_version").to_pylist()) == [2, 3, 3, 3]
    feedback = request_log.read(request_log.feedback_log_path(ws.storage_root, "loan-clf"), since=started)
    assert feedback is not None and feedback.column("prediction_id").to_pylist() == [ids[0]]


def test_each_worker_process_builds_the_service_from_the_environment(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keelml.serve.server import app_from_env

    ws.models.promote("loan-clf@1", "production")
    config = config_of(ws).with_overrides(max_batch_rows=2)
    monkeypatch.setenv("KEEL_SERVE_WORKSPACE", str(ws.root))
    monkeypatch.setenv("KEEL_SERVE_SPEC", "loan-clf@production")
    monkeypatch.setenv("KEEL_SERVE_CONFIG", config.model_dump_json())
    monkeypatch.setenv("KEEL_API_KEY", "worker-key-0123456789abcdef")
    with TestClient(app_from_env()) as client:
        headers = {"X-API-Key": "worker-key-0123456789abcdef"}
        assert client.post("/v1/predict", json={"row": ROW}).status_code == 401
        assert client.post("/v1/predict", json={"rows": [ROW] * 3}, headers=headers).status_code == 413
        assert client.post("/v1/predict", json={"row": ROW}, headers=headers).json()["model_version"] == 3
