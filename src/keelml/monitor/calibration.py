"""Null calibration of DDM and Page-Hinkley thresholds by simulation.

River's default thresholds (DDM: 3 standard errors; Page-Hinkley: 50) are not false-alarm rates: on a
stationary 600-value stream with a 20% error rate, DDM at 3 alarms about a third of the time. Here the
same recursions river runs are simulated on many stationary Bernoulli streams at once (vectorised over
streams); the largest value each stream's statistic reaches is its smallest firing threshold, and the
(1 - alpha) quantile of those is the threshold with false-alarm rate alpha over a stream of that length.

>>> t = ddm_threshold(error_rate=0.2, length=600, alpha=0.05, trials=400, seed=0)
>>> 3.0 < t < 8.0
True
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]


def _streams(error_rate: float, length: int, trials: int, seed: int) -> Array:
    rng = np.random.default_rng(seed)
    out: Array = (rng.random((trials, length)) < error_rate).astype(float)
    return out


def ddm_max_statistic(streams: Array, warm_start: int) -> Array:
    """Per stream, the largest (p + s - p_min) / s_min DDM sees (river's recursion, before any alarm)."""
    trials, length = streams.shape
    n = np.arange(1, length + 1)
    p = np.cumsum(streams, axis=1) / n
    s = np.sqrt(p * (1 - p) / n)
    p_min = np.full(trials, np.inf)
    s_min = np.full(trials, np.inf)
    ps_min = np.full(trials, np.inf)
    best = np.zeros(trials)
    for t in range(warm_start, length):  # river tests when n > warm_start, i.e. index t >= warm_start
        ps = p[:, t] + s[:, t]
        take = ps <= ps_min
        p_min = np.where(take, p[:, t], p_min)
        s_min = np.where(take, s[:, t], s_min)
        ps_min = np.where(take, ps, ps_min)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(s_min > 0, (ps - p_min) / s_min, np.where(ps > p_min, np.inf, 0.0))
        best = np.maximum(best, ratio)
    return best


def page_hinkley_max_statistic(
    streams: Array, warm_start: int, delta: float, fading: float = 0.9999
) -> Array:
    """Per stream, the largest two-sided Page-Hinkley statistic (river's recursion, before any alarm)."""
    trials, length = streams.shape
    mean = np.cumsum(streams, axis=1) / np.arange(1, length + 1)
    inc = np.zeros(trials)
    dec = np.zeros(trials)
    min_inc = np.full(trials, np.inf)
    max_dec = np.full(trials, -1.0)
    best = np.zeros(trials)
    for t in range(length):
        dev = streams[:, t] - mean[:, t]
        inc = fading * inc + dev - delta
        dec = fading * dec + dev + delta
        min_inc = np.minimum(min_inc, inc)
        max_dec = np.maximum(max_dec, dec)
        if t + 1 >= warm_start:
            best = np.maximum(best, np.maximum(inc - min_inc, max_dec - dec))
    return best


def ddm_threshold(
    error_rate: float, length: int, alpha: float, *, warm_start: int = 30, trials: int = 1000, seed: int = 0
) -> float:
    """DDM drift threshold with false-alarm rate ``alpha`` over a stationary stream of ``length`` values."""
    stats = ddm_max_statistic(_streams(error_rate, length, trials, seed), warm_start)
    # An error-free start leaves s_min = 0, and river's DDM then alarms at the next error whatever the
    # threshold: that stream's statistic is inf. Interpolating between two inf order statistics is
    # inf - inf (NaN, and a NaN threshold never alarms); an order statistic of the simulated null is exact
    # and conservative, and inf says no finite threshold reaches alpha.
    return float(np.quantile(stats, 1 - alpha, method="higher"))


def page_hinkley_threshold(
    error_rate: float,
    length: int,
    alpha: float,
    *,
    warm_start: int = 30,
    delta: float = 0.005,
    trials: int = 1000,
    seed: int = 0,
) -> float:
    """Page-Hinkley threshold with false-alarm rate ``alpha`` on a stationary stream of ``length`` values."""
    stats = page_hinkley_max_statistic(_streams(error_rate, length, trials, seed), warm_start, delta)
    return float(np.quantile(stats, 1 - alpha))


def adwin_alarm_rate(delta: float, streams: Array) -> float:
    """Share of stationary streams on which river's ADWIN at ``delta`` cuts at least once."""
    from river.drift import ADWIN

    hits = 0
    for row in streams:
        det = ADWIN(delta=delta)  # type: ignore[no-untyped-call]
        for v in row.tolist():
            det.update(v)  # type: ignore[no-untyped-call]
            if det.drift_detected:
                hits += 1
                break
    return hits / len(streams)


def adwin_delta(
    error_rate: float, length: int, alpha: float, *, trials: int = 400, seed: int = 0, steps: int = 10
) -> float:
    """ADWIN ``delta`` with a false-alarm rate of about ``alpha`` over a stationary ``length``-value stream.

    ADWIN's ``delta`` bounds a false cut per check, so over a whole stream its alarm rate is far below
    ``delta`` (0 of 200 streams at 0.002). The rate grows with ``delta``; bisection on ``log(delta)``.
    """
    streams = _streams(error_rate, length, trials, seed)
    lo, hi = np.log(1e-6), np.log(0.999)
    if adwin_alarm_rate(float(np.exp(hi)), streams) <= alpha:
        return float(np.exp(hi))
    for _ in range(steps):
        mid = (lo + hi) / 2
        if adwin_alarm_rate(float(np.exp(mid)), streams) > alpha:
            hi = mid
        else:
            lo = mid
    return float(np.exp(lo))
