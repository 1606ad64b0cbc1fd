"""Checks that need labels or serving data: slices, fairness, latency, concept drift, realised accuracy.

Slice accuracy intervals are bootstrap intervals; for a 0/1 outcome the bootstrap distribution of the mean
is exactly Binomial(n, p_hat) / n, so it is drawn that way (no n x B resampling matrix).

>>> rng = np.random.default_rng(0)
>>> lo, hi = bootstrap_ci(np.r_[np.ones(80), np.zeros(20)], 1000, rng)
>>> 0.7 < lo < 0.8 < hi < 0.9
True
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import pandas as pd

from keelml.monitor.concept import ADWINDetector, ConceptDriftConfig, DDMDetector, PageHinkleyDetector
from keelml.monitor.config import MonitorSpec
from keelml.monitor.frame import Frame
from keelml.monitor.profile import Profile, is_categorical
from keelml.monitor.results import CheckResult
from keelml.monitor.sketch import NumericSketch

Array = np.ndarray[Any, Any]
Checked = tuple[list[CheckResult], list[str]]
MIN_SLICE_ROWS = 5


def bootstrap_ci(
    outcomes: Array, draws: int, rng: np.random.Generator, level: float = 0.95
) -> tuple[float, float]:
    n = len(outcomes)
    boot = rng.binomial(n, float(np.mean(outcomes)), size=draws) / n
    return float(np.quantile(boot, (1 - level) / 2)), float(np.quantile(boot, (1 + level) / 2))


def _slice_keys(profile: Profile, window: Frame, column: str) -> Array:
    values = window.features[column]
    sk = profile.columns.get(column)
    if isinstance(sk, NumericSketch) and sk.count and not is_categorical(values):
        edges = np.unique(sk.quantiles(np.array([0.25, 0.5, 0.75])))  # the reference's quartiles: stable bins
        num = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
        codes = np.searchsorted(edges, num, side="right")
        bounds = [-np.inf, *edges.tolist(), np.inf]
        names = np.array(
            [f"{column} in ({bounds[i]:.4g}, {bounds[i + 1]:.4g}]" for i in range(len(bounds) - 1)]
        )
        return np.where(np.isnan(num), f"{column} missing", names[codes])
    return np.array([f"{column}={'missing' if pd.isna(v) else v}" for v in values], dtype=object)


def slices(profile: Profile, window: Frame, spec: MonitorSpec, rng: np.random.Generator) -> Checked:
    results: list[CheckResult] = []
    findings: list[str] = []
    correct = window.correct()
    labelled = np.isfinite(correct)
    ref_acc = profile.accuracy
    if not labelled.any():
        findings.append("slices: no labelled rows in the window yet; slice accuracy waits for feedback")
    for column in spec.slices:
        if column not in window.features:
            findings.append(f"slices: column {column!r} is not in the window")
            continue
        keys = _slice_keys(profile, window, column)
        for key in pd.unique(keys):
            rows = keys == key
            mask = rows & labelled
            details: dict[str, Any] = {
                "rows": int(rows.sum()),
                "labelled": int(mask.sum()),
                "share": float(rows.mean()),
                "reference_accuracy": ref_acc,
            }
            if mask.sum() < MIN_SLICE_ROWS:
                results.append(
                    CheckResult(
                        "slice_accuracy", str(key), None, None, False, {**details, "status": "undetermined"}
                    )
                )
                continue
            acc = float(correct[mask].mean())
            lo, hi = bootstrap_ci(correct[mask], spec.bootstrap, rng)
            alarm = ref_acc is not None and hi < ref_acc
            results.append(
                CheckResult(
                    "slice_accuracy",
                    str(key),
                    acc,
                    None,
                    alarm,
                    {**details, "ci_low": lo, "ci_high": hi, "status": "tested"},
                )
            )
            if alarm:
                findings.append(
                    f"slices: {key}: accuracy {acc:.3f} [{lo:.3f}, {hi:.3f}] is below the "
                    f"reference {ref_acc:.3f}"
                )
    return results, findings


def fairness(window: Frame, spec: MonitorSpec) -> Checked:
    from fairlearn.metrics import (  # type: ignore[import-untyped]
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    col = spec.sensitive
    if col is None:
        return [], []
    if col not in window.features:
        return [
            CheckResult(
                "fairness", "demographic_parity_difference", None, None, False, {"status": "undetermined"}
            )
        ], [f"fairness: sensitive attribute {col!r} is not in the window"]
    if window.prediction is None or not len(window):
        return [], [f"fairness: no predictions in the window to compare across {col!r}"]
    groups = window.features[col].astype(str).to_numpy()
    present = pd.unique(groups)
    positive = spec.positive_class or (window.classes[-1] if len(window.classes) == 2 else None)
    if positive is None:
        return [], ["fairness: set positive_class in [monitor.<model>] (the model is not binary)"]
    if len(present) < 2:
        note = (
            f"fairness: sensitive attribute {col!r} has one group ({present[0]!r}) in the window: "
            "differences between groups are undefined"
        )
        return [
            CheckResult(
                "fairness",
                "demographic_parity_difference",
                None,
                None,
                False,
                {"status": "undetermined", "groups": [str(g) for g in present]},
            )
        ], [note]
    pred = (window.prediction.astype(str) == positive).astype(int)
    dpd = float(demographic_parity_difference(pred, pred, sensitive_features=groups))
    results = [
        CheckResult(
            "fairness",
            "demographic_parity_difference",
            dpd,
            None,
            dpd > spec.fairness_threshold,
            {"status": "tested", "threshold": spec.fairness_threshold, "positive_class": positive},
        )
    ]
    labelled = window.labelled()
    findings: list[str] = []
    metrics: dict[str, Any] = {"selection_rate": selection_rate, "count": lambda y, p: len(y)}
    if labelled.sum() and len(pd.unique(groups[labelled])) >= 2:
        truth = (window.truth[labelled].astype(str) == positive).astype(int)  # type: ignore[index]
        eod = float(equalized_odds_difference(truth, pred[labelled], sensitive_features=groups[labelled]))
        results.append(
            CheckResult(
                "fairness",
                "equalized_odds_difference",
                eod,
                None,
                eod > spec.fairness_threshold,
                {"status": "tested", "labelled": int(labelled.sum())},
            )
        )
        frame = MetricFrame(
            metrics={
                **metrics,
                "true_positive_rate": true_positive_rate,
                "false_positive_rate": false_positive_rate,
            },
            y_true=truth,
            y_pred=pred[labelled],
            sensitive_features=groups[labelled],
        )
    else:
        findings.append("fairness: equalized-odds difference needs labelled rows from two or more groups")
        frame = MetricFrame(metrics=metrics, y_true=pred, y_pred=pred, sensitive_features=groups)
    for group, row in frame.by_group.iterrows():
        rates = {k: (None if pd.isna(v) else float(v)) for k, v in row.items()}
        results.append(CheckResult("fairness_group", str(group), rates["selection_rate"], None, False, rates))
    return results, findings


def latency(window: Frame, spec: MonitorSpec) -> Checked:
    if window.latency_ms is None:
        return [], ["latency: the window has no latency_ms column (not a request log)"]
    lat = window.latency_ms[np.isfinite(window.latency_ms)]
    if not len(lat):
        return [], ["latency: no latency values in the window"]
    out = []
    for q in (50, 95, 99):
        v = float(np.percentile(lat, q))
        slo = spec.latency_slo_ms
        out.append(
            CheckResult(
                "latency",
                f"p{q}",
                v,
                None,
                q == 99 and slo is not None and v > slo,
                {"rows": len(lat), "slo_ms": slo},
            )
        )
    return out, []


@functools.lru_cache(maxsize=64)
def _calibrated(rate: float, length: int, alpha: float) -> ConceptDriftConfig:
    # ADWIN's calibration replays river on 400 streams; beyond 3,000 values delta stays 0.002 (conservative)
    return ConceptDriftConfig.calibrated_for(rate, length, alpha, trials=200, adwin=length <= 3000)


def concept_drift(profile: Profile, stream: Frame, spec: MonitorSpec) -> Checked:
    """River detectors on the 0/1 error stream of labelled predictions, oldest first."""
    errors = 1.0 - stream.correct()
    errors = errors[np.isfinite(errors)]
    if len(errors) < 60:
        return [], [f"concept_drift: {len(errors)} labelled predictions so far; at least 60 are needed"]
    rate = 1.0 - profile.accuracy if profile.accuracy is not None else float(errors.mean())
    rate = min(max(rate, 0.01), 0.99)
    config = _calibrated(round(rate, 2), len(errors), spec.alpha)
    results: list[CheckResult] = []
    findings: list[str] = []
    kinds: dict[str, Any] = {"adwin": ADWINDetector, "ddm": DDMDetector, "page_hinkley": PageHinkleyDetector}
    for name in spec.concept:
        det = kinds[name](config)
        det.update(errors)
        r = det.report()
        changes = [f for f in r.findings if f.startswith("change detected")]
        results.append(
            CheckResult(
                "concept_drift",
                name,
                r.statistic,
                None,
                r.drift,
                {
                    "stream": len(errors),
                    "threshold": r.threshold,
                    "reference_error_rate": rate,
                    "changes": changes[-5:],
                },
            )
        )
        if r.drift:
            findings.append(f"concept_drift: {name} found a change in the error rate ({changes[-1]})")
    return results, findings


def realised(window: Frame, estimate: dict[str, Any], target: str) -> CheckResult | None:
    """Realised accuracy of an earlier window once its labels arrived, against that window's CBPE band."""
    correct = window.correct()
    done = correct[np.isfinite(correct)]
    if len(done) < max(2, int(0.5 * len(window))):
        return None
    acc = float(done.mean())
    within = estimate.get("low") is not None and estimate["low"] <= acc <= estimate["high"]
    return CheckResult(
        "performance_realised",
        target,
        acc,
        None,
        not within,
        {
            "labelled": len(done),
            "rows": len(window),
            "estimate": estimate.get("value"),
            "low": estimate.get("low"),
            "high": estimate.get("high"),
            "within_band": within,
        },
    )
