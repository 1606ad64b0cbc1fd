"""Fidelity and privacy metrics for synthetic rows (SDMetrics-style definitions, our own code).

Fidelity
- column shape: numbers 1 - KS statistic (KSComplement), categories 1 - total variation distance
  (TVComplement); missing values count as a category / are dropped from the KS test.
- pair trend: two numbers 1 - |pearson_real - pearson_synthetic| / 2 (CorrelationSimilarity);
  otherwise 1 - TVD of the two-way contingency tables, numbers cut into ``BINS`` equal-width bins of
  the real range (ContingencySimilarity).
- quality score: the mean of the mean column shape and the mean pair trend.
- detection: cross-validated AUC of a logistic regression telling synthetic from real rows;
  score 1 - (2 * max(AUC, 0.5) - 1) (1 is indistinguishable).

Privacy (on an encoding of the rows: standardised numbers, one-hot categories, or TF-IDF text)
- DCR: distance from each synthetic row to the closest real training row; the share of synthetic
  rows closer to a training row than to a holdout row (equal sizes; 0.5 is ideal, 1 copies training).
- membership inference: an attacker scores each candidate by minus its distance to the closest
  synthetic row; AUC of telling the training rows (members) from holdout rows (0.5 is ideal).

>>> import pandas as pd
>>> from keelml.augment.columns import TableSpec
>>> real = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "c": ["a", "a", "b", "b"]})
>>> quality(real, real, TableSpec(("x",), ("c",), ())).score
1.0
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt
import pandas as pd

from keelml.augment.columns import TableSpec, category_strings

BINS = 10
DETECTION_FOLDS = 3
MAX_ROWS = 5000  # rows per side for the pairwise and detection metrics (sampled above that)


@dataclass(frozen=True, slots=True)
class Quality:
    shapes: dict[str, float]
    trends: dict[str, float]  # "a|b" -> similarity

    @property
    def shape_score(self) -> float:
        return float(np.mean(list(self.shapes.values()))) if self.shapes else 1.0

    @property
    def trend_score(self) -> float:
        return float(np.mean(list(self.trends.values()))) if self.trends else self.shape_score

    @property
    def score(self) -> float:
        return round((self.shape_score + self.trend_score) / 2, 6)


def _ks_complement(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    a, b = a[~np.isnan(a)], b[~np.isnan(b)]
    if len(a) == 0 or len(b) == 0:
        return 1.0 if len(a) == len(b) else 0.0
    grid = np.concatenate([a, b])
    cdf_a = np.searchsorted(np.sort(a), grid, side="right") / len(a)
    cdf_b = np.searchsorted(np.sort(b), grid, side="right") / len(b)
    return float(1 - np.max(np.abs(cdf_a - cdf_b)))


def _tv_complement(a: pd.Series, b: pd.Series) -> float:
    pa_ = a.value_counts(normalize=True, dropna=False)
    pb = b.value_counts(normalize=True, dropna=False)
    both = pa_.index.union(pb.index)
    return float(1 - 0.5 * np.abs(pa_.reindex(both, fill_value=0) - pb.reindex(both, fill_value=0)).sum())


def _binned(real: pd.Series, synth: pd.Series) -> tuple[pd.Series, pd.Series]:
    r = real.to_numpy(dtype=np.float64, na_value=np.nan)
    s = synth.to_numpy(dtype=np.float64, na_value=np.nan)
    low, high = np.nanmin(r) if np.isfinite(r).any() else 0.0, np.nanmax(r) if np.isfinite(r).any() else 1.0
    edges = np.linspace(low, high if high > low else low + 1, BINS + 1)[1:-1]

    def cut(v: npt.NDArray[np.float64]) -> pd.Series:
        return pd.Series(np.where(np.isnan(v), -1, np.searchsorted(edges, v, side="right")).astype(str))

    return cut(r), cut(s)


def _sample(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    return frame.sample(MAX_ROWS, random_state=seed) if len(frame) > MAX_ROWS else frame


def quality(real: pd.DataFrame, synthetic: pd.DataFrame, spec: TableSpec, *, seed: int = 0) -> Quality:
    real, synthetic = (
        _sample(real, seed).reset_index(drop=True),
        _sample(synthetic, seed).reset_index(drop=True),
    )
    numbers = {
        c: (real[c].to_numpy(np.float64, na_value=np.nan), synthetic[c].to_numpy(np.float64, na_value=np.nan))
        for c in spec.numeric
    }
    cats = {
        c: (category_strings(real[c]).fillna("\x00"), category_strings(synthetic[c]).fillna("\x00"))
        for c in spec.categorical
    }
    shapes = {c: _ks_complement(*numbers[c]) for c in spec.numeric}
    shapes.update({c: _tv_complement(*cats[c]) for c in spec.categorical})
    trends: dict[str, float] = {}
    for a, b in combinations(spec.columns, 2):
        if a in numbers and b in numbers:
            with np.errstate(invalid="ignore", divide="ignore"):
                r = pd.Series(numbers[a][0]).corr(pd.Series(numbers[b][0]))
                s = pd.Series(numbers[a][1]).corr(pd.Series(numbers[b][1]))
            r, s = (0.0 if np.isnan(v) else float(v) for v in (r, s))
            trends[f"{a}|{b}"] = 1 - abs(r - s) / 2
            continue
        ra, sa = cats[a] if a in cats else _binned(real[a], synthetic[a])
        rb, sb = cats[b] if b in cats else _binned(real[b], synthetic[b])
        trends[f"{a}|{b}"] = _tv_complement(
            ra.astype(str) + "|" + rb.astype(str), sa.astype(str) + "|" + sb.astype(str)
        )
    return Quality(shapes, trends)


@dataclass(frozen=True, slots=True)
class Detection:
    auc: float

    @property
    def score(self) -> float:
        return round(1 - (2 * max(self.auc, 0.5) - 1), 6)


def detection(
    real: npt.NDArray[np.float64], synthetic: npt.NDArray[np.float64], *, seed: int = 0
) -> Detection:
    """How well a logistic regression tells the encoded synthetic rows from the real ones."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import cross_val_predict

    rng = np.random.default_rng(seed)
    n = min(len(real), len(synthetic), MAX_ROWS)
    if n < DETECTION_FOLDS * 2:
        return Detection(0.5)
    x = np.vstack(
        [
            real[rng.choice(len(real), n, replace=False)],
            synthetic[rng.choice(len(synthetic), n, replace=False)],
        ]
    )
    y = np.r_[np.zeros(n), np.ones(n)]
    proba = cross_val_predict(
        LogisticRegression(max_iter=2000), x, y, cv=DETECTION_FOLDS, method="predict_proba"
    )[:, 1]
    return Detection(round(float(roc_auc_score(y, proba)), 6))


