"""Two-sample tests of a window column against a reference *sketch*, in time proportional to the window.

- KS: the sketch's weighted items are the reference ECDF; the statistic is the largest gap to the window's
  ECDF; the p-value is the two-sample Kolmogorov distribution at ``n m / (n + m)``. While the quantile
  summary still holds every value it is exact; after, its deterministic rank-error bound
  (``NumericSketch.rank_error``) is reported with the result.
- chi-squared: exact category counts against the window's counts.
- PSI, Jensen-Shannon, Hellinger, Wasserstein: on bins cut at reference quantiles. Their null is a
  parametric bootstrap: reference and window counts drawn from one multinomial (the pooled bin shares), so
  the p-value needs no reference rows.

>>> rng = np.random.default_rng(0)
>>> sk = NumericSketch.empty(); sk.update(rng.normal(size=5000))
>>> numeric_vs_sketch("ks", sk, rng.normal(size=400), rng=rng).p_value > 0.05
True
>>> numeric_vs_sketch("psi", sk, rng.normal(0.5, 1, size=400), rng=rng).p_value < 0.01
True
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

from keelml.monitor.sketch import CategoricalSketch, NumericSketch
from keelml.monitor.stats import _binned

Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Histogram:
    """Reference and window shares over the same bins (edges for numbers, labels for categories)."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]


@dataclass(frozen=True)
class SketchTest:
    statistic: float
    p_value: float
    histogram: Histogram
    rank_error: float = 0.0


def _ks_p(d: float, n: int, m: int) -> float:
    from scipy.stats import kstwo, kstwobign

    en = n * m / (n + m)
    if en > 5000:  # the limit law: within 1e-3 relative there, and kstwo.sf costs ~0.3 s at n = 1e5
        return float(kstwobign.sf(d * (en**0.5)))
    return float(kstwo.sf(d, max(1, round(en))))


def _wasserstein_rows(ref: Array, cur: Array, widths: Array) -> Array:
    # CDFs at the bin edges e_0..e_{m-1}, each times the gap to the next edge: the integral of |F - G|
    m = widths.shape[-1]
    p = np.cumsum(ref / ref.sum(axis=-1, keepdims=True), axis=-1)[..., :m]
    q = np.cumsum(cur / cur.sum(axis=-1, keepdims=True), axis=-1)[..., :m]
    out: Array = np.sum(np.abs(p - q) * widths, axis=-1)
    return out


def _stat(test: str, ref: Array, cur: Array, widths: Array | None) -> Array:
    if test == "wasserstein":
        assert widths is not None
        return _wasserstein_rows(ref, cur, widths)
    return _binned(test, ref, cur)


def _bootstrap(
    test: str,
    ref_counts: Array,
    cur_counts: Array,
    rng: np.random.Generator,
    n_sim: int,
    widths: Array | None = None,
) -> tuple[float, float]:
    observed = float(_stat(test, ref_counts[None, :], cur_counts[None, :], widths)[0])
    pooled = (ref_counts + cur_counts) / (ref_counts.sum() + cur_counts.sum())
    sim_ref = rng.multinomial(int(ref_counts.sum()), pooled, size=n_sim).astype(float)
    sim_cur = rng.multinomial(int(cur_counts.sum()), pooled, size=n_sim).astype(float)
    null = _stat(test, sim_ref, sim_cur, widths)
    return observed, float((1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + n_sim))


def numeric_vs_sketch(
    test: str,
    sketch: NumericSketch,
    values: Array,
    *,
    rng: np.random.Generator,
    n_sim: int = 500,
    bins: int = 10,
) -> SketchTest:
    """Test finite window ``values`` against a numeric sketch (which must hold at least one value)."""
    cur = np.sort(np.asarray(values, dtype=float))
    n_ref, n_cur = sketch.count, len(cur)
    hist_edges = np.unique(sketch.quantiles(np.linspace(0, 1, 11)[1:-1]))
    hist = _histogram(sketch, cur, hist_edges)
    if test == "ks":
        d = _ks_statistic(sketch, cur)
        return SketchTest(d, _ks_p(d, n_ref, n_cur), hist, sketch.rank_error)
    n_bins = 50 if test == "wasserstein" else bins
    edges = np.unique(sketch.quantiles(np.linspace(0, 1, n_bins + 1)[1:-1]))
    ref_counts = _ref_counts(sketch, edges)
    cur_counts = _sorted_counts(cur, edges)
    widths = None
    if test == "wasserstein":
        widths = np.diff(edges) / (sketch.std or 1.0)  # in units of the reference's spread
    stat, p = _bootstrap(test, ref_counts, cur_counts, rng, n_sim, widths)
    return SketchTest(stat, p, hist, sketch.rank_error)


