"""The :class:`Detector` protocol and the values every detector returns.

A detector is river-style: :meth:`Detector.update` is the only call that changes it,
:meth:`Detector.report` is pure and cheap (the test runs inside ``update``; ``report`` returns the stored
result), :meth:`Detector.reset` forgets the current window, and ``to_state()`` / ``from_state()``
round-trip through JSON.

>>> r = DriftReport.empty("ks", alpha=0.05, n_reference=10)
>>> r.status, r.drift
('undetermined', False)
>>> r.findings
('no rows seen yet: update() the detector with a window before reading its report',)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from keelml.core.errors import ConfigError

Status = Literal["drift", "no_drift", "undetermined"]
Correction = Literal["bonferroni", "benjamini_hochberg"]


@dataclass(frozen=True)
class FeatureResult:
    """One feature's test: the statistic, its p-value (or calibrated threshold) and the decision."""

    name: str
    test: str
    statistic: float | None
    p_value: float | None
    adjusted_p_value: float | None
    drift: bool
    note: str = ""


@dataclass(frozen=True)
class DriftReport:
    """What a detector concluded about the rows it has seen since the last reset.

    ``status`` is ``"undetermined"`` when the detector could not test (no rows, a missing or all-NaN
    feature) and nothing drifted; ``findings`` says why, in words. A decision is either
    ``p_value <= alpha`` or ``statistic > threshold`` where the threshold was calibrated under the null.
    """

    detector: str
    status: Status
    alpha: float
    n_reference: int
    n_current: int
    statistic: float | None = None
    p_value: float | None = None
    threshold: float | None = None
    features: tuple[FeatureResult, ...] = ()
    findings: tuple[str, ...] = ()
    extra: tuple[tuple[str, float], ...] = ()

    @property
    def drift(self) -> bool:
        return self.status == "drift"

    @classmethod
    def empty(cls, detector: str, *, alpha: float, n_reference: int) -> DriftReport:
        return cls(
            detector=detector,
            status="undetermined",
            alpha=alpha,
            n_reference=n_reference,
            n_current=0,
            findings=("no rows seen yet: update() the detector with a window before reading its report",),
        )

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = [asdict(f) for f in self.features]
        out["findings"] = list(self.findings)
        out["extra"] = [list(e) for e in self.extra]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        return cls(
            **{
                **data,
                "features": tuple(FeatureResult(**f) for f in data["features"]),
                "findings": tuple(data["findings"]),
                "extra": tuple((str(k), float(v)) for k, v in data["extra"]),
            }
        )


@dataclass(frozen=True)
class ConformanceCase:
    """How the conformance suite exercises one detector configuration (river's test-parameter habit).

    ``make(rng)`` builds a fresh detector (drawing its reference from ``rng``); ``null_batch(rng)`` draws a
    window from the reference distribution and ``shifted_batch(rng)`` one with a shift the detector must
    find. ``alpha`` is the false-alarm rate the detector promises on a null window.
    """

    name: str
    make: Callable[[np.random.Generator], Detector]
    null_batch: Callable[[np.random.Generator], Any]
    shifted_batch: Callable[[np.random.Generator], Any]
    alpha: float
    trials: int = 40
    power_trials: int = 5
    min_power: float = 0.8


@runtime_checkable
class Detector(Protocol):
    """A drift detector: ``update`` mutates, ``report`` is pure, state round-trips through JSON."""

    name: str

    def update(self, batch: Any) -> None: ...

    def report(self) -> DriftReport: ...

    def reset(self) -> None: ...

    def to_state(self) -> dict[str, Any]: ...


REGISTRY: dict[str, type[Any]] = {}


def register(cls: type[Any]) -> type[Any]:
    """Class decorator: add a detector class to the registry the conformance test walks."""
    REGISTRY[cls.__name__] = cls
    return cls


def check_alpha(alpha: float, where: str) -> None:
    if not 0.0 < alpha < 1.0:
        raise ConfigError(
            f"{where}: alpha out of range",
            expected="a false-alarm rate strictly between 0 and 1 (e.g. 0.05)",
            received=repr(alpha),
            fix="pass alpha=0.05, or the rate of false alarms you accept per report",
        )


def check_positive(value: int, name: str, where: str, minimum: int = 1) -> None:
    if value < minimum:
        raise ConfigError(
            f"{where}: {name} too small",
            expected=f"an integer >= {minimum}",
            received=repr(value),
            fix=f"pass {name}={max(minimum, 200)} or larger",
        )


def adjust(p_values: np.ndarray[Any, Any], method: Correction) -> np.ndarray[Any, Any]:
    """Multiple-testing adjusted p-values; reject where the adjusted value is <= alpha.

    >>> adjust(np.array([0.01, 0.04, 0.03]), "bonferroni").round(2).tolist()
    [0.03, 0.12, 0.09]
    >>> adjust(np.array([0.01, 0.04, 0.03]), "benjamini_hochberg").round(2).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if m == 0:
        return p
    if method == "bonferroni":
        bonf: np.ndarray[Any, Any] = np.minimum(p * m, 1.0)
        return bonf
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(ranked, 1.0)
    return out


def conclude_family(
    results: list[FeatureResult], correction: Correction, alpha: float, rows: int, notes: list[str]
) -> tuple[list[FeatureResult], Status, float | None]:
    """Adjust a family of per-feature tests together and decide the report's status.

    Untested features (no p-value) never let the report say "no drift": with any of them and no drift
    found the status is "undetermined", and ``notes`` says which. Returns (results, status, min adjusted p).
    """
    results = list(results)
    tested = [i for i, r in enumerate(results) if r.p_value is not None]
    adjusted = adjust(np.array([results[i].p_value for i in tested], dtype=float), correction)
    for i, p in zip(tested, adjusted, strict=True):
        r = results[i]
        results[i] = FeatureResult(
            r.name, r.test, r.statistic, r.p_value, float(p), r.drift or bool(p <= alpha), r.note
        )
    if rows == 0:
        notes.append("the window has no rows: nothing to compare with the reference")
    untested = [r.name for r in results if r.p_value is None]
    if untested and rows:
        notes.append(f"not tested: {untested}; the report cannot say there is no drift in them")
    status: Status = (
        "drift" if any(r.drift for r in results) else ("undetermined" if untested else "no_drift")
    )
    min_p = min((r.adjusted_p_value for r in results if r.adjusted_p_value is not None), default=None)
    return results, status, min_p


def permutation_p_value(observed: float, null: np.ndarray[Any, Any]) -> float:
    """The (1 + #{null >= observed}) / (1 + n) p-value, never 0, valid at any number of permutations.

    >>> permutation_p_value(3.0, np.array([1.0, 2.0, 3.0, 4.0]))
    0.6
    """
    return float((1 + np.count_nonzero(null >= observed)) / (1 + len(null)))
