"""Drift checks of one window against a profile: per feature, on model outputs, multivariate, and CBPE.

Each function returns ``(check results, findings)``; findings are sentences for a person.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from keelml.monitor.config import MonitorSpec
from keelml.monitor.frame import Frame
from keelml.monitor.multivariate import (
    BBSDDetector,
    DomainClassifierDetector,
    MMDDetector,
    MultivariateConfig,
)
from keelml.monitor.performance import CBPE, CBPEConfig
from keelml.monitor.profile import Profile
from keelml.monitor.profile_drift import ProfileDrift
from keelml.monitor.protocol import DriftReport
from keelml.monitor.results import CheckResult
from keelml.monitor.sketch import NumericSketch
from keelml.monitor.univariate import FeatureDriftConfig

Array = np.ndarray[Any, Any]
Checked = tuple[list[CheckResult], list[str]]
MAX_ROWS = 1000  # multivariate tests subsample the window (their cost is quadratic or a model fit)


def _drift_config(spec: MonitorSpec, rows: int, seed: int) -> FeatureDriftConfig:
    return FeatureDriftConfig(
        numeric=spec.numeric_test,
        categorical=spec.categorical_test,
        alpha=spec.window_alpha,
        correction=spec.correction,
        n_permutations=max(200, int(np.ceil(2 / spec.window_alpha))),
        window_size=max(rows, 1),
        seed=seed,
    )


def _per_column(check: str, report: DriftReport, det: ProfileDrift, spec: MonitorSpec) -> Checked:
    out = [
        CheckResult(
            check,
            f.name,
            f.statistic,
            f.adjusted_p_value,
            f.drift,
            {
                "test": f.test,
                "raw_p_value": f.p_value,
                "note": f.note,
                "histogram": asdict(det.histograms[f.name]) if f.name in det.histograms else None,
            },
        )
        for f in report.features
    ]
    drifted = [f.name for f in report.features if f.drift]
    out.append(
        CheckResult(
            check,
            "*",
            float(len(drifted)),
            report.p_value,
            report.drift,
            {
                "status": report.status,
                "drifted": drifted,
                "alpha": spec.window_alpha,
                "correction": spec.correction,
                "windows_per_horizon": spec.windows_per_horizon,
            },
        )
    )
    return out, [f"{check}: {x}" for x in report.findings]


def data_drift(profile: Profile, window: Frame, spec: MonitorSpec, seed: int) -> Checked:
    det = ProfileDrift(profile, _drift_config(spec, len(window), seed), "features")
    det.update(window.features)
    return _per_column("data_drift", det.report(), det, spec)


def output_drift(profile: Profile, window: Frame, spec: MonitorSpec, seed: int) -> Checked:
    if not profile.outputs:
        return [], ["output_drift: the reference has no model outputs (proba.<class> or a prediction column)"]
    batch: dict[str, Array] = {}
    if window.proba is not None:
        for j, c in enumerate(window.classes):
            batch[f"proba.{c}"] = window.proba[:, j]
    if window.prediction is not None:
        batch["prediction"] = window.prediction
    if not len(window):
        batch = {n: np.zeros(0) for n in profile.outputs}
    det = ProfileDrift(profile, _drift_config(spec, len(window), seed), "outputs")
    det.update(batch)
    return _per_column("output_drift", det.report(), det, spec)


def _numeric_matrix(frame: Frame, names: list[str]) -> Array:
    import pandas as pd

    cols = [pd.to_numeric(frame.features[n], errors="coerce").to_numpy(dtype=float) for n in names]
    return np.column_stack(cols) if cols else np.zeros((len(frame), 0))


def _subsample(n: int, seed: int) -> Array:
    if n <= MAX_ROWS:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, MAX_ROWS, replace=False))


def multivariate(profile: Profile, window: Frame, spec: MonitorSpec, seed: int) -> Checked:
    results: list[CheckResult] = []
    findings: list[str] = []
    ref = profile.sample_frame()
    config = MultivariateConfig(
        alpha=spec.window_alpha,
        n_permutations=max(200, int(np.ceil(2 / spec.window_alpha))),
        window_size=MAX_ROWS,
        seed=seed,
    )
    numeric = [n for n, s in profile.columns.items() if isinstance(s, NumericSketch) and n in window.features]
    idx = _subsample(len(window), seed)
    for name in spec.multivariate:
        if name == "bbsd":
            if ref.proba is None or window.proba is None or window.proba.shape[1] != ref.proba.shape[1]:
                findings.append(
                    "bbsd: needs the model's class probabilities in both the reference and the window"
                )
                continue
            det: Any = BBSDDetector(ref.proba, config)
            det.update(window.proba[idx])
        else:
            if not numeric:
                findings.append(f"{name}: no numeric feature present in both the reference and the window")
                continue
            a = _numeric_matrix(ref, numeric)
            mu, sd = np.nanmean(a, axis=0), np.nanstd(a, axis=0)
            sd[~(sd > 0)] = 1.0
            cls = MMDDetector if name == "mmd" else DomainClassifierDetector
            det = cls((a - mu) / sd, config)
            det.update((_numeric_matrix(window, numeric)[idx] - mu) / sd)
        r = det.report()
        results.append(
            CheckResult(
                name,
                "*",
                r.statistic,
                r.p_value,
                r.drift,
                {"status": r.status, "threshold": r.threshold, "rows": r.n_current},
            )
        )
        findings.extend(f"{name}: {f}" for f in r.findings)
    return results, findings


def performance(profile: Profile, window: Frame, spec: MonitorSpec) -> Checked:
    ref = profile.sample_frame()
    if ref.proba is None or ref.truth is None:
        return [], ["performance: CBPE needs reference rows with class probabilities and true labels"]
    cls_index = {c: i for i, c in enumerate(ref.classes)}
    codes = np.array([cls_index.get(str(t), -1) if t is not None else -1 for t in ref.truth])
    keep = codes >= 0
    if keep.sum() < 2:
        return [], ["performance: fewer than 2 labelled reference rows in the profile sample"]
    if window.proba is None:
        return [], ["performance: the window has no class probabilities to estimate accuracy from"]
    det = CBPE(
        ref.proba[keep], codes[keep], CBPEConfig(alpha=spec.window_alpha, window_size=max(len(window), 2))
    )
    det.update(window.proba if len(window) else np.zeros((0, ref.proba.shape[1])))
    r, est = det.report(), det.estimate()
    details: dict[str, Any] = {"status": r.status}
    if est is not None:
        details.update(low=est.low, high=est.high, reference_accuracy=est.reference_accuracy, n=est.n)
    value = None if est is None else est.accuracy
    return [CheckResult("performance_estimate", "accuracy", value, r.p_value, r.drift, details)], [
        f"performance: {f}" for f in r.findings
    ]
