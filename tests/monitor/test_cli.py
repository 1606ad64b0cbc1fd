"""`keel monitor ...` end to end from keel.toml: profile, run, report, metrics, alert-rules, alerts."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from keelml.cli.main import run
from keelml.core.catalog import utcnow
from keelml.core.workspace import Workspace
from tests.monitor.helpers import rows, write_log

TOML = """
[monitor.churn]
reference = "ref@1"
target = "y"
features = ["x", "z", "plan", "group"]
sensitive = "group"
positive_class = "1"
slices = ["plan"]
window = "1h"

[[monitor.churn.alerts]]
name = "input drift"
metric = "data_drift.alarm:*"
condition = "== 1"
severity = "critical"
cooldown = "1h"
channels = ["log"]
"""


@pytest.fixture
def cli_ws(tmp_path: Path) -> Path:
    ws = Workspace.init(tmp_path / "w")
    rows(np.random.default_rng(0), 3000).to_parquet(tmp_path / "ref.parquet")
    ws.datasets.add("ref", tmp_path / "ref.parquet")
    with (ws.root / "keel.toml").open("a", encoding="utf-8") as fh:
        fh.write(TOML)
    ws.close()
    return ws.root


def test_monitor_commands(
    cli_ws: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    w = ["-w", str(cli_ws)]
    assert run([*w, "monitor", "profile", "churn", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["rows"] == 3000 and info["source"] == "ref@1"
    ws = Workspace.open(cli_ws)
    write_log(ws, rows(np.random.default_rng(1), 500, shift=1.0), utcnow() - dt.timedelta(minutes=30), "a")
    ws.close()
    with caplog.at_level(logging.WARNING, logger="keelml.monitor.alerts"):
        code = run([*w, "monitor", "run", "churn", "--fail-on-alarm", "--json"])
    assert code == 9
    out = json.loads(capsys.readouterr().out)
    assert out["windows"][0]["rows"] == 500
    assert {a["check"] for a in out["windows"][0]["alarms"]} >= {"data_drift", "output_drift"}
    assert [a["rule"] for a in out["alerts"]] == ["input drift"]
    assert any("input drift" in r.message for r in caplog.records)

    report = tmp_path / "report.html"
    assert run([*w, "monitor", "report", "churn", "-o", str(report)]) == 0
    html = report.read_text()
    assert "Distributions, reference vs current" in html and "Fairness" in html and "Latency" in html
    assert "<script src=" not in html and len(html) > 3_000_000  # plotly.js inlined: opens offline

    assert run([*w, "monitor", "metrics"]) == 0
    assert 'keel_monitor_alarm{check="data_drift",monitor="churn",target="*"} 1.0' in capsys.readouterr().out
    assert run([*w, "monitor", "alert-rules", "churn"]) == 0
    assert "alert: KeelChurnInputDrift" in capsys.readouterr().out
    assert run([*w, "monitor", "alerts", "churn", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["severity"] == "critical"


def test_bad_config_is_exit_6(cli_ws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with (cli_ws / "keel.toml").open("a", encoding="utf-8") as fh:
        fh.write('\n[monitor.other]\nwindow = "soon"\n')
    assert run(["-w", str(cli_ws), "monitor", "run", "other"]) == 6
    assert "not a duration or a row count" in capsys.readouterr().err
