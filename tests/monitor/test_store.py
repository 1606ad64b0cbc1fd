"""Profiles, results and alerts round-trip through both catalog backends (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np

from keelml.core.workspace import Workspace
from tests.monitor.helpers import SPEC, T0, rows


def test_profile_results_and_alerts_round_trip(ws: Workspace) -> None:
    rng = np.random.default_rng(0)
    spec = {**SPEC, "checks": ["data_drift", "output_drift", "performance", "fairness"],
            "alerts": [{"name": "drift", "metric": "data_drift.alarm:*", "channels": ["log"]}]}  # fmt: skip
    info = ws.monitor.profile("churn", rows(rng, 1500), spec=spec, partition_rows=500)
    assert info.partitions == 3 and info.rows == 1500
    prof = ws.monitor.load_profile("churn")
    assert prof.rows == 1500 and prof.classes == ("0", "1") and prof.accuracy is not None
    run = ws.monitor.run("churn", data=rows(rng, 300, shift=1.0), spec=spec, now=T0)
    assert run.drift and len(run.fired) == 1
    stored = ws.monitor.results("churn")
    assert {r.check for r in stored} >= {
        "window",
        "data_drift",
        "output_drift",
        "performance_estimate",
        "fairness",
    }
    hist = next(r for r in stored if r.check == "data_drift" and r.target == "x").details["histogram"]
    assert len(hist["reference"]) == len(hist["current"]) == len(hist["labels"])
    assert [a.rule for a in ws.monitor.alerts("churn")] == ["drift"]
