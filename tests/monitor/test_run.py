"""`ws.monitor.run` over request-log windows: checks, stored time series, late labels and bad input."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from keelml.core import request_log
from keelml.core.errors import ConfigError
from keelml.core.workspace import Workspace
from keelml.monitor import MonitorSpec
from tests.monitor.helpers import SPEC, T0, feedback_table, log_table, rows, write_log

HOUR = dt.timedelta(hours=1)


@pytest.fixture
def profiled(local_ws: Workspace) -> Workspace:
    local_ws.monitor.profile("churn", rows(np.random.default_rng(0), 4000), spec=SPEC)
    return local_ws


def _run(ws: Workspace, at: dt.datetime, **kw: Any) -> Any:
    return ws.monitor.run("churn", spec={**SPEC, **kw.pop("spec", {})}, now=at, **kw)


@pytest.mark.slow
def test_no_shift_then_shift(profiled: Workspace) -> None:
    rng = np.random.default_rng(1)
    write_log(profiled, rows(rng, 800), T0, "a")
    quiet = _run(profiled, T0 + HOUR, spec={"concept": ["ddm"]}).latest
    assert quiet is not None and quiet.rows == 800
    summary = quiet.get("data_drift")
    assert summary is not None and summary.details["status"] == "no_drift" and not summary.alarm
    for check in (
        "output_drift",
        "bbsd",
        "mmd",
        "performance_estimate",
        "fairness",
        "latency",
        "concept_drift",
    ):
        assert quiet.of(check), check
    est = quiet.get("performance_estimate", "accuracy")
    assert est is not None and est.details["low"] <= 0.9 <= est.details["high"]
    p99 = quiet.get("latency", "p99")
    assert p99 is not None and 19 < (p99.value or 0) <= 20
    slices = quiet.of("slice_accuracy")
    assert {s.target for s in slices} == {"plan=a", "plan=b", "plan=c"}
    assert all(s.details["ci_low"] <= (s.value or 0) <= s.details["ci_high"] for s in slices)

    write_log(profiled, rows(rng, 800, shift=0.8), T0 + HOUR, "b")
    shifted = _run(profiled, T0 + 2 * HOUR, spec={"concept": ["ddm"]}).latest
    assert shifted is not None
    drifted = {c.target for c in shifted.of("data_drift") if c.alarm}
    assert {"x", "plan", "*"} <= drifted and "group" not in drifted
    assert shifted.get("bbsd") is not None and shifted.get("bbsd").alarm  # type: ignore[union-attr]
    stored = profiled.monitor.results("churn", check="data_drift")
    assert len({r.window_end for r in stored}) == 2  # one time series point per window


@pytest.mark.slow
def test_late_labels_check_the_estimate_and_feed_concept_drift(profiled: Workspace) -> None:
    rng = np.random.default_rng(2)
    good, bad = rows(rng, 600), rows(rng, 600, wrong=0.45)
    root = profiled.storage_root
    request_log.append(request_log.request_log_path(root, "churn"), log_table(good, T0, prefix="a"))
    first = _run(profiled, T0 + HOUR)
    assert not first.latest.of("concept_drift")  # type: ignore[union-attr]  # no labels yet
    assert any("labelled predictions so far" in f for f in first.latest.findings)  # type: ignore[union-attr]
    # labels for the first window arrive an hour later, with the next window's rows (now mostly wrong)
    request_log.append(
        request_log.feedback_log_path(root, "churn"), feedback_table(good, T0 + HOUR, prefix="a")
    )
    write_log(profiled, bad, T0 + HOUR, "b")
    second = _run(profiled, T0 + 2 * HOUR).latest
    assert second is not None
    real = second.of("performance_realised")
    assert len(real) == 1 and real[0].details["within_band"] and 0.85 < (real[0].value or 0) < 0.95
    concept = {c.target: c.alarm for c in second.of("concept_drift")}
    assert concept == {"adwin": True, "ddm": True, "page_hinkley": True}


def test_empty_window_is_a_finding_not_no_drift(profiled: Workspace) -> None:
    write_log(profiled, rows(np.random.default_rng(3), 100), T0, "a")
    run = _run(profiled, T0 + 5 * HOUR, window="1h")
    w = run.latest
    assert w is not None and w.rows == 0
    assert w.get("window", "rows").alarm  # type: ignore[union-attr]
    assert w.get("data_drift").details["status"] == "undetermined"  # type: ignore[union-attr]
    assert any("the window has no rows" in f for f in w.findings)


def test_missing_feature_all_nan_and_new_categories(profiled: Workspace) -> None:
    df = rows(np.random.default_rng(4), 300)
    table = log_table(df, T0).drop_columns(["in.z"])
    table = table.set_column(
        table.schema.get_field_index("in.x"), "in.x", pa.array([np.nan] * 300, pa.float64())
    )
    plan = table.schema.get_field_index("in.plan")
    table = table.set_column(plan, "in.plan", [["a", "zeta"] * 150])
    request_log.append(request_log.request_log_path(profiled.storage_root, "churn"), table)
    w = _run(profiled, T0 + HOUR).latest
    assert w is not None
    text = "\n".join(w.findings)
    assert "feature 'z' is missing from the batch" in text
    assert "all 300 values in the window are missing" in text
    assert "new categories not in the reference: ['zeta']" in text
    assert w.get("data_drift", "plan").alarm  # type: ignore[union-attr]
    assert w.get("data_drift", "z") is not None and w.get("data_drift", "z").p_value is None  # type: ignore[union-attr]


def test_sensitive_attribute_with_one_group(profiled: Workspace) -> None:
    df = rows(np.random.default_rng(5), 200).assign(group="f")
    write_log(profiled, df, T0, "a")
    w = _run(profiled, T0 + HOUR).latest
    assert w is not None
    dpd = w.get("fairness", "demographic_parity_difference")
    assert dpd is not None and dpd.value is None and dpd.details["status"] == "undetermined"
    assert any("has one group ('f')" in f for f in w.findings)


def test_batch_dataset_with_predictions(local_ws: Workspace, tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    rows(rng, 2000).to_parquet(tmp_path / "ref.parquet")
    rows(rng, 500, shift=1.0).to_parquet(tmp_path / "today.parquet")
    local_ws.datasets.add("ref", tmp_path / "ref.parquet")
    local_ws.datasets.add("today", tmp_path / "today.parquet")
    spec = {**SPEC, "reference": "ref@1", "current": "today@1"}
    run = local_ws.monitor.run("churn", spec=spec)
    assert any("built the reference profile from ref@1" in f for f in run.findings)
    w = run.latest
    assert w is not None and w.rows == 500 and w.get("data_drift", "x").alarm  # type: ignore[union-attr]
    assert w.get("fairness", "equalized_odds_difference") is not None  # the batch carries its labels


def test_config_errors_are_clear(local_ws: Workspace) -> None:
    with pytest.raises(ConfigError, match=r"no \[monitor.churn\] section"):
        local_ws.monitor.spec("churn")
    with pytest.raises(ValueError, match="unknown metric"):
        MonitorSpec.model_validate({"alerts": [{"name": "a", "metric": "drift_score"}]})
    with pytest.raises(ValueError, match="not a duration or a row count"):
        MonitorSpec.model_validate({"window": "soon"})
    with pytest.raises(ValueError, match="unknown channel"):
        MonitorSpec.model_validate({"alerts": [{"name": "a", "metric": "data_drift", "channels": ["pager"]}]})
    with pytest.raises(LookupError, match="no reference profile for monitor 'churn'"):
        local_ws.monitor.run("churn", spec={"window": "1h"})
    with pytest.raises(ConfigError, match="no reference for monitor"):
        local_ws.monitor.profile("churn", spec={"window": "1h"})
