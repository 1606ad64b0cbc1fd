"""Univariate data drift: each feature of a window against the same feature of a reference sample.

>>> rng = np.random.default_rng(0)
>>> ref = {"age": rng.normal(40, 10, 500), "plan": rng.choice(["a", "b"], 500)}
>>> det = FeatureDrift(ref, FeatureDriftConfig(numeric="ks", seed=0))
>>> det.update({"age": rng.normal(48, 10, 300), "plan": rng.choice(["a", "b"], 300)})
>>> r = det.report()
>>> r.status, [f.name for f in r.features if f.drift]
('drift', ['age'])
>>> det.update({"plan": np.array(["a", "zeta"])})
>>> print(det.report().findings[-1])
feature 'plan': new categories not in the reference: ['zeta']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from keelml.core.errors import ConfigError, EmptySourceError
from keelml.monitor.protocol import (
    ConformanceCase,
    Correction,
    DriftReport,
    FeatureResult,
    check_alpha,
    check_positive,
    conclude_family,
    register,
)
from keelml.monitor.stats import CategoricalTest, NumericTest, categorical_test, numeric_test

Array = np.ndarray[Any, Any]
NUMERIC: tuple[str, ...] = ("ks", "psi", "wasserstein", "jensen_shannon", "hellinger")
CATEGORICAL: tuple[str, ...] = ("chi2", "psi", "jensen_shannon", "hellinger")


@dataclass(frozen=True)
class FeatureDriftConfig:
    """Which test each kind of feature gets, the false-alarm rate and the multiple-testing control.

    >>> FeatureDriftConfig(numeric="t-test")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keelml.core.errors.ConfigError: FeatureDriftConfig: unknown numeric test
    ...
    """

    numeric: NumericTest = "ks"
    categorical: CategoricalTest = "chi2"
    alpha: float = 0.05
    correction: Correction = "bonferroni"
    n_permutations: int = 200
    bins: int = 10
    window_size: int = 10_000
    new_categories: Literal["drift", "finding"] = "drift"
    categorical_features: tuple[str, ...] = ()
    seed: int = 0

    def __post_init__(self) -> None:
        where = "FeatureDriftConfig"
        for label, value, allowed in (
            ("numeric", self.numeric, NUMERIC),
            ("categorical", self.categorical, CATEGORICAL),
            ("correction", self.correction, ("bonferroni", "benjamini_hochberg")),
            ("new_categories", self.new_categories, ("drift", "finding")),
        ):
            if value not in allowed:
                raise ConfigError(
                    f"{where}: unknown {label} test"
                    if label in ("numeric", "categorical")
                    else f"{where}: unknown {label}",
                    expected=" | ".join(allowed),
                    received=repr(value),
                    fix=f"pass {label}={allowed[0]!r}",
                )
        check_alpha(self.alpha, where)
        check_positive(self.n_permutations, "n_permutations", where, minimum=int(np.ceil(1 / self.alpha)))
        check_positive(self.bins, "bins", where, minimum=2)
        check_positive(self.window_size, "window_size", where)


def _column(batch: Any, name: str) -> Array | None:
    try:
        if name not in batch:
            return None
        return np.asarray(batch[name])
    except TypeError:
        return None


def _is_categorical(values: Array) -> bool:
    return values.dtype.kind in "OUSb"


def _finite(values: Array) -> Array:
    v = values.astype(float)
    out: Array = v[~np.isnan(v)]
    return out


def _present(values: Array) -> Array:
    keep = np.array([not (isinstance(x, float) and np.isnan(x)) and x is not None for x in values.tolist()])
    out: Array = values[keep].astype(str) if len(values) else values.astype(str)
    return out


@register
@dataclass
class FeatureDrift:
    """Per-feature two-sample tests of the current window against a reference, with p-values."""

    reference: Mapping[str, Any]
    config: FeatureDriftConfig = field(default_factory=FeatureDriftConfig)
    name: str = "feature_drift"

    def __post_init__(self) -> None:
        if not isinstance(self.reference, Mapping) and not hasattr(self.reference, "columns"):
            raise ConfigError(
                "FeatureDrift: reference is not a table",
                expected="a mapping of feature name to a 1-d array (or a pandas DataFrame)",
                received=type(self.reference).__name__,
                fix="pass {'feature': np.array([...]), ...}",
            )
        names = [
            str(c) for c in (self.reference.columns if hasattr(self.reference, "columns") else self.reference)
        ]
        self._ref: dict[str, Array] = {n: np.asarray(self.reference[n]).copy() for n in names}
        if not self._ref or min(len(v) for v in self._ref.values()) == 0:
            raise EmptySourceError(
                "FeatureDrift: the reference has no rows",
                expected="at least one feature with at least one row",
                received=f"{len(self._ref)} features",
                fix="build the detector from a reference sample of the training or validation data",
            )
        self._cat = {
            n for n, v in self._ref.items() if _is_categorical(v) or n in self.config.categorical_features
        }
        self.name = f"feature_drift[{self.config.numeric}/{self.config.categorical}]"
        self.reset()

    # -- protocol --------------------------------------------------------------------------------

    def reset(self) -> None:
        self._cur: dict[str, Array] = {n: self._ref[n][:0] for n in self._ref}
        self._rows = 0
        self._notes: list[str] = []
        self._report = DriftReport.empty(self.name, alpha=self.config.alpha, n_reference=self._n_ref())

    def update(self, batch: Any) -> None:
        """Add ``batch`` (a mapping of feature to values, or a DataFrame) to the window and test it."""
        notes: list[str] = []
        lengths = [len(c) for c in (_column(batch, n) for n in self._ref) if c is not None]
        if not lengths or max(lengths) == 0:
            notes.append("the last batch had no rows")
        for n in self._ref:
            col = _column(batch, n)
            if col is None:
                notes.append(f"feature {n!r} is missing from the batch; it was not tested on those rows")
                continue
            joined = np.concatenate([self._cur[n], col.ravel()]) if len(self._cur[n]) else col.ravel()
            self._cur[n] = joined[-self.config.window_size :]
        self._rows = min(self._rows + (max(lengths) if lengths else 0), self.config.window_size)
        self._notes = notes
        self._report = self._test()

    def report(self) -> DriftReport:
        return self._report

    def to_state(self) -> dict[str, Any]:
        def enc(v: Array) -> list[Any]:
            return [None if isinstance(x, float) and np.isnan(x) else x for x in v.tolist()]

        return {
            "kind": "FeatureDrift",
            "config": asdict(self.config),
            "reference": {n: enc(v) for n, v in self._ref.items()},
            "reference_kinds": {n: ("str" if n in self._cat else "float") for n in self._ref},
            "current": {n: enc(v) for n, v in self._cur.items()},
            "rows": self._rows,
            "notes": list(self._notes),
            "report": self._report.to_dict(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FeatureDrift:
        def dec(v: list[Any], kind: str) -> Array:
            if kind == "str":
                return np.array(v, dtype=object)  # None stays missing
            return np.array([np.nan if x is None else x for x in v], dtype=float)

        cfg = state["config"]
        config = FeatureDriftConfig(**{**cfg, "categorical_features": tuple(cfg["categorical_features"])})
        kinds = state["reference_kinds"]
        det = cls({n: dec(v, kinds[n]) for n, v in state["reference"].items()}, config)
        det._cur = {n: dec(v, kinds[n]) for n, v in state["current"].items()}
        det._rows = int(state["rows"])
        det._notes = list(state["notes"])
        det._report = DriftReport.from_dict(state["report"])
        return det

    # -- the test --------------------------------------------------------------------------------

    def _n_ref(self) -> int:
        return max(len(v) for v in self._ref.values())

    def _one(self, n: str, rng: np.random.Generator) -> tuple[FeatureResult, str | None]:
        cfg = self.config
        cat = n in self._cat
        test = cfg.categorical if cat else cfg.numeric
        ref = _present(self._ref[n]) if cat else _finite(self._ref[n])
        cur = _present(self._cur[n]) if cat else _finite(self._cur[n])
        if len(self._cur[n]) == 0:
            return FeatureResult(n, test, None, None, None, False, "no rows in the window"), None
        if len(cur) == 0:
            note = f"feature {n!r}: all {len(self._cur[n])} values in the window are missing (NaN/None)"
            return FeatureResult(n, test, None, None, None, False, note), note
        if cat:
            res = categorical_test(
                cfg.categorical, ref, cur, rng=rng, n_permutations=cfg.n_permutations, alpha=cfg.alpha
            )
            new = sorted(set(cur.tolist()) - set(ref.tolist()))
            if new:
                note = f"feature {n!r}: new categories not in the reference: {new[:10]}"
                return FeatureResult(
                    n, test, res.statistic, res.p_value, None, cfg.new_categories == "drift", note
                ), note
        else:
            res = numeric_test(
                cfg.numeric,
                ref,
                cur,
                rng=rng,
                n_permutations=cfg.n_permutations,
                alpha=cfg.alpha,
                bins=cfg.bins,
            )
        return FeatureResult(n, test, res.statistic, res.p_value, None, False), None

    def _missing_share(self, n: str) -> FeatureResult | None:
        """Fisher's exact test on the share of missing values, when either side has any."""
        cat = n in self._cat
        ref_raw, cur_raw = self._ref[n], self._cur[n]
        if len(cur_raw) == 0:
            return None

        def present(v: Array) -> int:
            return len(_present(v)) if cat else len(_finite(v))

        miss_ref, miss_cur = len(ref_raw) - present(ref_raw), len(cur_raw) - present(cur_raw)
        if miss_ref == 0 and miss_cur == 0:
            return None
        from scipy.stats import fisher_exact

        table = [[miss_ref, len(ref_raw) - miss_ref], [miss_cur, len(cur_raw) - miss_cur]]
        res = fisher_exact(table)
        note = (
            f"missing share {miss_ref / len(ref_raw):.3f} in the reference, {miss_cur / len(cur_raw):.3f} now"
        )
        return FeatureResult(
            f"{n} (missing share)",
            "fisher_exact",
            miss_cur / len(cur_raw),
            float(res.pvalue),
            None,
            False,
            note,
        )

    def _test(self) -> DriftReport:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        results: list[FeatureResult] = []
        notes = list(self._notes)
        for n in self._ref:
            r, note = self._one(n, rng)
            results.append(r)
            if note:
                notes.append(note)
            missing = self._missing_share(n)
            if missing is not None:
                results.append(missing)
        results, status, min_p = conclude_family(results, cfg.correction, cfg.alpha, self._rows, notes)
        return DriftReport(
            detector=self.name,
            status=status,
            alpha=cfg.alpha,
            n_reference=self._n_ref(),
            n_current=self._rows,
            p_value=min_p,
            threshold=cfg.alpha,
            features=tuple(results),
            findings=tuple(notes),
        )

    # -- conformance parameters ------------------------------------------------------------------

    @classmethod
    def conformance_cases(cls) -> tuple[ConformanceCase, ...]:
        def make(numeric: NumericTest, categorical: CategoricalTest) -> Any:
            def build(rng: np.random.Generator) -> FeatureDrift:
                ref = {
                    "x": rng.normal(size=200),
                    "y": rng.exponential(size=200),
                    "c": rng.choice(list("abc"), 200),
                }
                config = FeatureDriftConfig(
                    numeric=numeric,
                    categorical=categorical,
                    n_permutations=100,
                    seed=int(rng.integers(2**31)),
                )
                return cls(ref, config)

            return build

        def null(rng: np.random.Generator) -> dict[str, Array]:
            return {
                "x": rng.normal(size=150),
                "y": rng.exponential(size=150),
                "c": rng.choice(list("abc"), 150),
            }

        def shifted(rng: np.random.Generator) -> dict[str, Array]:
            c = rng.choice(list("abc"), 150, p=[0.7, 0.2, 0.1])
            return {"x": rng.normal(0.8, 1.0, size=150), "y": rng.exponential(size=150), "c": c}

        pairs: list[tuple[NumericTest, CategoricalTest]] = [
            ("ks", "chi2"),
            ("psi", "psi"),
            ("wasserstein", "chi2"),
            ("jensen_shannon", "jensen_shannon"),
            ("hellinger", "hellinger"),
        ]
        return tuple(
            ConformanceCase(f"feature_drift[{a}/{b}]", make(a, b), null, shifted, alpha=0.05, trials=30)
            for a, b in pairs
        )
