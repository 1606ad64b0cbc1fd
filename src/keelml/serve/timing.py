"""Request counts and latency per endpoint, as a plain ASGI middleware (cheaper than BaseHTTPMiddleware)."""

from __future__ import annotations

import time
from typing import Any

from keelml.serve.metrics import ServeMetrics

KNOWN = frozenset({"/v1/predict", "/v1/feedback", "/v1/model", "/healthz", "/readyz", "/metrics"})


class TimingMiddleware:
    def __init__(self, app: Any, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        endpoint = path if path in KNOWN else "other"  # fuzzed paths must not explode the label set
        status = 500
        recorded = False
        start = time.perf_counter()

        def record() -> None:
            nonlocal recorded
            if not recorded:
                recorded = True
                self.metrics.requests.labels(endpoint, str(status)).inc()
                self.metrics.latency.labels(endpoint).observe(time.perf_counter() - start)

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # counted before the last byte leaves: a client holding its reply finds it in /metrics
                record()
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            record()  # a request that ended without a complete response
