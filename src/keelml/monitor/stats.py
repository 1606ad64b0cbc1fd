"""Two-sample statistics for one feature, each with a p-value.

Tests with a known null (KS, chi-squared) use scipy's p-value. Distances without one (PSI, Wasserstein,
Jensen-Shannon, Hellinger) are calibrated by a permutation test: the pooled sample is shuffled
``n_permutations`` times, and the p-value and the (1 - alpha) threshold come from that null. Binned
statistics bin on quantiles of the pooled sample, so the bins do not change under permutation and all
permutations are computed at once with ``bincount``.

>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=300), rng.normal(0.5, 1, size=300)
>>> r = numeric_test("ks", a, b, rng=rng)
>>> r.p_value < 0.01
True
>>> r = numeric_test("psi", a, a[::-1].copy(), rng=rng)
>>> r.p_value > 0.5
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

NumericTest = Literal["ks", "psi", "wasserstein", "jensen_shannon", "hellinger"]
CategoricalTest = Literal["chi2", "psi", "jensen_shannon", "hellinger"]
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class TestResult:
    statistic: float
    p_value: float
    threshold: float | None  # the calibrated (1 - alpha) null quantile, for permutation-calibrated tests


def _binned(stat: str, counts_ref: Array, counts_cur: Array) -> Array:
    """Distance between rows of two count matrices (shape (..., bins)); vectorised over permutations."""
    p = counts_ref / counts_ref.sum(axis=-1, keepdims=True)
    q = counts_cur / counts_cur.sum(axis=-1, keepdims=True)
    if stat == "psi":
        nb = counts_ref.shape[-1]  # Laplace smoothing keeps empty bins finite
        ps = (counts_ref + 0.5) / (counts_ref.sum(axis=-1, keepdims=True) + 0.5 * nb)
        qs = (counts_cur + 0.5) / (counts_cur.sum(axis=-1, keepdims=True) + 0.5 * nb)
        out: Array = np.sum((qs - ps) * np.log(qs / ps), axis=-1)
        return out
    if stat == "hellinger":
        out = np.sqrt(0.5 * np.sum((np.sqrt(p) - np.sqrt(q)) ** 2, axis=-1))
        return out
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum(axis=-1)
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum(axis=-1)
    out = np.sqrt(np.maximum(0.5 * (kl_p + kl_q), 0.0))  # JS distance, base 2, in [0, 1]
    return out


def _permuted_codes(
    codes: Array,
    n_ref: int,
    n_bins: int,
    stat: str,
    rng: np.random.Generator,
    n_permutations: int,
    alpha: float,
) -> TestResult:
    def counts(matrix: Array) -> tuple[Array, Array]:
        rows = matrix.shape[0]
        offset = (np.arange(rows) * n_bins)[:, None]
        ref = np.bincount((matrix[:, :n_ref] + offset).ravel(), minlength=rows * n_bins)
        cur = np.bincount((matrix[:, n_ref:] + offset).ravel(), minlength=rows * n_bins)
        return ref.reshape(rows, n_bins).astype(float), cur.reshape(rows, n_bins).astype(float)

    observed = float(_binned(stat, *counts(codes[None, :]))[0])
    perms = rng.permuted(np.broadcast_to(codes, (n_permutations, len(codes))), axis=1)
    null = _binned(stat, *counts(perms))
    return _calibrated(observed, null, alpha)


def _calibrated(observed: float, null: Array, alpha: float) -> TestResult:
    p = float((1 + np.count_nonzero(null >= observed - 1e-12)) / (1 + len(null)))
    return TestResult(observed, p, float(np.quantile(null, 1 - alpha)))


def numeric_test(
    test: NumericTest,
    reference: Array,
    current: Array,
    *,
    rng: np.random.Generator,
    n_permutations: int = 200,
    alpha: float = 0.05,
    bins: int = 10,
) -> TestResult:
    """Compare two finite 1-d float samples with ``test``."""
    from scipy import stats

    if test == "ks":
        res = stats.ks_2samp(reference, current)
        return TestResult(float(res.statistic), float(res.pvalue), None)
    if test == "wasserstein":
        scale = float(np.std(reference)) or 1.0  # in units of the reference's spread
        pooled = np.concatenate([reference, current]) / scale
        n = len(reference)
        observed = float(stats.wasserstein_distance(pooled[:n], pooled[n:]))
        perms = rng.permuted(np.broadcast_to(pooled, (n_permutations, len(pooled))), axis=1)
        # 1-d W1 between empirical samples of sizes n, m: integral of |F - G| over the pooled grid
        null = _wasserstein_rows(perms[:, :n], perms[:, n:])
        return _calibrated(observed, null, alpha)
    pooled = np.concatenate([reference, current])
    edges = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)[1:-1]))
    codes = np.searchsorted(edges, pooled, side="right")
    return _permuted_codes(codes, len(reference), len(edges) + 1, test, rng, n_permutations, alpha)


def _wasserstein_rows(a: Array, b: Array) -> Array:
    grid = np.sort(np.concatenate([a, b], axis=1), axis=1)
    a_s, b_s = np.sort(a, axis=1), np.sort(b, axis=1)
    deltas = np.diff(grid, axis=1)
    cdf_a = (
        np.stack([np.searchsorted(a_s[i], grid[i, :-1], side="right") for i in range(len(a))]) / a.shape[1]
    )
    cdf_b = (
        np.stack([np.searchsorted(b_s[i], grid[i, :-1], side="right") for i in range(len(b))]) / b.shape[1]
    )
    out: Array = np.sum(np.abs(cdf_a - cdf_b) * deltas, axis=1)
    return out


def categorical_test(
    test: CategoricalTest,
    reference: Array,
    current: Array,
    *,
    rng: np.random.Generator,
    n_permutations: int = 200,
    alpha: float = 0.05,
) -> TestResult:
    """Compare two samples of category labels (strings) with ``test``."""
    cats, codes = np.unique(np.concatenate([reference, current]).astype(str), return_inverse=True)
    n_ref = len(reference)
    if test == "chi2":
        from scipy import stats

        table = np.stack(
            [np.bincount(codes[:n_ref], minlength=len(cats)), np.bincount(codes[n_ref:], minlength=len(cats))]
        )
        if len(cats) < 2:
            return TestResult(0.0, 1.0, None)
        res = stats.chi2_contingency(table, correction=False)
        return TestResult(float(res.statistic), float(res.pvalue), None)
    return _permuted_codes(codes, n_ref, len(cats), test, rng, n_permutations, alpha)
