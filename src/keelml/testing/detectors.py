"""Conformance checks for drift detectors (:class:`keelml.monitor.Detector`).

Each detector class declares its test parameters in ``conformance_cases()`` (river's habit); the suite runs
every case through the same rules and raises :class:`DetectorCheckError` with a fix on the first break.

>>> from keelml.monitor.concept import PageHinkleyDetector
>>> check_detector(PageHinkleyDetector)
"""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import numpy as np

from keelml.monitor.protocol import ConformanceCase, Detector, DriftReport


class DetectorCheckError(AssertionError):
    """A detector broke the protocol; the message says which rule and how to fix it."""


def _fail(case: ConformanceCase, rule: str, fix: str) -> DetectorCheckError:
    return DetectorCheckError(f"detector {case.name!r}: {rule}\n  fix: {fix}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _updated(case: ConformanceCase, seed: int, batch: Any) -> Detector:
    det = case.make(np.random.default_rng(seed))
    det.update(batch)
    return det


def alarm_tolerance(alpha: float, trials: int) -> float:
    """The highest null alarm rate accepted: alpha plus three binomial standard errors.

    >>> round(alarm_tolerance(0.05, 30), 3)
    0.169
    """
    return alpha + 3 * math.sqrt(alpha * (1 - alpha) / trials)


def check_case(case: ConformanceCase) -> None:
    """Run every rule against one configuration."""
    det = case.make(np.random.default_rng(0))
    for attr in ("name", "update", "report", "reset", "to_state"):
        if not hasattr(det, attr):
            raise _fail(
                case,
                f"has no `{attr}`",
                "follow keelml.monitor.Detector: name, update, report, reset, to_state",
            )
    if not hasattr(type(det), "from_state"):
        raise _fail(
            case, "has no classmethod `from_state`", "add `from_state(state) -> Self` that inverts to_state()"
        )
    first = det.report()
    if not isinstance(first, DriftReport):
        raise _fail(case, f"report() returned {type(first).__name__}", "return a keelml.monitor.DriftReport")
    if first.status == "no_drift":
        raise _fail(
            case, "says 'no_drift' before seeing any rows", "report status 'undetermined' until update()"
        )

    batch = case.shifted_batch(np.random.default_rng(1))
    before = copy.deepcopy(batch)
    det.update(batch)
    if not _same(before, batch):
        raise _fail(
            case, "modified the batch passed to update()", "work on copies; never write into the input"
        )
    if det.report() != det.report():
        raise _fail(
            case, "report() changed between two calls", "compute in update(); report() only returns it"
        )

    alarms = sum(
        _updated(case, 100 + t, case.null_batch(np.random.default_rng(10_000 + t))).report().drift
        for t in range(case.trials)
    )
    limit = alarm_tolerance(case.alpha, case.trials)
    if alarms / case.trials > limit:
        raise _fail(
            case,
            f"alarmed on {alarms} of {case.trials} stationary windows "
            f"(rate {alarms / case.trials:.3f} > {limit:.3f})",
            f"calibrate the decision so the false-alarm rate is alpha={case.alpha} (use p-values or a "
            "permutation-calibrated threshold; correct for multiple features)",
        )
    found = sum(
        _updated(case, 200 + t, case.shifted_batch(np.random.default_rng(20_000 + t))).report().drift
        for t in range(case.power_trials)
    )
    if found / case.power_trials < case.min_power:
        raise _fail(
            case,
            f"found the injected shift in only {found} of {case.power_trials} windows",
            "check that the statistic grows with the shift and that update() feeds the test",
        )

    fresh = _updated(case, 7, case.null_batch(np.random.default_rng(8)))
    used = case.make(np.random.default_rng(7))
    used.update(case.shifted_batch(np.random.default_rng(9)))
    used.reset()
    used.update(case.null_batch(np.random.default_rng(8)))
    if used.report() != fresh.report():
        raise _fail(
            case,
            "after reset() it reports differently from a fresh detector",
            "reset() must clear every piece of window state (counts, buffers, cached report)",
        )

    state = json.loads(json.dumps(fresh.to_state()))
    restored = type(fresh).from_state(state)  # type: ignore[attr-defined]
    if restored.report() != fresh.report():
        raise _fail(
            case,
            "from_state(to_state()) reports differently",
            "put every piece of state (reference, window, cached report) in to_state()",
        )
    more = case.shifted_batch(np.random.default_rng(11))
    restored.update(more)
    fresh.update(copy.deepcopy(more))
    if restored.report() != fresh.report():
        raise _fail(
            case,
            "a restored detector diverges on the next update()",
            "include RNG seeds and window buffers in to_state(), not only the last report",
        )


def check_detector(factory: type[Any]) -> None:
    """Run every case a detector class declares in ``conformance_cases()``."""
    cases = getattr(factory, "conformance_cases", None)
    if cases is None:
        raise DetectorCheckError(
            f"{factory.__name__} declares no conformance_cases()\n"
            "  fix: add a classmethod returning keelml.monitor.ConformanceCase values"
        )
    for case in cases():
        check_case(case)
