"""Prometheus multiprocess mode (``keel serve --workers N``), one worker per subprocess: sums over
workers, live gauges of dead workers dropped, the answering worker's info and extra collectors kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from keelml.serve.metrics import MULTIPROC_ENV, ServeMetrics
from keelml.serve.server import shared_metrics_dir

ROOT = Path(__file__).resolve().parents[2]

WORKER = """
import os, sys
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from keelml.serve.metrics import ServeMetrics

class Drift:
    def collect(self):
        yield GaugeMetricFamily("keel_drift_score", "from monitoring", value=0.25)

requests, version, close = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "close"
metrics = ServeMetrics([Drift()])
assert metrics.multiprocess is not None
metrics.set_model("loans", version, "int8", ["good", "bad"])
for _ in range(requests):
    metrics.requests.labels("/v1/predict", "200").inc()
    metrics.predictions.labels(str(version), "good").inc()
    metrics.latency.labels("/v1/predict").observe(0.002)
print(os.getpid())
print(generate_latest(metrics.registry).decode())
if close:
    metrics.close()
"""


def _worker(folder: Path, requests: int, version: int, close: bool) -> tuple[int, str]:
    env = {**os.environ, MULTIPROC_ENV: str(folder), "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(requests), str(version), "close" if close else "keep"],
        capture_output=True, text=True, timeout=120, env=env, check=True,
    )  # fmt: skip
    pid, _, text = done.stdout.partition("\n")
    return int(pid), text


def test_workers_metrics_are_summed_and_dead_workers_leave_the_live_gauges(tmp_path: Path) -> None:
    folder = tmp_path / "metrics"
    folder.mkdir()
    killed, _ = _worker(folder, 3, 1, close=False)  # exits without a clean shutdown (e.g. SIGKILL)
    assert (folder / f"gauge_liveall_{killed}.db").exists()
    pid, text = _worker(folder, 2, 2, close=True)
    assert 'keel_requests_total{endpoint="/v1/predict",status="200"} 5.0' in text  # 3 + 2
    assert 'keel_request_latency_seconds_count{endpoint="/v1/predict"} 5.0' in text
    assert 'keel_predictions_total{label="good",version="1"} 3.0' in text
    assert 'keel_predictions_total{label="good",version="2"} 2.0' in text
    assert f'keel_model_version{{pid="{pid}"}} 2.0' in text
    assert f'pid="{killed}"' not in text  # the dead worker's version was dropped at the next start
    assert 'keel_model_info{classes="good,bad",name="loans",variant="int8",version="2"} 1.0' in text
    assert "keel_drift_score 0.25" in text  # extra collectors work in multiprocess mode too
    assert not (folder / f"gauge_liveall_{pid}.db").exists()  # close(): this worker is marked dead
    assert (folder / f"counter_{pid}.db").exists()  # its counts still add up after it exits


def test_a_single_process_keeps_its_own_registry_and_the_workers_folder_is_fresh_and_removed() -> None:
    assert ServeMetrics().multiprocess is None  # in this process prometheus_client writes no files
    before = os.environ.get(MULTIPROC_ENV)
    with shared_metrics_dir() as folder, shared_metrics_dir() as other:
        assert folder != other and os.environ[MULTIPROC_ENV] == other
        assert Path(folder).is_dir() and not any(Path(folder).iterdir())
    assert not Path(folder).exists() and not Path(other).exists()
    assert os.environ.get(MULTIPROC_ENV) == before
