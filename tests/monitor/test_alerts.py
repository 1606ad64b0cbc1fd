"""Alerts: one page per shift (dedup), cooldown, webhooks against a local receiver, Prometheus rules/gauges."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keelml.core.workspace import Workspace
from keelml.monitor.alerts import prometheus_rules
from keelml.monitor.config import AlertRule
from tests.monitor.helpers import T0

FEATURES = [f"f{i}" for i in range(50)]


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[str, Any]]]]:
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", _Receiver.received
    finally:
        server.shutdown()
        server.server_close()


def _table(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({f: rng.normal(shift, 1.0, n) for f in FEATURES})


def _spec(url: str, **rule: Any) -> dict[str, Any]:
    base = {"name": "feature drift", "metric": "data_drift.alarm", "condition": "== 1", "cooldown": "2h",
            "severity": "critical", "channels": ["log", f"webhook:{url}/hook", f"slack:{url}/slack"]}  # fmt: skip
    return {"checks": ["data_drift"], "alerts": [{**base, **rule}]}


def test_one_shift_pages_once_then_cooldown(local_ws: Workspace, receiver: Any) -> None:
    url, received = receiver
    rng = np.random.default_rng(0)
    spec = _spec(url)
    local_ws.monitor.profile("wide", _table(rng, 3000), spec=spec)
    first = local_ws.monitor.run("wide", data=_table(rng, 400, shift=0.5), spec=spec, now=T0)
    assert (
        len(first.latest.of("data_drift")) == 51 and sum(c.alarm for c in first.latest.of("data_drift")) > 40
    )  # type: ignore[union-attr]
    assert len(first.fired) == 1
    alert = first.fired[0]
    assert alert.severity == "critical" and len(alert.targets) > 40 and "more)" in alert.message
    assert dict(alert.deliveries) == {"log": "ok", f"webhook:{url}/hook": "ok", f"slack:{url}/slack": "ok"}
    paths = [p for p, _ in received]
    assert paths == ["/hook", "/slack"]
    assert received[0][1]["rule"] == "feature drift" and received[0][1]["severity"] == "critical"
    assert received[1][1]["text"].startswith("[critical] wide: feature drift")

    again = local_ws.monitor.run(
        "wide", data=_table(rng, 400, shift=0.5), spec=spec, now=T0 + dt.timedelta(hours=1)
    )
    assert not again.fired and len(again.alerts) == 1 and again.alerts[0].suppressed
    assert len(received) == 2 and len(local_ws.monitor.alerts("wide")) == 1

    later = local_ws.monitor.run(
        "wide", data=_table(rng, 400, shift=0.5), spec=spec, now=T0 + dt.timedelta(hours=3)
    )
    assert len(later.fired) == 1 and len(received) == 4


def test_group_by_target_and_failed_delivery(local_ws: Workspace) -> None:
    rng = np.random.default_rng(1)
    spec = _spec("http://127.0.0.1:9", group_by="target", metric="data_drift.alarm:f0")
    spec["alerts"][0]["channels"] = ["webhook:http://127.0.0.1:9/nothing-listens"]
    local_ws.monitor.profile("wide", _table(rng, 2000), spec=spec)
    run = local_ws.monitor.run("wide", data=_table(rng, 300, shift=1.0), spec=spec, now=T0)
    assert [a.targets for a in run.fired] == [("f0",)]
    assert run.fired[0].deliveries[0][1].startswith("error:")  # recorded, not raised


def test_rule_window_needs_the_condition_on_earlier_runs(local_ws: Workspace) -> None:
    rng = np.random.default_rng(2)
    spec = _spec("http://127.0.0.1:9", window="2h", metric="data_drift.alarm:*", channels=["log"])
    local_ws.monitor.profile("wide", _table(rng, 2000), spec=spec)
    first = local_ws.monitor.run("wide", data=_table(rng, 300, shift=1.0), spec=spec, now=T0)
    assert not first.alerts  # held for no earlier run yet
    second = local_ws.monitor.run(
        "wide", data=_table(rng, 300, shift=1.0), spec=spec, now=T0 + dt.timedelta(minutes=30)
    )
    assert len(second.fired) == 1


def test_prometheus_rules_and_gauges(local_ws: Workspace) -> None:
    rules = [AlertRule(name="bad latency", metric="latency:p99", condition="> 250", window="10m")]
    text = prometheus_rules("churn", rules)
    assert 'expr: \'keel_monitor_value{monitor="churn",check="latency",target="p99"} > 250\'' in text
    assert "for: 10m" in text and "severity: warning" in text
    rng = np.random.default_rng(3)
    spec = {"checks": ["data_drift"]}
    local_ws.monitor.profile("wide", _table(rng, 1000), spec=spec)
    local_ws.monitor.run("wide", data=_table(rng, 200, shift=1.0), spec=spec, now=T0)
    families = {f.name: f for f in text_string_to_metric_families(local_ws.monitor.metrics_text())}
    alarms = {
        (s.labels["check"], s.labels["target"]): s.value for s in families["keel_monitor_alarm"].samples
    }
    assert alarms[("data_drift", "*")] == 1.0 and alarms[("window", "rows")] == 0.0
    values = {s.labels["target"]: s.value for s in families["keel_monitor_value"].samples}
    assert values["rows"] == 200.0
