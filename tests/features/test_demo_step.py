"""The demo's feature-store step on a tiny credit-like dataset (in isolation from the demo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from keelml import Workspace
from keelml.pipeline.demo import Demo, DemoLog
from keelml.pipeline.demo_features import STEPS


def test_the_feature_step_runs_and_reports_parity(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n = 60
    credit = pa.table(
        {
            "customer_id": pa.array(np.arange(1, n + 1), pa.int64()),
            "default": ["Yes" if i % 10 == 0 else "No" for i in range(n)],
            "student": ["Yes" if i % 3 == 0 else "No" for i in range(n)],
            "balance": rng.uniform(0, 2500, n).round(2),
            "income": np.where(np.arange(n) == 5, 0.0, rng.uniform(1000, 60000, n).round(2)),
        }
    )
    ws = Workspace.init(tmp_path / "ws")
    ws.datasets.add("credit", credit, label="default", id="customer_id")
    lines: list[str] = []
    demo = Demo(ws, True, DemoLog(lines.append), {})
    try:
        for step in STEPS:
            step.run(demo)
        # rerunning a step (a resumed demo) keeps the same versions
        STEPS[0].run(demo)
    finally:
        ws.features.close()
    text = "\n".join(lines)
    assert demo.saved["feature_parity_ok"] is True
    assert "no mismatch" in text and "materialized statements: 60 entities" in text
    assert ws.datasets.ref("credit_training").version == 1
    train = ws.datasets.read("credit_training")
    assert train.num_rows == n and train.column("balance_to_income").null_count == 1  # income 0
    # the label time falls before the March statements: every joined balance is February's
    feb = ws.datasets.read("credit_statements").to_pandas()
    feb = feb[feb["statement_time"].dt.month == 2].set_index("customer_id")["balance"]
    assert train.column("balance").to_pylist() == feb.loc[train.column("customer_id").to_pylist()].tolist()
