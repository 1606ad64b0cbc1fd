"""Every configured check over one window, and how a run cuts new windows out of the request log.

>>> import datetime as dt
>>> t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
>>> [(s.hour, e.hour) for s, e in time_windows(t0, t0 + dt.timedelta(hours=2, minutes=30), 3600)]
[(0, 1), (1, 2), (2, 2)]
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from keelml.monitor import checks_drift, checks_quality
from keelml.monitor.config import MonitorSpec
from keelml.monitor.frame import Frame
from keelml.monitor.profile import Profile
from keelml.monitor.results import CheckResult, WindowResult

MAX_WINDOWS = 48


def time_windows(start: dt.datetime, now: dt.datetime, seconds: int) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive windows of ``seconds`` from ``start`` up to ``now``; the last one may be partial."""
    out = []
    step = dt.timedelta(seconds=seconds)
    while start < now:
        out.append((start, min(start + step, now)))
        start = start + step
    return out


def check_window(
    monitor: str,
    profile: Profile,
    window: Frame,
    spec: MonitorSpec,
    *,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    stream: Frame | None = None,
    seed: int = 0,
) -> WindowResult:
    """Run ``spec.checks`` on ``window``; ``stream`` is the labelled error stream for concept drift."""
    results: list[CheckResult] = []
    findings: list[str] = []
    if len(window) == 0:
        findings.append(
            "the window has no rows: no drift test could run, so there is no evidence of no drift"
        )
    rng = np.random.default_rng(seed)

    def add(out: tuple[list[CheckResult], list[str]]) -> None:
        results.extend(out[0])
        findings.extend(out[1])

    checks = set(spec.checks)
    if "data_drift" in checks:
        add(checks_drift.data_drift(profile, window, spec, seed))
    if "text_drift" in checks and spec.text_columns:
        from keelml.monitor.text import text_drift  # transformers and torch load only here

        add(text_drift(profile, window, spec, seed))
    if "output_drift" in checks:
        add(checks_drift.output_drift(profile, window, spec, seed))
    if len(window) >= spec.min_rows:
        if "multivariate" in checks and spec.multivariate:
            add(checks_drift.multivariate(profile, window, spec, seed))
        if "performance" in checks:
            add(checks_drift.performance(profile, window, spec))
        if "slices" in checks and spec.slices:
            add(checks_quality.slices(profile, window, spec, rng))
        if "fairness" in checks and spec.sensitive:
            add(checks_quality.fairness(window, spec))
        if "latency" in checks:
            add(checks_quality.latency(window, spec))
    elif len(window):
        findings.append(
            f"the window has {len(window)} rows, fewer than min_rows={spec.min_rows}: "
            "multivariate, performance, slice, fairness and latency checks were not run"
        )
    if "concept_drift" in checks and spec.concept:
        add(checks_quality.concept_drift(profile, stream if stream is not None else window, spec))
    meta = CheckResult(
        "window",
        "rows",
        float(len(window)),
        None,
        len(window) == 0,
        {"labelled": int(window.labelled().sum()), "findings": findings[:50]},
    )
    return WindowResult(monitor, start, end, len(window), (meta, *results), tuple(findings))


def join_feedback(log: Any, feedback: Any) -> Any:
    """The request-log rows (pandas) with a ``truth`` column from the latest feedback per prediction id."""
    import pandas as pd

    df = log.to_pandas() if hasattr(log, "to_pandas") and not isinstance(log, pd.DataFrame) else log
    if feedback is None or len(feedback) == 0 or "prediction_id" not in df:
        return df.assign(truth=None)
    fb = feedback.to_pandas() if hasattr(feedback, "to_pandas") else feedback
    latest = (
        fb.sort_values("ts").drop_duplicates("prediction_id", keep="last").set_index("prediction_id")["label"]
    )
    return df.assign(truth=df["prediction_id"].map(latest))
