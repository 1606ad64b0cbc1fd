"""Prometheus metrics of one app, on its own registry (so several apps can live in one process).

Extra collectors (e.g. monitoring's) are registered on the same registry through
``create_app(..., collectors=...)`` and appear on ``/metrics`` with the service's own.

With ``keel serve --workers N`` each worker is a process: the server points
``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers start, counters and histograms
are written there per process, and ``/metrics`` (whichever worker answers) reports the sum over
all workers through a ``MultiProcessCollector``. ``keel_model_version`` is then one series per live
worker (``pid`` label, so a reload in progress shows as two versions); ``keel_model_info`` and the
extra collectors are those of the worker that answered.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, multiprocess, values
from prometheus_client.registry import Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live[a-z]+_(\d+)\.db$")

# Latency buckets around the 50 ms p99 target, fine below 10 ms where an ONNX model answers.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                   0.25, 0.5, 1.0, 2.5)  # fmt: skip
SCORE_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


def multiprocess_dir() -> Path | None:
    """The shared metrics folder when this process writes its metrics to files, else None.

    prometheus_client decides once, when it is first imported, from ``PROMETHEUS_MULTIPROC_DIR``.
    """
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder or values.ValueClass is values.MutexValue:
        return None
    return Path(folder)


def forget_dead_workers(folder: Path) -> list[int]:
    """Drop the live gauges of worker processes that died without a clean shutdown (e.g. killed and
    replaced by uvicorn's supervisor); returns their pids."""
    dead = []
    for path in folder.iterdir():
        match = _LIVE_GAUGE_FILE.match(path.name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, str(folder))  # type: ignore[no-untyped-call]
            dead.append(pid)
        except PermissionError:  # alive, owned by someone else
            continue
    return sorted(set(dead))


class ServeMetrics:
    def __init__(self, collectors: Iterable[Collector] = ()) -> None:
        self.multiprocess = multiprocess_dir()
        self.registry = CollectorRegistry(auto_describe=True)
        # one worker of several: its metrics go to the shared files, not on the registry, and the
        # registry reads every worker's files instead
        r = None if self.multiprocess is not None else self.registry
        self.requests = Counter(
            "keel_requests", "HTTP requests by endpoint and status code", ["endpoint", "status"], registry=r
        )
        self.latency = Histogram(
            "keel_request_latency_seconds", "Time in the service per request (handler, end to end)",
            ["endpoint"], buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.model_latency = Histogram(
            "keel_model_latency_seconds", "Time in the model per /v1/predict request",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.batch_rows = Histogram(
            "keel_batch_rows", "Rows per /v1/predict request",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 1024),
            registry=r,
        )  # fmt: skip
        self.predictions = Counter(
            "keel_predictions", "Predictions by model version and predicted class", ["version", "label"],
            registry=r,
        )  # fmt: skip
        self.scores = Histogram(
            "keel_prediction_score", "Probability of the predicted class", buckets=SCORE_BUCKETS, registry=r
        )
        self.model_version = Gauge(
            "keel_model_version", "Registry version being served", registry=r, multiprocess_mode="liveall"
        )
        self.reloads = Counter("keel_model_reloads", "Model swaps after the alias moved", registry=r)
        self.reload_errors = Counter("keel_model_reload_errors", "Failed reload attempts", registry=r)
        self.log_rows = Counter("keel_request_log_rows", "Rows written to the request log", registry=r)
        self.log_dropped = Counter(
            "keel_request_log_dropped_rows", "Rows the request log could not keep", registry=r
        )
        if self.multiprocess is not None:
            forget_dead_workers(self.multiprocess)
            multiprocess.MultiProcessCollector(self.registry, str(self.multiprocess))  # type: ignore[no-untyped-call]
        # an Info lives in process memory (never in the files): it reports the answering worker
        self.model_info = Info("keel_model", "The model version being served", registry=self.registry)
        for collector in collectors:
            self.registry.register(collector)

    def close(self) -> None:
        """At worker exit: its live gauges (the served version) leave the sums; its counters stay."""
        if self.multiprocess is not None:
            multiprocess.mark_process_dead(os.getpid(), str(self.multiprocess))  # type: ignore[no-untyped-call]

    def set_model(self, name: str, version: int, variant: str, classes: Sequence[str]) -> None:
        self.model_info.info({"name": name, "version": str(version), "variant": variant,
                              "classes": ",".join(classes)})  # fmt: skip
        self.model_version.set(version)
