"""Concept drift on an error stream (0/1 mistakes or losses), wrapping river's ADWIN, DDM and Page-Hinkley.

``update(batch)`` feeds the values one by one; the report says whether a change was detected since the
last ``reset()`` and where. ADWIN's ``delta`` is a confidence bound (the probability of a false cut per
check); DDM's thresholds are in standard errors of the error rate (3 = p of about 0.0013 one-sided);
Page-Hinkley's ``threshold`` is in units of the stream's values. The state is the stream since the last
reset (river's ADWIN keeps its buckets in native code), so ``from_state`` replays it exactly.
River's DDM and Page-Hinkley defaults are not false-alarm rates; :meth:`ConceptDriftConfig.calibrated_for`
sets them by simulation (keelml.monitor.calibration) and reports say when a threshold is uncalibrated.

>>> det = ADWINDetector(ConceptDriftConfig(delta=0.002))
>>> rng = np.random.default_rng(0)
>>> det.update((rng.random(1000) < 0.1).astype(float))
>>> det.report().status
'no_drift'
>>> det.update((rng.random(1000) < 0.5).astype(float))
>>> det.report().status
'drift'
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from keelml.core.errors import ConfigError
from keelml.monitor.protocol import (
    ConformanceCase,
    DriftReport,
    Status,
    check_alpha,
    check_positive,
    register,
)

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class ConceptDriftConfig:
    """Parameters of the river detectors; each one reads the fields it needs.

    >>> ConceptDriftConfig(delta=2.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keelml.core.errors.ConfigError: ConceptDriftConfig.delta: alpha out of range
    ...
    """

    delta: float = 0.002  # ADWIN: confidence of a cut
    warm_start: int = 30  # DDM / Page-Hinkley: values before the first decision
    drift_threshold: float = 3.0  # DDM: standard errors above the best error rate seen
    ph_delta: float = 0.005  # Page-Hinkley: tolerated change per value
    ph_threshold: float = 50.0  # Page-Hinkley: cumulative deviation that signals a change
    max_history: int = 1_000_000
    alpha: float = 0.05  # the false-alarm rate the calibrated thresholds were set for
    calibrated: bool = False  # True when drift_threshold / ph_threshold came from calibrated()
    adwin_calibrated: bool = False  # True when delta was set for a per-stream false-alarm rate of alpha

    @classmethod
    def calibrated_for(
        cls,
        error_rate: float,
        length: int,
        alpha: float = 0.05,
        *,
        trials: int = 1000,
        seed: int = 0,
        adwin: bool = False,
        **kw: Any,
    ) -> ConceptDriftConfig:
        """Thresholds with false-alarm rate ``alpha`` on a stationary stream of ``length`` values.

        >>> cfg = ConceptDriftConfig.calibrated_for(0.2, 600, 0.05, trials=300)
        >>> cfg.calibrated, 3.0 < cfg.drift_threshold < 8.0
        (True, True)
        """
        from keelml.monitor.calibration import adwin_delta, ddm_threshold, page_hinkley_threshold

        base = cls(**kw)
        if not 0.0 < error_rate < 1.0:
            raise ConfigError(
                "ConceptDriftConfig.calibrated_for: error_rate out of range",
                expected="the reference error rate, strictly between 0 and 1",
                received=repr(error_rate),
                fix="pass the model's error rate on held-out reference data",
            )
        check_alpha(alpha, "ConceptDriftConfig.calibrated_for")
        warm = base.warm_start
        ddm = ddm_threshold(error_rate, length, alpha, warm_start=warm, trials=trials, seed=seed)
        if not math.isfinite(ddm):
            # too many null streams start error-free (river's DDM then alarms at the next error): start
            # testing once an error-free start has probability alpha / 4 (at most halfway through the stream)
            warm = min(max(warm, math.ceil(math.log(alpha / 4) / math.log1p(-error_rate))), length // 2)
            ddm = ddm_threshold(error_rate, length, alpha, warm_start=warm, trials=trials, seed=seed)
            kw = {**kw, "warm_start": warm}
        ph = page_hinkley_threshold(
            error_rate,
            length,
            alpha,
            warm_start=warm,
            delta=base.ph_delta,
            trials=trials,
            seed=seed,
        )
        if adwin:  # ADWIN's delta is a per-check bound; set it so the per-stream rate is alpha
            delta = adwin_delta(error_rate, length, alpha, trials=min(trials, 400), seed=seed, steps=8)
            kw = {**kw, "delta": delta, "adwin_calibrated": True}
        return cls(**{**kw, "drift_threshold": ddm, "ph_threshold": ph, "alpha": alpha, "calibrated": True})

    def __post_init__(self) -> None:
        check_alpha(self.delta, "ConceptDriftConfig.delta")
        check_alpha(self.alpha, "ConceptDriftConfig.alpha")
        check_positive(self.warm_start, "warm_start", "ConceptDriftConfig")
        check_positive(self.max_history, "max_history", "ConceptDriftConfig")
        if self.drift_threshold <= 0 or self.ph_threshold <= 0 or self.ph_delta < 0:
            raise ConfigError(
                "ConceptDriftConfig: thresholds must be positive",
                expected="drift_threshold > 0, ph_threshold > 0, ph_delta >= 0",
                received=f"{self.drift_threshold}, {self.ph_threshold}, {self.ph_delta}",
                fix="keep the defaults (3 standard errors, 50, 0.005) unless calibrated on a null stream",
            )


@dataclass
class _RiverDetector(ABC):
    config: ConceptDriftConfig = field(default_factory=ConceptDriftConfig)
    name: str = "river"

    @abstractmethod
    def _make(self) -> Any:
        """The river detector, configured."""

    @abstractmethod
    def _threshold(self) -> float:
        """The alarm threshold in use (for the report)."""

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._river = self._make()
        self._history: list[float] = []
        self._changes: list[int] = []
        self._report = DriftReport.empty(self.name, alpha=self._alpha(), n_reference=0)

    def _alpha(self) -> float:
        return self.config.delta

    def _needs_calibration(self) -> bool:
        return False

    def update(self, batch: Any) -> None:
        values = np.asarray(batch, dtype=float).ravel()
        finite = values[np.isfinite(values)]
        start = len(self._history)
        for i, v in enumerate(finite.tolist()):
            self._river.update(v)
            if self._river.drift_detected:
                self._changes.append(start + i)
        self._history.extend(finite.tolist())
        del self._history[: max(0, len(self._history) - self.config.max_history)]
        findings = [f"change detected at value {c}" for c in self._changes[-10:]]
        if not math.isfinite(self._threshold()):
            findings.append(
                f"{self.name}: no finite threshold keeps the false-alarm rate at {self.config.alpha} for "
                "this error rate and stream length (error-free starts make river's DDM alarm at the next "
                "error); not tested"
            )
        if self._needs_calibration():
            findings.append(
                f"{self.name}: the threshold is river's default, not a calibrated false-alarm rate; "
                "build the config with ConceptDriftConfig.calibrated_for(error_rate, length, alpha)"
            )
        if len(finite) < len(values):
            findings.append(f"{len(values) - len(finite)} non-finite values in the last batch were skipped")
        n = len(self._history)
        if n == 0:
            findings.append("no values seen yet: nothing to test")
        testable = n > 0 and math.isfinite(self._threshold())
        status: Status = "drift" if self._changes else ("no_drift" if testable else "undetermined")
        self._report = DriftReport(
            detector=self.name,
            status=status,
            alpha=self._alpha(),
            n_reference=0,
            n_current=n,
            statistic=float(len(self._changes)),
            threshold=self._threshold(),
            findings=tuple(findings),
            extra=(("mean", float(np.mean(self._history)) if n else float("nan")),) if n else (),
        )

    def report(self) -> DriftReport:
        return self._report

    def to_state(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, "config": asdict(self.config), "history": list(self._history)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Any:
        det = cls(ConceptDriftConfig(**state["config"]))
        if state["history"]:
            det.update(np.asarray(state["history"], dtype=float))
        return det

    @classmethod
    def conformance_cases(cls) -> tuple[ConformanceCase, ...]:
        def null(rng: np.random.Generator) -> Array:
            return (rng.random(600) < 0.2).astype(float)

        def shifted(rng: np.random.Generator) -> Array:
            return np.concatenate([rng.random(300) < 0.2, rng.random(300) < 0.6]).astype(float)

        config = ConceptDriftConfig.calibrated_for(0.2, 600, 0.05, trials=500)
        return (ConformanceCase(cls.__name__, lambda rng: cls(config), null, shifted, alpha=0.05, trials=40),)


@register
@dataclass
class ADWINDetector(_RiverDetector):
    """ADWIN: adaptive window, cuts when two sub-windows differ beyond a Hoeffding bound at ``delta``."""

    name: str = "adwin"

    def _make(self) -> Any:
        from river.drift import ADWIN

        return ADWIN(delta=self.config.delta)  # type: ignore[no-untyped-call]

    def _threshold(self) -> float:
        return self.config.delta

    def _alpha(self) -> float:
        return self.config.alpha if self.config.adwin_calibrated else self.config.delta


@register
@dataclass
class DDMDetector(_RiverDetector):
    """DDM: error rate p with std s; a change when p + s exceeds the best p_min + 3 s_min."""

    name: str = "ddm"

    def _make(self) -> Any:
        from river.drift.binary import DDM

        return DDM(warm_start=self.config.warm_start, drift_threshold=self.config.drift_threshold)

    def _threshold(self) -> float:
        return self.config.drift_threshold

    def _alpha(self) -> float:
        return self.config.alpha

    def _needs_calibration(self) -> bool:
        return not self.config.calibrated


@register
@dataclass
class PageHinkleyDetector(_RiverDetector):
    """Page-Hinkley: cumulative deviation from the running mean beyond ``ph_threshold``."""

    name: str = "page_hinkley"

    def _make(self) -> Any:
        from river.drift import PageHinkley

        c = self.config
        return PageHinkley(min_instances=c.warm_start, delta=c.ph_delta, threshold=c.ph_threshold)

    def _threshold(self) -> float:
        return self.config.ph_threshold

    def _alpha(self) -> float:
        return self.config.alpha

    def _needs_calibration(self) -> bool:
        return not self.config.calibrated
