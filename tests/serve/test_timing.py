"""The request metrics count a request before its reply is complete on the wire."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from keelml.serve.metrics import ServeMetrics
from keelml.serve.timing import TimingMiddleware


def _count(metrics: ServeMetrics, endpoint: str, status: str) -> float:
    value = metrics.registry.get_sample_value("keel_requests_total", {"endpoint": endpoint, "status": status})
    return value or 0.0


def test_a_request_is_counted_before_the_last_body_message_is_sent() -> None:
    # A client that holds its whole reply and then scrapes /metrics must find that request counted
    # (counting after the send raced: a test with two workers saw 31 of 32).
    metrics = ServeMetrics()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        await send({"type": "http.response.body", "body": b"}"})

    seen: list[tuple[bool, float]] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body":
            seen.append((message.get("more_body", False), _count(metrics, "/v1/predict", "200")))

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "path": "/v1/predict", "method": "POST"}
    asyncio.run(TimingMiddleware(app, metrics)(scope, receive, send))
    assert seen == [(True, 0.0), (False, 1.0)]
    assert _count(metrics, "/v1/predict", "200") == 1.0  # once, not again at the end


def test_a_request_that_fails_before_replying_is_counted_once_as_500() -> None:
    metrics = ServeMetrics()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    async def send(message: dict[str, Any]) -> None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(TimingMiddleware(app, metrics)({"type": "http", "path": "/nowhere"}, receive, send))
    assert _count(metrics, "other", "500") == 1.0
