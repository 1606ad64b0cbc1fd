"""Per-column drift of a window against a stored :class:`Profile` (sketches, not reference rows).

Same decisions as :class:`~keelml.monitor.univariate.FeatureDrift` (a p-value per column, a declared
multiple-testing correction, a Fisher test on the share of missing values, findings for empty windows,
missing or all-NaN columns and new categories), but the reference side is the profile's sketches, so the
cost is proportional to the window.

>>> import pandas as pd
>>> from keelml.monitor.frame import Frame
>>> from keelml.monitor.profile import build_profile
>>> rng = np.random.default_rng(0)
>>> prof = build_profile(Frame(pd.DataFrame({"x": rng.normal(size=4000), "c": rng.choice(["a", "b"], 4000)})))
>>> det = ProfileDrift(prof)
>>> det.update({"x": rng.normal(0.5, 1, 500), "c": rng.choice(["a", "b"], 500)})
>>> [f.name for f in det.report().features if f.drift]
['x']
>>> det.reset(); det.update({"c": np.array(["a", "zeta"], dtype=object)})
>>> det.report().status, det.report().findings[0]
('drift', "feature 'x' is missing from the batch; it was not tested on those rows")
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from keelml.monitor.compare import Histogram, categorical_vs_sketch, numeric_vs_sketch
from keelml.monitor.frame import Frame
from keelml.monitor.profile import Profile, build_profile
from keelml.monitor.protocol import ConformanceCase, DriftReport, FeatureResult, conclude_family, register
from keelml.monitor.sketch import CategoricalSketch, ColumnSketch, NumericSketch
from keelml.monitor.univariate import FeatureDriftConfig

Array = np.ndarray[Any, Any]


def _values(batch: Any, name: str) -> Array | None:
    try:
        if name not in batch:
            return None
    except TypeError:
        return None
    return np.asarray(batch[name]).ravel()


@register
@dataclass
class ProfileDrift:
    """Drift of each column (``part="features"``) or each model output (``"outputs"``) vs a profile."""

    profile: Profile
    config: FeatureDriftConfig = field(default_factory=FeatureDriftConfig)
    part: Literal["features", "outputs"] = "features"
    name: str = "profile_drift"

    def __post_init__(self) -> None:
        self._sketches: dict[str, ColumnSketch] = (
            self.profile.columns if self.part == "features" else self.profile.outputs
        )
        kind = "data" if self.part == "features" else "output"
        self.name = f"{kind}_drift[{self.config.numeric}/{self.config.categorical}]"
        self.histograms: dict[str, Histogram] = {}
        self.reset()

    def _is_cat(self, name: str) -> bool:
        return isinstance(self._sketches[name], CategoricalSketch)

    def _coerce(self, name: str, values: Array) -> Array:
        """Window values as the reference kind: float (NaN missing) or object (None missing)."""
        if self._is_cat(name):
            s = pd.Series(values, dtype=object)
            out: Array = s.where(s.notna(), None).to_numpy(dtype=object)
            return out
        num: Array = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float)
        return num

    def reset(self) -> None:
        self._cur: dict[str, Array] = {
            n: np.zeros(0, dtype=object if self._is_cat(n) else float) for n in self._sketches
        }
        self._rows = 0
        self._notes: list[str] = []
        self.histograms = {}
        self._report = DriftReport.empty(self.name, alpha=self.config.alpha, n_reference=self.profile.rows)

    def report(self) -> DriftReport:
        return self._report

    def update(self, batch: Any) -> None:
        """Add ``batch`` (a mapping of column to values, or a DataFrame) to the window and test it."""
        notes: list[str] = []
        cols = {n: _values(batch, n) for n in self._sketches}
        lengths = [len(c) for c in cols.values() if c is not None]
        if not lengths or max(lengths) == 0:
            notes.append("the last batch had no rows")
        for n, col in cols.items():
            if col is None:
                notes.append(f"feature {n!r} is missing from the batch; it was not tested on those rows")
                continue
            joined = np.concatenate([self._cur[n], self._coerce(n, col)])
            self._cur[n] = joined[-self.config.window_size :]
        self._rows = min(self._rows + (max(lengths) if lengths else 0), self.config.window_size)
        self._notes = notes
        self._report = self._test()

    def _one(self, n: str, rng: np.random.Generator) -> tuple[list[FeatureResult], list[str]]:
        cfg, sk, raw = self.config, self._sketches[n], self._cur[n]
        cat = isinstance(sk, CategoricalSketch)
        test = cfg.categorical if cat else cfg.numeric
        if len(raw) == 0:
            return [FeatureResult(n, test, None, None, None, False, "no rows in the window")], []
        # categories stay objects: they are compared as str(value) downstream, so no string copy here
        present = raw[~pd.isna(raw)] if cat else raw[np.isfinite(raw)]
        notes: list[str] = []
        out: list[FeatureResult] = []
        missing_cur = len(raw) - len(present)
        if sk.missing or missing_cur:
            from scipy.stats import fisher_exact

            n_ref = sk.count + sk.missing
            res = fisher_exact([[sk.missing, sk.count], [missing_cur, len(present)]])
            share_ref, share_cur = sk.missing / max(n_ref, 1), missing_cur / len(raw)
            note = f"missing share {share_ref:.3f} in the reference, {share_cur:.3f} now"
            out.append(
                FeatureResult(
                    f"{n} (missing share)",
                    "fisher_exact",
                    missing_cur / len(raw),
                    float(res.pvalue),
                    None,
                    False,
                    note,
                )
            )
        if len(present) == 0:
            note = f"feature {n!r}: all {len(raw)} values in the window are missing (NaN/None)"
            return [FeatureResult(n, test, None, None, None, False, note), *out], [note]
        if sk.count == 0:
            note = f"feature {n!r}: the reference profile has no values for it"
            return [FeatureResult(n, test, None, None, None, False, note), *out], [note]
        if isinstance(sk, CategoricalSketch):
            res_c, new = categorical_vs_sketch(test, sk, present, rng=rng, n_sim=cfg.n_permutations)
            self.histograms[n] = res_c.histogram
            if new:
                note = f"feature {n!r}: new categories not in the reference: {sorted(new)[:10]}"
                drift = cfg.new_categories == "drift"
                return [FeatureResult(n, test, res_c.statistic, res_c.p_value, None, drift, note), *out], [
                    note
                ]
            return [FeatureResult(n, test, res_c.statistic, res_c.p_value, None, False), *out], notes
        assert isinstance(sk, NumericSketch)
        res_n = numeric_vs_sketch(test, sk, present, rng=rng, n_sim=cfg.n_permutations, bins=cfg.bins)
        self.histograms[n] = res_n.histogram
        note = f"sketch rank error {res_n.rank_error:.2e}" if res_n.rank_error else ""
        return [FeatureResult(n, test, res_n.statistic, res_n.p_value, None, False, note), *out], notes

    def _test(self) -> DriftReport:
        cfg = self.config
        rng = np.random.default_rng(cfg.seed)
        results: list[FeatureResult] = []
        notes = list(self._notes)
        for n in self._sketches:
            res, found = self._one(n, rng)
            results.extend(res)
            notes.extend(found)
        results, status, min_p = conclude_family(results, cfg.correction, cfg.alpha, self._rows, notes)
        return DriftReport(
            self.name,
            status,
            cfg.alpha,
            self.profile.rows,
            self._rows,
            p_value=min_p,
            threshold=cfg.alpha,
            features=tuple(results),
            findings=tuple(notes),
        )

    def to_state(self) -> dict[str, Any]:
        def enc(v: Array) -> list[Any]:
            return [None if (x is None or (isinstance(x, float) and np.isnan(x))) else x for x in v.tolist()]

        return {
            "kind": "ProfileDrift",
            "config": asdict(self.config),
            "part": self.part,
            "profile": self.profile.to_payload().hex(),
            "current": {n: enc(v) for n, v in self._cur.items()},
            "rows": self._rows,
            "notes": list(self._notes),
            "report": self._report.to_dict(),
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ProfileDrift:
        cfg = state["config"]
        config = FeatureDriftConfig(**{**cfg, "categorical_features": tuple(cfg["categorical_features"])})
        det = cls(Profile.from_payload(bytes.fromhex(state["profile"])), config, state["part"])
        det._cur = {n: det._coerce(n, np.array(v, dtype=object)) for n, v in state["current"].items()}
        det._rows = int(state["rows"])
        det._notes = list(state["notes"])
        det._report = DriftReport.from_dict(state["report"])
        return det

    @classmethod
    def conformance_cases(cls) -> tuple[ConformanceCase, ...]:
        def table(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, Array]:
            p = [0.7, 0.2, 0.1] if shift else [1 / 3] * 3
            return {
                "x": rng.normal(shift, 1.0, n),
                "y": rng.exponential(size=n),
                "c": rng.choice(list("abc"), n, p=p),
            }

        def make(numeric: Any, categorical: Any) -> Any:
            def build(rng: np.random.Generator) -> ProfileDrift:
                prof = build_profile(Frame(pd.DataFrame(table(rng, 400))), sample_size=50)
                config = FeatureDriftConfig(
                    numeric=numeric,
                    categorical=categorical,
                    n_permutations=100,
                    seed=int(rng.integers(2**31)),
                )
                return cls(prof, config)

            return build

        pairs = [
            ("ks", "chi2"),
            ("psi", "psi"),
            ("wasserstein", "hellinger"),
            ("jensen_shannon", "jensen_shannon"),
        ]
        return tuple(
            ConformanceCase(
                f"profile_drift[{a}/{b}]",
                make(a, b),
                lambda rng: table(rng, 150),
                lambda rng: table(rng, 150, 0.8),
                alpha=0.05,
                trials=30,
            )
            for a, b in pairs
        )
