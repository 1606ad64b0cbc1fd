"""Performance estimation without labels for classifiers: confidence-based performance estimation (CBPE).

On labelled reference data, the top-class confidence is calibrated to the chance of being right
(isotonic regression). On an unlabelled window, the expected accuracy is the mean calibrated confidence,
with a band for the realised accuracy (a Poisson-binomial: variance ``sum c(1 - c) / n^2``). The detector
alarms when the expected accuracy is significantly below the reference's: a one-sided permutation test
on held-out calibrated confidences. The estimate assumes a covariate shift: ``P(correct | confidence)``
unchanged.

The test does not compare the window with the reference the calibration was fit on: in-sample, the
reference's mean calibrated confidence is its accuracy, while the same map on new rows is biased (an
isotonic fit is pulled up at the top, where a good classifier's confidences pile up) and skewed, so that
one-sided z-test alarmed 3.4% of the time at alpha 0.05 (2000 null trials on digits). Instead a second
map is fit on a random half of the reference and applied to the other half and to the window; under no
shift those values are exchangeable, so the permutation p-value is exact.

>>> rng = np.random.default_rng(0)
>>> probs = rng.dirichlet([4, 1, 1], size=2000)
>>> labels = np.array([rng.choice(3, p=p) for p in probs])
>>> det = CBPE(probs, labels)
>>> window = rng.dirichlet([4, 1, 1], size=500)
>>> truth = np.array([rng.choice(3, p=p) for p in window])  # unseen by the detector
>>> det.update(window)
>>> est = det.estimate()
>>> est.low <= float((window.argmax(axis=1) == truth).mean()) <= est.high, det.report().status
(True, 'no_drift')
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from keelml.core.errors import EmptySourceError, InvalidInputError
from keelml.monitor.protocol import (
    ConformanceCase,
    DriftReport,
    Status,
    check_alpha,
    check_positive,
    permutation_p_value,
    register,
)

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class CBPEConfig:
    """False-alarm rate of the accuracy-drop test, the band's confidence level and the window."""

    alpha: float = 0.05
    band: float = 0.95
    window_size: int = 5000
    n_permutations: int = 1000
    seed: int = 0  # the reference split of the test and its permutations

    def __post_init__(self) -> None:
        check_alpha(self.alpha, "CBPEConfig")
        check_alpha(self.band, "CBPEConfig.band")
        check_positive(self.window_size, "window_size", "CBPEConfig")
        check_positive(
            self.n_permutations, "n_permutations", "CBPEConfig", minimum=int(np.ceil(1 / self.alpha))
        )


@dataclass(frozen=True)
class PerformanceEstimate:
    """Expected accuracy of the window and the band the realised accuracy falls in."""

    accuracy: float
    low: float
    high: float
    n: int
    reference_accuracy: float


def _probs(x: Any, where: str) -> Array:
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise InvalidInputError(
            f"{where}: not a probability matrix",
            expected="predict_proba output, shape (rows, classes >= 2)",
            received=f"shape {arr.shape}",
            fix="pass model.predict_proba(X)",
        )
    return arr