def _ks_statistic(sketch: NumericSketch, cur: Array) -> float:
    """Largest gap between the reference and window ECDFs (``cur`` sorted), both right-continuous.

    The gap is checked at every summary item and at the last copy of each window value: the same points
    as searching the concatenation of both, but the window's own CDF there is its rank, so only the
    summary's few thousand items are searched in the window and the window's distinct values in the
    summary (sorted queries), not the whole concatenation in both.
    """
    items, cdf = sketch.ecdf()
    n_cur = len(cur)
    last = np.flatnonzero(np.r_[cur[1:] != cur[:-1], True])  # last index of each run of equal values
    pts = cur[last]
    idx = np.searchsorted(items, pts, side="right")
    f_ref_pts = np.where(idx > 0, cdf[np.maximum(idx - 1, 0)], 0.0)
    gap_cur = np.max(np.abs(f_ref_pts - (last + 1) / n_cur))
    own = np.searchsorted(items, items, side="right")
    f_ref_items = np.where(own > 0, cdf[np.maximum(own - 1, 0)], 0.0)
    f_cur_items = np.searchsorted(cur, items, side="right") / n_cur
    gap_items = np.max(np.abs(f_ref_items - f_cur_items)) if len(items) else 0.0
    return float(max(gap_cur, gap_items))


def _sorted_counts(cur: Array, edges: Array) -> Array:
    """Counts of sorted ``cur`` in the bins ``searchsorted(edges, x, side="right")`` puts them in.

    Bin j holds e_{j-1} <= x < e_j, so its count is #(x < e_j) - #(x < e_{j-1}): a search of the few edges
    in the window instead of the window in the edges.
    """
    below = np.searchsorted(cur, edges, side="left")
    out: Array = np.diff(np.concatenate([[0], below, [len(cur)]])).astype(float)
    return out


def _ref_counts(sketch: NumericSketch, edges: Array) -> Array:
    below = sketch.cdf_at(edges)  # share <= edge; bins are (e_{i-1}, e_i]
    shares = np.diff(np.concatenate([[0.0], below, [1.0]]))
    out: Array = np.round(np.maximum(shares, 0.0) * sketch.count)
    return out


def _histogram(sketch: NumericSketch, cur: Array, edges: Array) -> Histogram:
    ref = _ref_counts(sketch, edges)
    cnt = _sorted_counts(cur, edges)
    labels = ["all"]
    if len(edges):
        inner = [f"{a:.4g}..{b:.4g}" for a, b in itertools.pairwise(edges)]
        labels = [f"<= {edges[0]:.4g}", *inner, f"> {edges[-1]:.4g}"]
    return Histogram(
        tuple(labels),
        tuple((ref / max(ref.sum(), 1)).round(5).tolist()),
        tuple((cnt / max(cnt.sum(), 1)).round(5).tolist()),
    )


def categorical_vs_sketch(
    test: str,
    sketch: CategoricalSketch,
    values: Array,
    *,
    rng: np.random.Generator,
    n_sim: int = 500,
) -> tuple[SketchTest, list[str]]:
    """Test window category labels against counts; also returns the categories new to the reference."""
    import pandas as pd

    # count the objects, then their str: the same counts as counting str(value) (1 and "1" pool), without
    # a str copy of every value (and pandas' conversion of it to an Arrow string column)
    counts = pd.Series(np.asarray(values, dtype=object), dtype=object).value_counts(sort=False)
    cur_map: dict[str, int] = {}
    for value, n in zip(counts.index.tolist(), counts.tolist(), strict=True):
        key = str(value)
        cur_map[key] = cur_map.get(key, 0) + int(n)
    cur_map = dict(sorted(cur_map.items(), key=lambda kv: -kv[1]))  # most frequent first, as before
    names = list(dict.fromkeys([*sketch.counts, *cur_map]))
    ref = np.array([sketch.counts.get(c, 0) for c in names], dtype=float)
    cur = np.array([cur_map.get(c, 0) for c in names], dtype=float)
    new = [c for c in cur_map if c not in sketch.counts and "__other__" not in sketch.counts]
    top = np.argsort(-(ref + cur))[:30]
    hist = Histogram(
        tuple(names[i] for i in top),
        tuple((ref[top] / max(ref.sum(), 1)).round(5).tolist()),
        tuple((cur[top] / max(cur.sum(), 1)).round(5).tolist()),
    )
    if test == "chi2":
        from scipy.stats import chi2_contingency

        keep = (ref + cur) > 0
        if keep.sum() < 2:
            return SketchTest(0.0, 1.0, hist), new
        res = chi2_contingency(np.stack([ref[keep], cur[keep]]), correction=False)
        return SketchTest(float(res.statistic), float(res.pvalue), hist), new
    stat, p = _bootstrap(test, ref, cur, rng, n_sim)
    return SketchTest(stat, p, hist), new
