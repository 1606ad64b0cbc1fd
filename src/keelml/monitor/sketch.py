"""Mergeable per-column sketches: a KLL quantile sketch (Apache DataSketches) for numbers, exact counts for
categories, and the moments and missing counts of both.

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


def _kll(k: int) -> Any:
    from datasketches import kll_doubles_sketch  # type: ignore[import-untyped]

    return kll_doubles_sketch(k)


@dataclass
class NumericSketch:
    """Quantiles (KLL, rank error ``rank_error``), count, missing count, mean, variance, min, max."""

    k: int = 4000
    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0
    kll: Any = None

    @classmethod
    def empty(cls, k: int = 4000) -> NumericSketch:
        return cls(k=k, kll=_kll(k))

    def update(self, values: Array) -> None:
        v = np.asarray(values, dtype=float).ravel()
        finite = v[np.isfinite(v)]
        self.missing += int(len(v) - len(finite))
        if len(finite) == 0:
            return
        self._merge_moments(len(finite), float(finite.mean()), float(((finite - finite.mean()) ** 2).sum()))
        self.kll.update(finite)

    def _merge_moments(self, n: int, mean: float, m2: float) -> None:
        # Chan et al.'s parallel variance: exact under merging in any order
        total = self.count + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta**2 * self.count * n / total
        self.count = total

    def merge(self, other: NumericSketch) -> NumericSketch:
        out = NumericSketch(
            self.k,
            self.count,
            self.missing,
            self.mean,
            self.m2,
            type(self.kll).deserialize(self.kll.serialize()),
        )
        out.missing += other.missing
        if other.count:
            out._merge_moments(other.count, other.mean, other.m2)
            out.kll.merge(other.kll)
        return out

    @property
    def std(self) -> float:
        return math.sqrt(self.m2 / self.count) if self.count else float("nan")

    @property
    def rank_error(self) -> float:
        """Normalised rank error of the quantile sketch (0 while it still holds every value)."""
        return float(self.kll.normalized_rank_error(False)) if self.kll.is_estimation_mode() else 0.0

    def quantile(self, q: float) -> float:
        return float(self.kll.get_quantile(q)) if self.count else float("nan")

    def quantiles(self, qs: Array) -> Array:
        return np.asarray(self.kll.get_quantiles(list(map(float, qs))), dtype=float)

    def ecdf(self) -> tuple[Array, Array]:
        """The sketch's weighted items, sorted, and the reference CDF just after each of them."""
        cached = self.__dict__.get("_ecdf")
        if cached is not None and cached[0] == self.kll.n:
            return cached[1], cached[2]
        pairs = np.array(list(self.kll), dtype=float).reshape(-1, 2)
        order = np.argsort(pairs[:, 0], kind="stable")
        items, weights = pairs[order, 0], pairs[order, 1]
        cdf = np.cumsum(weights) / weights.sum()
        self.__dict__["_ecdf"] = (self.kll.n, items, cdf)
        return items, cdf

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
            "kll": base64.b64encode(bytes(self.kll.serialize())).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> NumericSketch:
        from datasketches import kll_doubles_sketch

        kll = kll_doubles_sketch.deserialize(base64.b64decode(data["kll"]))
        return cls(
            int(data["k"]),
            int(data["count"]),
            int(data["missing"]),
            float(data["mean"]),
            float(data["m2"]),
            kll,
        )


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
