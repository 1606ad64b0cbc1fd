"""Synthetic production data for monitor tests: a reference with model outputs, request-log rows, feedback."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from keelml.core import request_log

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def rows(rng: np.random.Generator, n: int, *, shift: float = 0.0, wrong: float = 0.1) -> pd.DataFrame:
    """Features x (normal), z (exponential), plan (a/b/c), group (f/m); a binary model's outputs; truth."""
    x = rng.normal(shift, 1.0, n)
    z = rng.exponential(1.0, n)
    plan = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2] if not shift else [0.2, 0.3, 0.5])
    group = rng.choice(["f", "m"], n)
    p1 = 1 / (1 + np.exp(-2.0 * x))
    pred = np.where(p1 > 0.5, "1", "0")
    flip = rng.random(n) < wrong
    truth = np.where(flip, np.where(pred == "1", "0", "1"), pred)
    return pd.DataFrame({"x": x, "z": z, "plan": plan, "group": group, "proba.0": 1 - p1, "proba.1": p1,
                         "prediction": pred, "y": truth})  # fmt: skip


def log_table(df: pd.DataFrame, start: dt.datetime, *, step_s: float = 1.0, prefix: str = "p") -> pa.Table:
    n = len(df)
    ts = [start + dt.timedelta(seconds=step_s * i) for i in range(n)]
    data: dict[str, Any] = {
        "prediction_id": [f"{prefix}{i}" for i in range(n)],
        "ts": pa.array(ts, request_log.TIMESTAMP),
        "model": ["churn"] * n,
        "model_version": [1] * n,
        "latency_ms": np.linspace(2.0, 20.0, n),
        "label": df["prediction"].astype(str).tolist(),
        "score": df[["proba.0", "proba.1"]].max(axis=1).to_numpy(),
        "in.x": df["x"].to_numpy(),
        "in.z": df["z"].to_numpy(),
        "in.plan": df["plan"].astype(str).tolist(),
        "in.group": df["group"].astype(str).tolist(),
        "proba.0": df["proba.0"].to_numpy(),
        "proba.1": df["proba.1"].to_numpy(),
    }
    return pa.table(data)


def feedback_table(df: pd.DataFrame, start: dt.datetime, *, prefix: str = "p", every: int = 1) -> pa.Table:
    idx = list(range(0, len(df), every))
    return pa.table(
        {
            "prediction_id": [f"{prefix}{i}" for i in idx],
            "ts": pa.array([start] * len(idx), request_log.TIMESTAMP),
            "label": [str(df["y"].iloc[i]) for i in idx],
            "source": ["test"] * len(idx),
        },
        schema=request_log.FEEDBACK_SCHEMA,
    )


SPEC: dict[str, Any] = {
    "target": "y",
    "features": ["x", "z", "plan", "group"],
    "sensitive": "group",
    "positive_class": "1",
    "slices": ["plan"],
    "multivariate": ["bbsd", "mmd"],
    "window": "1000",
}


def write_log(ws: Any, df: pd.DataFrame, start: dt.datetime, prefix: str, feedback: bool = True) -> None:
    root = ws.storage_root
    request_log.append(request_log.request_log_path(root, "churn"), log_table(df, start, prefix=prefix))
    if feedback:
        request_log.append(
            request_log.feedback_log_path(root, "churn"), feedback_table(df, start, prefix=prefix)
        )
