"""Multivariate drift on whole rows: MMD, a domain classifier, and black-box shift detection (BBSD).

All three compare the current window (an ``(n, d)`` array, the last ``window_size`` rows) with a reference
array and return a p-value: MMD and the domain classifier by permutation, BBSD by per-class KS tests on a
model's predicted probabilities with a multiple-testing correction (Rabanser et al., "Failing Loudly").

>>> rng = np.random.default_rng(0)
>>> det = MMDDetector(rng.normal(size=(200, 3)), MultivariateConfig(n_permutations=200))
>>> det.update(rng.normal(size=(150, 3)))
>>> det.report().status
'no_drift'
>>> det.update(rng.normal(1.0, 1.0, size=(150, 3)))
>>> det.report().status
'drift'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from keelml.core.errors import EmptySourceError, InvalidInputError
from keelml.monitor.protocol import (
    ConformanceCase,
    Correction,
    DriftReport,
    FeatureResult,
    Status,
    adjust,
    check_alpha,
    check_positive,
    permutation_p_value,
    register,
)

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class MultivariateConfig:
    """False-alarm rate, permutations, window and (for BBSD) the multiple-testing correction.

    >>> MultivariateConfig(n_permutations=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keelml.core.errors.ConfigError: MultivariateConfig: n_permutations too small
    ...
    """

    alpha: float = 0.05
    n_permutations: int = 200
    window_size: int = 1000
    max_reference: int = 1000
    correction: Correction = "bonferroni"
    seed: int = 0

    def __post_init__(self) -> None:
        where = "MultivariateConfig"
        check_alpha(self.alpha, where)
        check_positive(self.n_permutations, "n_permutations", where, minimum=int(np.ceil(1 / self.alpha)))
        check_positive(self.window_size, "window_size", where)
        check_positive(self.max_reference, "max_reference", where, minimum=2)


def _as_2d(batch: Any, where: str) -> Array:
    arr = np.asarray(batch, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise InvalidInputError(
            f"{where}: the batch is not a table",
            expected="a 2-d array of shape (rows, features)",
            received=f"shape {arr.shape}",
            fix="pass one row per example, e.g. X[window] or model.predict_proba(X[window])",
        )
    return arr


@dataclass
class _RowDetector(ABC):
    reference: Any
    config: MultivariateConfig = field(default_factory=MultivariateConfig)
    name: str = "rows"

    def __post_init__(self) -> None:
        ref = _as_2d(self.reference, type(self).__name__)
        ref = ref[np.isfinite(ref).all(axis=1)]
        if len(ref) < 2:
            raise EmptySourceError(
                f"{type(self).__name__}: the reference has fewer than 2 complete rows",
                expected="a reference sample of at least 2 rows without NaN",
                received=f"{len(ref)} complete rows",
                fix="build the detector from held-out training or validation rows",
            )
        if len(ref) > self.config.max_reference:
            keep = np.random.default_rng(self.config.seed).choice(
                len(ref), self.config.max_reference, replace=False
            )
            ref = ref[np.sort(keep)]
        self._ref = ref
        self.reset()

    def reset(self) -> None:
        self._cur = self._ref[:0]
        self._report = DriftReport.empty(self.name, alpha=self.config.alpha, n_reference=len(self._ref))

    def report(self) -> DriftReport:
        return self._report

    def update(self, batch: Any) -> None:
        """Append ``batch`` rows (complete rows only) to the window and test the window."""
        arr = _as_2d(batch, type(self).__name__)
        if arr.shape[1] != self._ref.shape[1] and len(arr):
            raise InvalidInputError(
                f"{type(self).__name__}: the batch has a different number of columns from the reference",
                expected=f"{self._ref.shape[1]} columns",
                received=f"{arr.shape[1]} columns",
                fix="pass the same features (or the same model's probabilities) as the reference",
            )
        findings: list[str] = []
        complete = np.isfinite(arr).all(axis=1) if len(arr) else np.zeros(0, dtype=bool)
        if len(arr) and not complete.all():
            findings.append(f"{int((~complete).sum())} of {len(arr)} rows had NaN/inf and were not tested")
        rows = arr[complete].reshape(-1, self._ref.shape[1])
        self._cur = np.concatenate([self._cur, rows])[-self.config.window_size :]
        if len(self._cur) < 2:
            findings.append(f"the window has {len(self._cur)} complete rows: at least 2 are needed to test")
            self._report = DriftReport(
                self.name,
                "undetermined",
                self.config.alpha,
                len(self._ref),
                len(self._cur),
                findings=tuple(findings),
            )
            return
        self._report = self._test(tuple(findings))

    @abstractmethod
    def _test(self, findings: tuple[str, ...]) -> DriftReport:
        """The detector's own test on the filled reference and current windows."""

    def _decide(self, statistic: float, null: Array, findings: tuple[str, ...]) -> DriftReport:
        p = permutation_p_value(statistic, null)
        status: Status = "drift" if p <= self.config.alpha else "no_drift"
        return DriftReport(
            self.name,
            status,
            self.config.alpha,
            len(self._ref),
            len(self._cur),
            statistic=statistic,
            p_value=p,
            threshold=float(np.quantile(null, 1 - self.config.alpha)),
            findings=findings,
        )

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": type(self).__name__,
            "config": asdict(self.config),
            "reference": self._ref.tolist(),
            "current": self._cur.tolist(),
            "report": self._report.to_dict(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Any:
        # the stored reference is already subsampled to max_reference rows, so it is kept as is
        det = cls(np.asarray(state["reference"], dtype=float), MultivariateConfig(**state["config"]))
        det._cur = np.asarray(state["current"], dtype=float).reshape(-1, det._ref.shape[1])
        det._report = DriftReport.from_dict(state["report"])
        return det

    @classmethod
    def conformance_cases(cls) -> tuple[ConformanceCase, ...]:
        def make(rng: np.random.Generator) -> Any:
            config = MultivariateConfig(n_permutations=100, seed=int(rng.integers(2**31)))
            return cls(rng.normal(size=(150, 4)), config)

        def shifted(rng: np.random.Generator) -> Array:
            out: Array = rng.normal(size=(150, 4)) + np.array([0.6, 0.6, 0.0, 0.0])
            return out

        return (
            ConformanceCase(cls.__name__, make, lambda rng: rng.normal(size=(150, 4)), shifted, alpha=0.05),
        )


@register
@dataclass
class MMDDetector(_RowDetector):
    """Maximum mean discrepancy, RBF kernel (bandwidth: median pooled distance), permutation p-value."""

    name: str = "mmd"

    def _test(self, findings: tuple[str, ...]) -> DriftReport:
        pooled = np.concatenate([self._ref, self._cur])
        sq = np.sum(pooled**2, axis=1)
        d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * pooled @ pooled.T, 0.0)
        upper = d2[np.triu_indices(len(pooled), k=1)]
        bandwidth = float(np.median(upper)) or 1.0  # median heuristic on squared distances
        kernel = np.exp(-d2 / bandwidth)
        n, m = len(self._ref), len(self._cur)
        signs = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
        rng = np.random.default_rng(self.config.seed)
        perms = rng.permuted(np.broadcast_to(signs, (self.config.n_permutations, n + m)), axis=1)
        null = np.sum((perms @ kernel) * perms, axis=1)
        observed = float(signs @ kernel @ signs)  # biased MMD^2 (V-statistic)
        return self._decide(observed, null, findings)


@register
@dataclass
class DomainClassifierDetector(_RowDetector):
    """Logistic regression told to separate reference from current; held-out AUC, permutation null.

    The classifier is fit on a stratified half of the pooled rows and scored on the other half, so under
    no shift the held-out labels are exchangeable given the scores and the permutation null is exact.
    (Permuting labels over pooled out-of-fold cross-validation scores is not: the folds' models share
    training rows, which widens the AUC's spread; on 64-d Gaussian noise that alarmed 11% at alpha 0.05.)
    """

    name: str = "domain_classifier"

    def _test(self, findings: tuple[str, ...]) -> DriftReport:
        from scipy.stats import rankdata
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        n0, n1 = len(self._ref), len(self._cur)
        if min(n0, n1) < 4:
            return DriftReport(
                self.name, "undetermined", self.config.alpha, n0, n1,
                findings=(*findings, "fewer than 4 rows on one side: cannot fit and hold out"),
            )  # fmt: skip
        rng = np.random.default_rng(self.config.seed)
        ref_idx, cur_idx = rng.permutation(n0), rng.permutation(n1)
        fit_ref, out_ref = self._ref[ref_idx[: n0 // 2]], self._ref[ref_idx[n0 // 2 :]]
        fit_cur, out_cur = self._cur[cur_idx[: n1 // 2]], self._cur[cur_idx[n1 // 2 :]]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(np.concatenate([fit_ref, fit_cur]), np.r_[np.zeros(len(fit_ref)), np.ones(len(fit_cur))])
        scores = model.predict_proba(np.concatenate([out_ref, out_cur]))[:, 1]
        y = np.r_[np.zeros(len(out_ref)), np.ones(len(out_cur))]
        ranks = rankdata(scores)
        m1, m0 = len(out_cur), len(out_ref)
        perms = rng.permuted(np.broadcast_to(y, (self.config.n_permutations, len(y))), axis=1)
        null = (perms @ ranks - m1 * (m1 + 1) / 2) / (m1 * m0)
        observed = float((y @ ranks - m1 * (m1 + 1) / 2) / (m1 * m0))
        return self._decide(observed, null, findings)


@register
@dataclass
class BBSDDetector(_RowDetector):
    """Black-box shift detection: KS test per predicted-probability column, corrected across classes.

    The reference is a model's ``predict_proba`` on held-out reference rows; batches are the same model's
    probabilities on the current rows.
    """

    name: str = "bbsd"

    def _test(self, findings: tuple[str, ...]) -> DriftReport:
        from scipy.stats import ks_2samp

        res = ks_2samp(self._ref, self._cur, axis=0)
        pvals = np.atleast_1d(np.asarray(res.pvalue, dtype=float))
        stats = np.atleast_1d(np.asarray(res.statistic, dtype=float))
        adjusted = adjust(pvals, self.config.correction)
        features = tuple(
            FeatureResult(f"class_{k}", "ks", float(s), float(p), float(a), bool(a <= self.config.alpha))
            for k, (s, p, a) in enumerate(zip(stats, pvals, adjusted, strict=True))
        )
        status: Status = "drift" if any(f.drift for f in features) else "no_drift"
        return DriftReport(
            self.name,
            status,
            self.config.alpha,
            len(self._ref),
            len(self._cur),
            statistic=float(stats.max()),
            p_value=float(adjusted.min()),
            threshold=self.config.alpha,
            features=features,
            findings=findings,
        )

    @classmethod
    def conformance_cases(cls) -> tuple[ConformanceCase, ...]:
        def probs(rng: np.random.Generator, n: int, skew: float = 0.0) -> Array:
            logits = rng.normal(size=(n, 3)) + np.array([skew, 0.0, 0.0])
            e = np.exp(logits - logits.max(axis=1, keepdims=True))
            out: Array = e / e.sum(axis=1, keepdims=True)
            return out

        def make(rng: np.random.Generator) -> Any:
            return cls(probs(rng, 200), MultivariateConfig(seed=int(rng.integers(2**31))))

        return (
            ConformanceCase(
                cls.__name__, make, lambda rng: probs(rng, 150), lambda rng: probs(rng, 150, 1.0), alpha=0.05
            ),
        )
