"""Distribution distance between two stored column profiles, with a p-value (no rescan).

Numeric and temporal columns: the Kolmogorov-Smirnov distance between the two quantile summaries,
with the asymptotic Kolmogorov p-value. Categorical columns (and labels): the L-infinity distance
between the value shares (as TFX does), with a chi-square test of homogeneity on the counts
(Wilson-Hilferty p-value). A column drifts when the distance exceeds the schema's ``max_drift``
*and* the p-value is below ``ALPHA``: big samples make tiny distances significant, small ones make
big distances noise.

>>> import numpy as np
>>> from keelml.data.sketches import QuantileSummary
>>> a = QuantileSummary.of(np.arange(1000.0)); b = QuantileSummary.of(np.arange(500.0, 1500.0))
>>> round(ks_distance(a, b), 2)
0.5
>>> kolmogorov_p(0.5, 1000, 1000) < 1e-6
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from keelml.data.profile import ColumnProfile
from keelml.data.sketches import QuantileSummary

ALPHA = 0.01


@dataclass(frozen=True, slots=True)
class Drift:
    column: str
    method: str  # "ks" or "linf"
    distance: float
    p_value: float

    def drifted(self, max_distance: float, alpha: float = ALPHA) -> bool:
        return self.distance > max_distance and self.p_value < alpha


def ks_distance(a: QuantileSummary, b: QuantileSummary) -> float:
    if not a.points or not b.points:
        return 0.0
    grid = np.union1d(np.asarray(a.points), np.asarray(b.points))
    return float(np.max(np.abs(a.cdf(grid) - b.cdf(grid))))


def kolmogorov_p(distance: float, n: int, m: int) -> float:
    """Asymptotic two-sample KS p-value (Stephens' correction)."""
    if n == 0 or m == 0 or distance <= 0:
        return 1.0
    ne = n * m / (n + m)
    lam = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * distance
    if lam < 0.2:
        return 1.0
    total = sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return float(min(1.0, max(0.0, 2 * total)))


def _shares(col: ColumnProfile) -> dict[str, int]:
    assert col.top is not None
    counts = dict(col.top.counts)
    if col.top.other:
        counts["\x00other"] = col.top.other
    return counts


def column_drift(reference: ColumnProfile, target: ColumnProfile) -> Drift | None:
    """The drift of one column, or None when the profiles cannot be compared."""
    if reference.top is not None and target.top is not None and reference.kind != "numeric":
        return _categorical(reference, target)
    if reference.quantiles is not None and target.quantiles is not None:
        distance = ks_distance(reference.quantiles, target.quantiles)
        p = kolmogorov_p(distance, reference.quantiles.count, target.quantiles.count)
        return Drift(reference.name, "ks", distance, p)
    if reference.top is not None and target.top is not None:
        return _categorical(reference, target)
    return None


def chi2_sf(stat: float, dof: int) -> float:
    """P(X >= stat) for X ~ chi-square(dof), by the Wilson-Hilferty cube-root normal approximation
    (absolute error below 0.01 for dof >= 1 in the tail that matters; no scipy import on this path).

    >>> round(chi2_sf(3.841, 1), 2), round(chi2_sf(18.307, 10), 3)
    (0.05, 0.05)
    """
    if dof <= 0 or stat <= 0:
        return 1.0
    k = float(dof)
    z = ((stat / k) ** (1 / 3) - (1 - 2 / (9 * k))) / math.sqrt(2 / (9 * k))
    return 0.5 * math.erfc(z / math.sqrt(2))


def _categorical(reference: ColumnProfile, target: ColumnProfile) -> Drift | None:
    a, b = _shares(reference), _shares(target)
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return None
    keys = sorted(set(a) | set(b))
    pa_, pb_ = np.array([a.get(k, 0) for k in keys], float), np.array([b.get(k, 0) for k in keys], float)
    distance = float(np.max(np.abs(pa_ / na - pb_ / nb)))
    pooled = (pa_ + pb_) / (na + nb)
    keep = pooled > 0
    expected_a, expected_b = pooled[keep] * na, pooled[keep] * nb
    stat = float(
        np.sum((pa_[keep] - expected_a) ** 2 / expected_a)
        + np.sum((pb_[keep] - expected_b) ** 2 / expected_b)
    )
    dof = int(keep.sum()) - 1
    p = chi2_sf(stat, dof)
    return Drift(reference.name, "linf", distance, p)
