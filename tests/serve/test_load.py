"""A multi-process load test: a uvicorn server process and a load process on 127.0.0.1; ends by itself."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from keelml.core import request_log
from tests.serve.fakes import GOOD_ROW

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, "the server process exited"
        try:
            with urllib.request.urlopen(url, timeout=1) as reply:
                if reply.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} not ready after {timeout} s")


def test_a_server_process_under_load_from_another_process_serves_and_logs_everything(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "KEEL_FAKE_STORAGE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "tests.serve.fake_server:app", "--factory", "--host", "127.0.0.1",
         "--port", str(port), "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    try:
        wait_ready(f"http://127.0.0.1:{port}/readyz", server)
        bodies = tmp_path / "bodies.jsonl"
        rows = [{**GOOD_ROW, "amount": float(a)} for a in range(-3000, 3000, 7)]
        lines = [json.dumps({"rows": rows[i : i + 1 + i % 3]}) for i in range(200)]
        lines.append('{"rows": [{"amount": "oops", "region": "n", "note": ""}]}')  # one bad body per cycle
        bodies.write_text("\n".join(lines))
        load = subprocess.run(
            [sys.executable, str(ROOT / "benchmarks" / "serve_load.py"), "--url",
             f"http://127.0.0.1:{port}/v1/predict", "--bodies", str(bodies), "--seconds", "3",
             "--concurrency", "4"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        result = json.loads(load.stdout)
        assert result["ok"] > 50 and set(result["statuses"]) <= {"200", "422"}, result
        assert result["p99_ms"] < 1000
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
        assert 'status="500"' not in metrics
    finally:
        server.send_signal(signal.SIGINT)  # graceful: the lifespan flushes the request log
        server.wait(timeout=30)
    assert server.returncode == 0
    table = request_log.read(request_log.request_log_path(tmp_path, "loans"))
    assert table is not None
    assert table.num_rows == result["predictions"] > result["ok"]  # every served row logged, the 422s not
    assert len(table.column("prediction_id").unique()) == table.num_rows


def test_log_writer_allocator_settings_respect_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """`keel serve` bounds deltalake's allocator (the request log's Delta commits grew RSS), but never
    overrides a user's own setting, and says when it is too late (deltalake already loaded)."""
    from keelml.serve import server

    monkeypatch.delenv(server.NATIVE_ALLOCATOR_ENV, raising=False)
    monkeypatch.delitem(sys.modules, "deltalake", raising=False)
    assert server.bound_log_writer_memory() is True
    assert os.environ[server.NATIVE_ALLOCATOR_ENV] == server.NATIVE_ALLOCATOR_CONF
    monkeypatch.setenv(server.NATIVE_ALLOCATOR_ENV, "narenas:4")
    assert server.bound_log_writer_memory() is False
    assert os.environ[server.NATIVE_ALLOCATOR_ENV] == "narenas:4"
    monkeypatch.delenv(server.NATIVE_ALLOCATOR_ENV)
    monkeypatch.setitem(sys.modules, "deltalake", object())
    assert server.bound_log_writer_memory() is False
    assert server.NATIVE_ALLOCATOR_ENV not in os.environ