@register
@dataclass
class CBPE:
    """Estimated accuracy from calibrated confidences; a drift report when it drops significantly."""

    reference_probs: Any
    reference_labels: Any
    config: CBPEConfig = field(default_factory=CBPEConfig)
    name: str = "cbpe"

    def __post_init__(self) -> None:
        probs = _probs(self.reference_probs, "CBPE reference")
        labels = np.asarray(self.reference_labels).ravel()
        if len(probs) < 2 or len(labels) != len(probs):
            raise EmptySourceError(
                "CBPE: the reference needs labelled rows",
                expected="at least 2 rows of probabilities and one label per row",
                received=f"{len(probs)} rows, {len(labels)} labels",
                fix="pass held-out predict_proba output and the true labels of the same rows",
            )
        self._conf = probs.max(axis=1)
        self._correct = (probs.argmax(axis=1) == labels.astype(int)).astype(float)
        self._k = probs.shape[1]
        self._fit()
        self.reset()

    def _fit(self) -> None:
        from sklearn.isotonic import IsotonicRegression

        def iso(idx: Array) -> Any:
            model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            return model.fit(self._conf[idx], self._correct[idx])

        everything = np.arange(len(self._conf))
        self._iso = iso(everything)  # the estimate and its band
        # the test: a map fit on half of the reference, and its values on the other (held-out) half
        order = np.random.default_rng(self.config.seed).permutation(len(self._conf))
        half = max(1, len(order) // 2)
        self._iso_test = iso(np.sort(order[:half]))
        self._held = self._iso_test.predict(self._conf[np.sort(order[half:])])

    def reset(self) -> None:
        self._cur = np.zeros(0)
        self._report = DriftReport.empty(self.name, alpha=self.config.alpha, n_reference=len(self._conf))
        self._estimate: PerformanceEstimate | None = None

    def update(self, batch: Any) -> None:
        """Add a window of ``predict_proba`` rows (no labels) and re-estimate accuracy."""
        from scipy.stats import norm

        probs = (
            _probs(batch, "CBPE batch").reshape(-1, self._k)
            if len(np.asarray(batch))
            else np.zeros((0, self._k))
        )
        ok = np.isfinite(probs).all(axis=1)
        self._cur = np.concatenate([self._cur, probs[ok].max(axis=1)])[-self.config.window_size :]
        n = len(self._cur)
        findings = [f"{int((~ok).sum())} rows had NaN/inf and were skipped"] if not ok.all() else []
        if n < 2:
            findings.append(f"the window has {n} rows: at least 2 are needed to estimate accuracy")
            self._report = DriftReport(
                self.name, "undetermined", self.config.alpha, len(self._conf), n, findings=tuple(findings)
            )
            self._estimate = None
            return
        c = self._iso.predict(self._cur)
        acc, ref_acc = float(c.mean()), float(self._correct.mean())
        half = float(norm.ppf(0.5 + self.config.band / 2) * np.sqrt(np.sum(c * (1 - c))) / n)
        self._estimate = PerformanceEstimate(acc, max(0.0, acc - half), min(1.0, acc + half), n, ref_acc)
        p = self._p_value(self._iso_test.predict(self._cur))
        status: Status = "drift" if p <= self.config.alpha else "no_drift"
        self._report = DriftReport(
            self.name, status, self.config.alpha, len(self._conf), n,
            statistic=ref_acc - acc, p_value=p, threshold=self.config.alpha, findings=tuple(findings),
            extra=(("estimated_accuracy", acc), ("band_low", self._estimate.low),
                   ("band_high", self._estimate.high), ("reference_accuracy", ref_acc)),
        )  # fmt: skip

    def _p_value(self, window: Array) -> float:
        """One-sided permutation p-value of mean(held-out reference) - mean(window), same calibration map."""
        pooled = np.concatenate([self._held, window])
        m, total = len(self._held), float(pooled.sum())
        rng = np.random.default_rng([self.config.seed, len(window)])

        def drop(ref_sums: Array) -> Array:
            out: Array = ref_sums / m - (total - ref_sums) / len(window)
            return out

        observed = float(drop(np.array([self._held.sum()]))[0])
        null = []
        for start in range(0, self.config.n_permutations, 100):  # 100 shuffles at a time: bounded memory
            rows = min(100, self.config.n_permutations - start)
            perms = rng.permuted(np.broadcast_to(pooled, (rows, len(pooled))), axis=1)
            null.append(drop(perms[:, :m].sum(axis=1)))
        # the same sums in another order can differ in the last bits: a tie is a tie
        return permutation_p_value(observed - 1e-12, np.concatenate(null))

    def report(self) -> DriftReport:
        return self._report

    def estimate(self) -> PerformanceEstimate | None:
        """The last estimate (``None`` before a window of at least 2 rows)."""
        return self._estimate

    def to_state(self) -> dict[str, Any]:
        return {
            "kind": "CBPE",
            "config": asdict(self.config),
            "reference_confidence": self._conf.tolist(),
            "reference_correct": self._correct.tolist(),
            "classes": self._k,
            "current": self._cur.tolist(),
            "report": self._report.to_dict(),
            "estimate": None if self._estimate is None else asdict(self._estimate),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> CBPE:
        conf = np.asarray(state["reference_confidence"], dtype=float)
        k = int(state["classes"])
        # rebuild a probability matrix with the same top confidences; predicted class 0, label per correctness
        probs = np.column_stack([conf, np.repeat(((1 - conf) / (k - 1))[:, None], k - 1, axis=1)])
        correct = np.asarray(state["reference_correct"], dtype=float)
        det = cls(probs, np.where(correct == 1.0, 0, 1), CBPEConfig(**state["config"]))
        det._cur = np.asarray(state["current"], dtype=float)
        det._report = DriftReport.from_dict(state["report"])
        det._estimate = None if state["estimate"] is None else PerformanceEstimate(**state["estimate"])
        return det

    @classmethod
    def conformance_cases(cls) -> tuple[ConformanceCase, ...]:
        def make(rng: np.random.Generator) -> CBPE:
            probs = rng.dirichlet([3.0, 1.0, 1.0], size=400)
            labels = (rng.random(400)[:, None] > np.cumsum(probs, axis=1)).sum(axis=1)
            return cls(probs, labels)

        return (
            ConformanceCase(
                "CBPE",
                make,
                lambda rng: rng.dirichlet([3.0, 1.0, 1.0], size=300),
                lambda rng: rng.dirichlet([1.0, 1.0, 1.0], size=300),
                alpha=0.05,
            ),
        )
