"""A workspace with something on every dashboard page: datasets, lineage, a registered model, and
rows in the benchmark, monitor and alert tables (written the way their producers store them)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from keelml import Workspace
from keelml.core import catalog_schema as t
from keelml.pipeline.training import train_tabular
from keelml.train import TabularConfig
from tests.train.conftest import loans


@pytest.fixture(scope="package")
def dashboard_ws(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    root: Path = tmp_path_factory.mktemp("ui") / "ws"
    ws = Workspace.init(root)
    ws.datasets.add("loans", loans(), label="label", id="id")
    ws.datasets.append("loans", loans(280, seed=1).slice(240))  # ids 240..279 are new
    train_tabular(ws, "loans", name="loan-clf", config=TabularConfig(model="logreg", epochs=2))
    now = dt.datetime.now(dt.UTC)
    with ws.catalog.begin() as conn:
        conn.execute(
            t.benchmark_results.insert(),
            [
                {
                    "model": "loan-clf",
                    "model_version": 1,
                    "hardware": "cpu-2core",
                    "batch_size": 1,
                    "seq_len": None,
                    "p50_ms": 0.4,
                    "p90_ms": 0.5,
                    "p99_ms": 0.9,
                    "throughput": 2400.0,
                    "peak_memory_mb": 80.0,
                    "size_bytes": 12_000,
                    "cost_per_million": 0.01,
                    "details": {"variant": "torch"},
                    "created_at": now,
                },
            ],
        )
        conn.execute(
            t.monitor_results.insert(),
            [
                {
                    "monitor": "loan-clf",
                    "window_start": now - dt.timedelta(hours=h + 1),
                    "window_end": now - dt.timedelta(hours=h),
                    "check_name": "drift.ks",
                    "target": col,
                    "value": 0.02 + 0.1 * (h == 0),
                    "p_value": 0.5 if h else 0.001,
                    "alarm": h == 0,
                    "details": {},
                    "created_at": now - dt.timedelta(hours=h),
                }
                for h in range(4)
                for col in ("x", "noise")
            ],
        )
        conn.execute(
            t.alerts.insert(),
            [
                {
                    "monitor": "loan-clf",
                    "rule": "feature-drift",
                    "severity": "warning",
                    "dedup_key": "loan-clf/feature-drift",
                    "value": 0.001,
                    "message": "KS drift on <x> (p=0.001)",
                    "channels": ["log"],
                    "fired_at": now,
                },
            ],
        )
    return ws
