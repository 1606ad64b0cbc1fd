"""The service over a real registered model: trained (torch), exported to ONNX fp32 + int8, promoted.

Slow (training, export, subprocesses): one workspace per module.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from keelml import Workspace
from keelml.core import request_log
from keelml.core.lineage import Edge
from keelml.pipeline.training import train_tabular
from keelml.serve.server import build_app, config_of
from keelml.train import TabularConfig
from keelml.ui.pages import lineage as lineage_page
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


def test_keel_serve_follows_the_alias_logs_every_prediction_and_records_deployments(ws: Workspace) -> None:
    ws.models.promote("loan-clf@1", "staging")  # an alias no other test serves (see the end)
    started = datetime.now(UTC)  # the module's other tests log to the same tables
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "keel"), "-w", str(ws.root), "serve", "loan-clf@staging",
         "--port", str(port), "--reload-seconds", "0.3", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "KEEL_API_KEY": ""},
    )  # fmt: skip
    try:
        wait_ready(f"{base}/readyz", server, timeout=90)
        ids = [p["prediction_id"] for p in _post(f"{base}/v1/predict", {"rows": [ROW] * 3})["predictions"]]
        ws.models.promote("loan-clf@2", "staging")
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
    # each served version is a deployment in the lineage graph: model version -> deployment, where and when
    lineage = ws.catalog.lineage
    for served, alias_version in ((3, 1), (2, 2)):
        node = lineage.node(f"deployment:loan-clf@staging/v{served}")
        assert node.attrs["endpoint"] == base and node.attrs["alias_version"] == alias_version
        assert node.attrs["model_version"] == served and node.attrs["started_at"] >= started.isoformat()[:19]
    up = lineage.graph("deployment:loan-clf@staging/v3", "upstream")
    assert Edge("model:loan-clf@3", "deployment:loan-clf@staging/v3", "deployed") in up.edges
    assert Edge("model:loan-clf@1", "model:loan-clf@3", "quantized") in up.edges
    assert any(n.kind == "dataset" for n in up.nodes)  # dataset version -> run/model -> export -> deployment
    page = lineage_page(ws, "deployment:loan-clf@staging/v3")  # the dashboard draws it like any node
    assert "loan-clf@staging@3" in page and "deployment · deployed" in page


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


def _curl_commands(section: str) -> list[list[str]]:
    """The curl commands of one section of docs/serving.md, as argument lists."""
    text = (ROOT / "docs" / "serving.md").read_text()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", body, flags=re.S)
    commands = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words and words[0] == "curl":
                commands.append(words)
    return commands


def _run_curl(words: list[str], port: int, replace: dict[str, str]) -> tuple[int, Any]:
    """Send what the curl command sends (-s, -H, -d and the URL are the options the docs may use)."""
    url, headers, data = None, {}, None
    it = iter(words[1:])
    for word in it:
        if word == "-s":
            continue
        if word == "-H":
            name, _, value = next(it).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(it)
            for old, new in replace.items():
                data = data.replace(old, new)
        else:
            assert not word.startswith("-"), f"curl option {word} in docs/serving.md is not checked here"
            url = word.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
    assert url is not None
    request = urllib.request.Request(url, None if data is None else data.encode(), headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _per_worker_predictions(folder: Path) -> dict[int, float]:
    """From the shared metrics folder: /v1/predict 200s counted by each worker process."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    counts = {}
    for path in folder.glob("counter_*.db"):
        with tempfile.TemporaryDirectory() as alone:
            shutil.copy(path, alone)
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry, alone)  # type: ignore[no-untyped-call]
            text = generate_latest(registry).decode()
        found = re.search(r'keel_requests_total\{endpoint="/v1/predict",status="200"\} (\S+)', text)
        counts[int(path.stem.split("_")[1])] = float(found.group(1)) if found else 0.0
    return counts


def test_two_workers_report_summed_metrics_and_the_docs_curl_examples_work(
    ws: Workspace, tmp_path: Path
) -> None:
    """`keel serve --workers 2`: /metrics sums both workers whichever answers; clean stop, folder removed."""
    ws.models.promote("loan-clf@1", "production")
    started = datetime.now(UTC)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    tmp = tmp_path / "tmp"  # the server's temporary folder: where its metrics folder must appear and go
    tmp.mkdir()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "keel"), "-w", str(ws.root), "serve", "loan-clf@production",
         "--port", str(port), "--workers", "2", "--log-level", "warning"],
        cwd=ROOT, env={**os.environ, "KEEL_API_KEY": "", "TMPDIR": str(tmp)},
    )  # fmt: skip
    sent = 0
    try:
        wait_ready(f"{base}/readyz", server, timeout=240)  # two workers start side by side on 2 cores
        (folder,) = tmp.glob("keel-metrics-*")
        deadline = time.time() + 60
        while time.time() < deadline:  # new connections from 4 threads until both workers answered some
            with ThreadPoolExecutor(4) as pool:
                replies = list(pool.map(lambda _: _post(f"{base}/v1/predict", {"row": ROW}), range(16)))
            sent += len(replies)
            per_worker = _per_worker_predictions(folder)
            if len(per_worker) == 2 and min(per_worker.values()) > 0:
                break
        assert len(per_worker) == 2 and min(per_worker.values()) > 0, per_worker
        assert sum(per_worker.values()) == sent
        pids = set(per_worker)
        for _ in range(6):  # each scrape is a new connection, answered by either worker
            text = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
            assert f'keel_requests_total{{endpoint="/v1/predict",status="200"}} {float(sent)}' in text
            assert f'keel_predictions_total{{label="bad",version="3"}} {float(sent)}' in text
            assert f"keel_model_latency_seconds_count {float(sent)}" in text
            assert {int(p) for p in re.findall(r'keel_model_version\{pid="(\d+)"\} 3\.0', text)} == pids
            assert "keel_model_info{classes=" in text and 'version="3"' in text

        # the Quick start's curl commands, as written (port and the sample id aside)
        predict, feedback = _curl_commands("Quick start")
        status, reply = _run_curl(predict, port, {})
        assert status == 200 and reply["model"] == "loan-clf" and reply["model_version"] == 3
        assert reply["variant"] == "int8" and [p["label"] for p in reply["predictions"]] == ["bad", "good"]
        sample = re.search(r'"prediction_id": "([0-9a-f]{32})"', " ".join(feedback)).group(1)  # type: ignore[union-attr]
        real = reply["predictions"][0]["prediction_id"]
        assert _run_curl(feedback, port, {sample: real}) == (202, {"accepted": 1})
        assert _run_curl(feedback, port, {})[0] == 404  # the docs' sample id was never issued here
        sent += 2
    finally:
        server.send_signal(signal.SIGINT)  # the parent stops both workers; each flushes its log
        server.wait(timeout=60)
    assert server.returncode == 0
    assert not list(tmp.glob("keel-metrics-*"))  # the shared metrics folder is gone
    log = request_log.read(request_log.request_log_path(ws.storage_root, "loan-clf"), since=started)
    assert log is not None and log.num_rows == sent
    feedback_log = request_log.read(request_log.feedback_log_path(ws.storage_root, "loan-clf"), since=started)
    assert feedback_log is not None and feedback_log.column("prediction_id").to_pylist() == [real]