def _closest(reference: npt.NDArray[np.float64], queries: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    from sklearn.neighbors import NearestNeighbors

    index = NearestNeighbors(n_neighbors=1).fit(reference)
    return np.asarray(index.kneighbors(queries)[0][:, 0], dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Privacy:
    dcr_synthetic_median: float  # median distance, synthetic row -> closest training row
    dcr_holdout_median: float  # median distance, holdout row -> closest training row (the baseline)
    closer_to_training: float  # share of synthetic rows closer to training than to holdout (0.5 ideal)
    exact_copies: float  # share of synthetic rows identical to a training row
    membership_auc: float  # distance-based membership-inference attack (0.5 ideal)
    members: int  # training rows (and as many holdout rows) the attack scored


def privacy(
    train: npt.NDArray[np.float64],
    holdout: npt.NDArray[np.float64],
    synthetic: npt.NDArray[np.float64],
    *,
    seed: int = 0,
) -> Privacy:
    """DCR and membership inference with equal numbers of training and holdout rows."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(seed)
    n = min(len(train), len(holdout))
    members = train[rng.choice(len(train), n, replace=False)]
    others = holdout[rng.choice(len(holdout), n, replace=False)]
    to_train = _closest(members, synthetic)
    to_holdout = _closest(others, synthetic)
    closer = float(np.mean(to_train < to_holdout) + 0.5 * np.mean(to_train == to_holdout))
    holdout_to_train = _closest(train, others)
    attack = -_closest(synthetic, np.vstack([members, others]))
    auc = float(roc_auc_score(np.r_[np.ones(n), np.zeros(n)], attack))
    return Privacy(
        round(float(np.median(_closest(train, synthetic))), 6),
        round(float(np.median(holdout_to_train)), 6),
        round(closer, 6),
        round(float(np.mean(_closest(train, synthetic) < 1e-9)), 6),
        round(auc, 6),
        n,
    )
