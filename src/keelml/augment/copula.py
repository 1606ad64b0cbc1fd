"""A Gaussian-copula synthesizer for mixed numeric / categorical tables, optionally differentially private.

Fit: each column becomes normal scores -- a number through its empirical CDF (mid-ranks), a category
through a random point of its frequency interval (categories ordered by frequency) -- and the
correlation of the scores is the copula. Numbers keep a grid of ``GRID`` quantiles, not the rows
themselves; a missing number is drawn at its observed rate. Sample: correlated normals, mapped back
through each marginal.

DP fit (``epsilon``): pure epsilon-DP for neighbouring tables that differ in one replaced row (the
row count is public). Half of the budget buys the marginals (a histogram per column with Laplace
noise, sensitivity 2), half the correlation (Kendall's tau-a per pair with Laplace noise, sensitivity
4/n, then rho = sin(pi tau / 2) and the nearest positive-definite correlation), as in DPCopula
(Li, Xiong and Jiang, 2014). Numeric bin bounds and the set of categories come from the data and
are not covered by the budget: give bounds you could have known without the data where that matters.

>>> import pandas as pd
>>> from keelml.augment.columns import TableSpec
>>> frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0] * 5, "c": ["a", "a", "b", "b"] * 5})
>>> model = GaussianCopula.fit(frame, TableSpec(("x",), ("c",), ()), seed=0)
>>> round(float(model.correlation[0, 1]), 2) > 0.5  # larger x goes with category b
True
>>> sorted(model.sample(50, seed=1)["c"].unique())
['a', 'b']
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt
import pandas as pd

from keelml.augment.columns import TableSpec, category_strings

GRID = 201  # quantiles kept per numeric column
DP_BINS = 32  # histogram bins per numeric column in a DP fit
SMALL_TAU_ROWS = 2000  # up to this many rows Kendall's tau is computed for all pairs at once
_EPS = 1e-6


def _ndtri(u: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    from scipy.special import ndtri

    return np.asarray(ndtri(np.clip(u, _EPS, 1 - _EPS)), dtype=np.float64)


def _ndtr(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    from scipy.special import ndtr

    return np.asarray(ndtr(z), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class NumericMarginal:
    name: str
    quantiles: npt.NDArray[np.float64]  # values at GRID evenly spaced probabilities
    missing: float
    integer: bool


@dataclass(frozen=True, slots=True)
class CategoricalMarginal:
    name: str
    categories: tuple[str | None, ...]  # most frequent first
    probabilities: npt.NDArray[np.float64]

    @property
    def edges(self) -> npt.NDArray[np.float64]:
        return np.concatenate([[0.0], np.cumsum(self.probabilities)])


def nearest_correlation(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The matrix with negative eigenvalues lifted and a unit diagonal (a valid correlation)."""
    sym = (matrix + matrix.T) / 2
    values, vectors = np.linalg.eigh(sym)
    fixed = vectors @ np.diag(np.maximum(values, 1e-6)) @ vectors.T
    d = np.sqrt(np.diag(fixed))
    out = fixed / np.outer(d, d)
    np.fill_diagonal(out, 1.0)
    return np.asarray(out, dtype=np.float64)


def _laplace(rng: np.random.Generator, scale: float, size: int | tuple[int, ...]) -> npt.NDArray[np.float64]:
    return np.asarray(rng.laplace(0.0, scale, size), dtype=np.float64)


def _numeric(
    name: str, values: npt.NDArray[np.float64], integer: bool, eps: float | None, rng: np.random.Generator
) -> tuple[NumericMarginal, npt.NDArray[np.float64]]:
    n = len(values)
    present = ~np.isnan(values)
    scores = np.zeros(n)
    if present.any():  # mid-rank normal scores; a missing number sits at the median (score 0)
        ranks = pd.Series(values[present]).rank(method="average").to_numpy()
        scores[present] = _ndtri((ranks - 0.5) / present.sum())
    grid = np.linspace(0.0, 1.0, GRID)
    if eps is None:
        quantiles = np.quantile(values[present], grid) if present.any() else np.zeros(GRID)
        return NumericMarginal(name, quantiles, float(1 - present.mean()), integer), scores
    low, high = (float(values[present].min()), float(values[present].max())) if present.any() else (0.0, 1.0)
    edges = np.linspace(low, high if high > low else low + 1.0, DP_BINS + 1)
    counts = np.histogram(values[present], bins=edges)[0].astype(np.float64)
    noisy = np.maximum(np.append(counts, n - present.sum()) + _laplace(rng, 2.0 / eps, DP_BINS + 1), 0.0)
    missing = float(noisy[-1] / noisy.sum()) if noisy.sum() > 0 else 0.0
    mass = noisy[:-1] if noisy[:-1].sum() > 0 else np.ones(DP_BINS)
    cdf = np.concatenate([[0.0], np.cumsum(mass) / mass.sum()])
    quantiles = np.interp(grid, cdf, edges)  # inverse of the piecewise-linear noisy CDF
    return NumericMarginal(name, quantiles, missing, integer), scores


