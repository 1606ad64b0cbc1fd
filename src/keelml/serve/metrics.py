"""Prometheus metrics of one app, on its own registry (so several apps can live in one process).

Extra collectors (e.g. monitoring's) are registered on the same registry through
``create_app(..., collectors=...)`` and appear on ``/metrics`` with the service's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.registry import Collector

# Latency buckets around the 50 ms p99 target, fine below 10 ms where an ONNX model answers.
LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
                   0.25, 0.5, 1.0, 2.5)  # fmt: skip
SCORE_BUCKETS = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)


class ServeMetrics:
    def __init__(self, collectors: Iterable[Collector] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
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
        self.model_info = Info("keel_model", "The model version being served", registry=r)
        self.model_version = Gauge("keel_model_version", "Registry version being served", registry=r)
        self.reloads = Counter("keel_model_reloads", "Model swaps after the alias moved", registry=r)
        self.reload_errors = Counter("keel_model_reload_errors", "Failed reload attempts", registry=r)
        self.log_rows = Counter("keel_request_log_rows", "Rows written to the request log", registry=r)
        self.log_dropped = Counter(
            "keel_request_log_dropped_rows", "Rows the request log could not keep", registry=r
        )
        for collector in collectors:
            r.register(collector)

    def set_model(self, name: str, version: int, variant: str, classes: Sequence[str]) -> None:
        self.model_info.info({"name": name, "version": str(version), "variant": variant,
                              "classes": ",".join(classes)})  # fmt: skip
        self.model_version.set(version)
