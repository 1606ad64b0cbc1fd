"""Mergeable per-column sketches: a deterministic quantile summary for numbers (built from sorted batches),
exact counts for categories, and the moments and missing counts of both.

Each partition of a reference is sketched on its own and the sketches are merged, so a reference is read
once and a new window is compared with the merged sketch (its size does not grow with the reference).

>>> a, b = NumericSketch.empty(), NumericSketch.empty()
>>> a.update(np.array([1.0, 2.0, np.nan])); b.update(np.array([3.0, 4.0]))
>>> m = NumericSketch.from_json(a.merge(b).to_json())
>>> m.count, m.missing, m.mean, m.quantile(0.5)
(4, 1, 2.5, 3.0)
>>> c = CategoricalSketch.empty(); c.update(np.array(["x", "y", None, "x"], dtype=object))
>>> c.counts, c.missing
({'x': 2, 'y': 1}, 1)
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Array = np.ndarray[Any, Any]
OTHER = "__other__"


@dataclass
class NumericSketch:
    """Quantiles (a mergeable summary, rank error ``rank_error``), count, missing, mean, variance.

    The quantile summary is built from each sorted batch in one pass (numpy sort, no per-value updates):
    sorted values are cut into blocks of ``w`` consecutive ranks and each block is kept as its median with
    weight ``w``; merging concatenates the weighted items and, past ``4 k`` items, regroups them to about
    ``2 k``. Each step's worst-case error in the count of values <= x is known exactly and added to ``err``,
    so ``rank_error = err / count`` is a deterministic bound (not a probabilistic one, as KLL's is).
    """

    k: int = 4000
    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    items: Array = field(default_factory=lambda: np.zeros(0, dtype=float))
    weights: Array = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    err: int = 0

    @classmethod
    def empty(cls, k: int = 4000) -> NumericSketch:
        return cls(k=k)

    def update(self, values: Array) -> None:
        # np.sort copies (the input is not mutated) and puts -inf first and NaN after +inf, so the finite
        # values are one slice of it: no mask and no second copy
        v = np.sort(np.asarray(values, dtype=float).ravel())
        finite = v[np.searchsorted(v, -np.inf, side="right") : np.searchsorted(v, np.inf, side="left")]
        self.missing += int(len(v) - len(finite))
        if len(finite) == 0:
            return
        mean = float(finite.mean())
        centred = finite - mean
        # einsum, not `@`: a BLAS dot wakes the BLAS thread pool, slow on a loaded machine for one vector
        self._merge_moments(len(finite), mean, float(np.einsum("i,i->", centred, centred)))
        del centred
        items, weights, err = _blocks(finite, 2 * self.k)
        del finite, v
        self._absorb(items, weights, err)

    def _absorb(self, items: Array, weights: Array, err: int) -> None:
        both = np.concatenate([self.items, items])
        order = np.argsort(both, kind="stable")
        self.items = both[order]
        self.weights = np.concatenate([self.weights, weights])[order]
        self.err += err
        if len(self.items) > 4 * self.k:
            self.items, self.weights, added = _regroup(self.items, self.weights, 2 * self.k)
            self.err += added
        self.__dict__.pop("_ecdf", None)

    def _merge_moments(self, n: int, mean: float, m2: float) -> None:
        # Chan et al.'s parallel variance: exact under merging in any order
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    def merge(self, other: NumericSketch) -> NumericSketch:
        out = NumericSketch(
            self.k, self.count, self.missing, self.mean, self.m2, self.items, self.weights, self.err
        )
        out.missing += other.missing
        if other.count:
            out._merge_moments(other.count, other.mean, other.m2)
            out._absorb(other.items, other.weights, other.err)
        return out

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else float("nan")

    @property
    def rank_error(self) -> float:
        """Worst-case normalised rank error of the quantile summary (0 while it holds every value)."""
        return self.err / self.count if self.count else 0.0

    def quantile(self, q: float) -> float:
        return float(self.quantiles(np.array([q]))[0]) if self.count else float("nan")

    def quantiles(self, qs: Array) -> Array:
        items, cdf = self.ecdf()
        # the smallest item whose share of values <= it exceeds q (KLL's exclusive search)
        idx = np.minimum(np.searchsorted(cdf, np.asarray(qs, dtype=float), side="right"), len(items) - 1)
        out: Array = items[idx]
        return out

    def ecdf(self) -> tuple[Array, Array]:
        """The summary's weighted items, sorted, and the reference CDF just after each of them."""
        cached = self.__dict__.get("_ecdf")
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        cdf = np.cumsum(self.weights) / max(int(self.weights.sum()), 1)
        self.__dict__["_ecdf"] = (self.items, cdf)
        return self.items, cdf

    def cdf_at(self, points: Array) -> Array:
        """Reference CDF (share of values <= point) at each point."""
        items, cdf = self.ecdf()
        idx = np.searchsorted(items, points, side="right")
        out: Array = np.where(idx > 0, cdf[np.maximum(idx - 1, 0)], 0.0)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "k": self.k,
            "count": self.count,
            "missing": self.missing,
            "mean": self.mean,
            "m2": self.m2,
            "items": base64.b64encode(self.items.astype("<f8").tobytes()).decode("ascii"),
            "weights": base64.b64encode(self.weights.astype("<i8").tobytes()).decode("ascii"),
            "err": self.err,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NumericSketch:
        if "kll" in data:  # profiles stored before the summary replaced the KLL sketch
            items, weights, err = _from_kll(data["kll"], int(data["count"]))
        else:
            items = np.frombuffer(base64.b64decode(data["items"]), dtype="<f8").astype(float)
            weights = np.frombuffer(base64.b64decode(data["weights"]), dtype="<i8").astype(np.int64)
            err = int(data["err"])
        head = (
            int(data["k"]),
            int(data["count"]),
            int(data["missing"]),
            float(data["mean"]),
            float(data["m2"]),
        )
        return cls(*head, items, weights, err)


def _blocks(sorted_values: Array, size: int) -> tuple[Array, Array, int]:
    """At most ``size`` weighted items summarising sorted values, and the worst-case count error."""
    n = len(sorted_values)
    if n <= size:
        return sorted_values.copy(), np.ones(n, dtype=np.int64), 0
    w = -(-n // size)
    starts = np.arange(0, n, w)
    lengths = np.minimum(starts + w, n) - starts
    # a block's median: x below it misses at most (len-1)//2 block values, x at/above over-counts len//2
    return sorted_values[starts + (lengths - 1) // 2], lengths.astype(np.int64), int(w // 2)


def _regroup(items: Array, weights: Array, size: int) -> tuple[Array, Array, int]:
    """Group sorted weighted items into about ``size`` runs of similar weight, each kept as its median."""
    cum = np.cumsum(weights)
    before = cum - weights
    group = before * size // int(cum[-1])
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    totals = np.add.reduceat(weights, starts)
    base = np.repeat(before[starts], np.diff(np.r_[starts, len(items)]))
    within = before - base  # weight of the run before each item
    rep = np.searchsorted(cum, before[starts] + (totals + 1) // 2, side="left")  # weighted median
    # the run's estimate moves to its representative: the error is the weight on either side of it
    left = within[rep]
    right = totals - left - weights[rep]
    return items[rep], totals.astype(np.int64), int(np.max(np.maximum(left, right)))


def _from_kll(encoded: str, count: int) -> tuple[Array, Array, int]:
    from datasketches import kll_doubles_sketch  # type: ignore[import-untyped]

    kll = kll_doubles_sketch.deserialize(base64.b64decode(encoded))
    pairs = np.array(list(kll), dtype=float).reshape(-1, 2)
    order = np.argsort(pairs[:, 0], kind="stable")
    bound = kll.normalized_rank_error(False) if kll.is_estimation_mode() else 0.0
    return pairs[order, 0], pairs[order, 1].astype(np.int64), math.ceil(bound * count)


def _key(value: Any) -> str:
    # 1.0 and 1 are one category (a column read as float in one partition and int in another)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class CategoricalSketch:
    """Exact category counts (the ``max_categories`` most frequent; the rest pooled under ``__other__``)."""

    max_categories: int = 1000
    missing: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    @classmethod
    def empty(cls, max_categories: int = 1000) -> CategoricalSketch:
        return cls(max_categories=max_categories)

    @property
    def count(self) -> int:
        return sum(self.counts.values())

    def update(self, values: Any) -> None:
        import pandas as pd

        series = (
            values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object).ravel())
        )
        counts = series.value_counts(dropna=True)
        self.missing += int(len(series) - counts.sum())
        for c, k in zip(counts.index.tolist(), counts.tolist(), strict=True):
            key = _key(c)
            self.counts[key] = self.counts.get(key, 0) + int(k)
        self._cap()

    def _cap(self) -> None:
        if len(self.counts) <= self.max_categories:
            return
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        keep = dict(ranked[: self.max_categories - 1])
        keep[OTHER] = sum(n for _, n in ranked[self.max_categories - 1 :])
        self.counts = keep

    def merge(self, other: CategoricalSketch) -> CategoricalSketch:
        out = CategoricalSketch(self.max_categories, self.missing + other.missing, dict(self.counts))
        for c, n in other.counts.items():
            out.counts[c] = out.counts.get(c, 0) + n
        out._cap()
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "max_categories": self.max_categories,
            "missing": self.missing,
            "counts": dict(self.counts),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CategoricalSketch:
        counts = {str(k): int(v) for k, v in data["counts"].items()}
        return cls(int(data["max_categories"]), int(data["missing"]), counts)


ColumnSketch = NumericSketch | CategoricalSketch


def sketch_from_json(data: dict[str, Any]) -> ColumnSketch:
    if data["kind"] == "numeric":
        return NumericSketch.from_json(data)
    return CategoricalSketch.from_json(data)