def _categorical(
    name: str, values: pd.Series, eps: float | None, rng: np.random.Generator
) -> tuple[CategoricalMarginal, npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """The marginal, each row's category index, and the category intervals of the true frequencies."""
    text = category_strings(values)
    counts = text.fillna("\x00missing").value_counts()
    names = [None if v == "\x00missing" else str(v) for v in counts.index]
    mass = np.asarray(counts.to_numpy(), dtype=np.float64)
    true_share = mass / mass.sum()
    if eps is not None:
        mass = np.maximum(mass + _laplace(rng, 2.0 / eps, len(mass)), 0.0)
        if mass.sum() == 0:
            mass = np.ones(len(mass))
    marginal = CategoricalMarginal(name, tuple(names), mass / mass.sum())
    # scores come from the true frequencies: the noisy ones only shape the sampled marginal
    position = {v: i for i, v in enumerate(counts.index)}
    index = np.array([position[v] for v in text.fillna("\x00missing")], dtype=np.int64)
    return marginal, index, np.concatenate([[0.0], np.cumsum(true_share)])


def _category_scores(
    index: npt.NDArray[np.int64],
    edges: npt.NDArray[np.float64],
    numeric: npt.NDArray[np.float64] | None,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Normal scores of a category: a point of its interval per row.

    Uniform points weaken the correlations the copula sees (a category is a coarse view of its
    latent score). With numeric scores at hand (not in a DP fit: the order would depend on every
    row), rows are placed in their interval in the order of their predicted latent score plus
    residual noise, which keeps the dependence on the numbers.
    """
    low, width = edges[index], edges[index + 1] - edges[index]
    if numeric is None or numeric.shape[1] == 0:
        return _ndtri(low + rng.uniform(0.0, 1.0, len(index)) * width)
    middle = _ndtri(low + width / 2)
    design = np.column_stack([numeric, np.ones(len(index))])
    weights = np.linalg.lstsq(design, middle, rcond=None)[0]
    fitted = design @ weights
    key = fitted + rng.normal(0.0, float(np.std(middle - fitted)) or 1e-9, len(index))
    u = np.empty(len(index))
    for category in np.unique(index):
        rows = np.flatnonzero(index == category)
        ranks = np.argsort(np.argsort(key[rows], kind="stable"), kind="stable")
        u[rows] = low[rows] + (ranks + 0.5) / len(rows) * width[rows]
    return _ndtri(u)


def kendall_tau_a(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Kendall's tau-a of every pair of columns: (concordant - discordant) / all row pairs.

    Small tables: sign products of all row pairs at once; larger ones: scipy's O(n log n) tau-b
    per pair, turned into tau-a with the tie counts.

    >>> x = np.array([[1.0, 2.0, 3.0], [2.0, 1.0, 1.0], [3.0, 0.0, 2.0]])
    >>> kendall_tau_a(x).round(3).tolist()
    [[1.0, -1.0, -0.333], [-1.0, 1.0, 0.333], [-0.333, 0.333, 1.0]]
    """
    n, d = scores.shape
    pairs_total = max(n * (n - 1) / 2, 1.0)
    if n > SMALL_TAU_ROWS:
        from scipy.stats import kendalltau

        tied = [
            float(sum(c * (c - 1) / 2 for c in np.unique(scores[:, k], return_counts=True)[1]))
            for k in range(d)
        ]
        out = np.eye(d)
        for i, j in combinations(range(d), 2):
            tau_b = kendalltau(scores[:, i], scores[:, j]).statistic
            scale = np.sqrt((pairs_total - tied[i]) * (pairs_total - tied[j])) / pairs_total
            out[i, j] = out[j, i] = 0.0 if np.isnan(tau_b) else float(tau_b) * scale
        return out
    total = np.zeros((d, d))
    for start in range(0, n, 64):  # 64 rows against every row after them: 64 * n * d signs at a time
        rows = scores[start : start + 64]
        signs = np.sign(rows[:, None, :] - scores[None, :, :])
        signs *= (np.arange(n)[None, :] > np.arange(start, start + len(rows))[:, None])[:, :, None]
        flat = signs.reshape(-1, d)
        total += flat.T @ flat
    out = np.asarray(total / pairs_total, dtype=np.float64)
    np.fill_diagonal(out, 1.0)
    return out


def _dp_correlation(
    scores: npt.NDArray[np.float64], eps: float, rng: np.random.Generator
) -> npt.NDArray[np.float64]:
    """Noisy tau-a per pair (replacing one row moves at most n - 1 row pairs: sensitivity 4 / n)."""
    n, d = scores.shape
    pairs = list(combinations(range(d), 2))
    tau = kendall_tau_a(scores)
    out = np.eye(d)
    scale = 4.0 / (n * (eps / max(len(pairs), 1)))
    for i, j in pairs:
        noisy = float(np.clip(tau[i, j] + rng.laplace(0.0, scale), -1.0, 1.0))
        out[i, j] = out[j, i] = np.sin(np.pi * noisy / 2)
    return out


@dataclass(frozen=True, slots=True)
class GaussianCopula:
    spec: TableSpec
    numeric: tuple[NumericMarginal, ...]
    categorical: tuple[CategoricalMarginal, ...]
    correlation: npt.NDArray[np.float64]
    rows: int  # rows the model was fitted on
    epsilon: float | None  # None: not a DP fit

    @classmethod
    def fit(
        cls, frame: pd.DataFrame, spec: TableSpec, *, seed: int = 0, epsilon: float | None = None
    ) -> GaussianCopula:
        rng = np.random.default_rng(seed)
        d = len(spec.columns)
        per_column = None if epsilon is None else (epsilon / 2 if d > 1 else epsilon) / max(d, 1)
        numeric, categorical, scores = [], [], []
        for name in spec.numeric:
            values = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
            marginal, z = _numeric(name, values, name in spec.integers, per_column, rng)
            numeric.append(marginal)
            scores.append(z)
        numbers = np.column_stack(scores) if scores and epsilon is None else None
        for name in spec.categorical:
            cmarginal, index, edges = _categorical(name, frame[name], per_column, rng)
            categorical.append(cmarginal)
            scores.append(_category_scores(index, edges, numbers, rng))
        matrix = np.column_stack(scores) if scores else np.zeros((len(frame), 0))
        if d < 2:
            correlation = np.eye(d)
        elif epsilon is not None:
            correlation = _dp_correlation(matrix, epsilon / 2, rng)
        else:
            with np.errstate(invalid="ignore", divide="ignore"):
                correlation = np.asarray(np.nan_to_num(np.corrcoef(matrix, rowvar=False)), dtype=np.float64)
        return cls(
            spec, tuple(numeric), tuple(categorical), nearest_correlation(correlation), len(frame), epsilon
        )

    def sample(self, n: int, *, seed: int = 0) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        d = len(self.spec.columns)
        z = rng.standard_normal((n, d)) @ np.linalg.cholesky(self.correlation).T if d else np.zeros((n, 0))
        u = _ndtr(z)
        grid = np.linspace(0.0, 1.0, GRID)
        out: dict[str, object] = {}
        for i, m in enumerate(self.numeric):
            values = np.interp(u[:, i], grid, m.quantiles)
            if m.integer:
                values = np.round(values)
            values[rng.uniform(size=n) < m.missing] = np.nan
            out[m.name] = values
        for j, c in enumerate(self.categorical):
            k = len(self.numeric) + j
            index = np.clip(np.searchsorted(c.edges, u[:, k], side="right") - 1, 0, len(c.categories) - 1)
            out[c.name] = np.array(c.categories, dtype=object)[index]
        return pd.DataFrame(out, columns=list(self.spec.columns))
