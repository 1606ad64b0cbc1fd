"""Small mergeable sketches, vectorised with numpy.

Each is computed per batch (or per partition) and merged, so a profile is one pass over the data
and a later comparison never rescans it. All are plain frozen values with a JSON round-trip.

- :class:`Moments`: count, mean, variance, min, max (Chan et al. parallel update, exact).
- :class:`QuantileSummary`: equal-weight order statistics; a single batch has rank error <= 1/(2m),
  each merge level adds at most 1/m.
- :class:`HyperLogLog`: distinct counts from 64-bit hashes, p=12 (about 1.6% standard error).
- :class:`TopValues`: the most frequent values with counts (exact per batch, top-k kept on merge).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Moments:
    count: int
    mean: float
    m2: float
    minimum: float
    maximum: float

    @staticmethod
    def empty() -> Moments:
        return Moments(0, 0.0, 0.0, float("inf"), float("-inf"))

    @staticmethod
    def of(count: int, mean: float, variance: float, minimum: float, maximum: float) -> Moments:
        return Moments(count, mean, variance * count, minimum, maximum)

    @staticmethod
    def of_values(values: FloatArray) -> Moments:
        """Exact moments of finite values (empty moments for none)."""
        if len(values) == 0:
            return Moments.empty()
        return Moments.of(
            len(values), float(values.mean()), float(values.var()), float(values.min()), float(values.max())
        )

    @property
    def std(self) -> float:
        return float(np.sqrt(self.m2 / self.count)) if self.count else float("nan")

    def merge(self, other: Moments) -> Moments:
        if other.count == 0:
            return self
        if self.count == 0:
            return other
        n = self.count + other.count
        delta = other.mean - self.mean
        mean = self.mean + delta * other.count / n
        m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / n
        return Moments(n, mean, m2, min(self.minimum, other.minimum), max(self.maximum, other.maximum))

    def to_json(self) -> dict[str, Any]:
        # JSON (and PostgreSQL's json type) has no infinities: an empty range is written as nulls.
        def finite(x: float) -> float | None:
            return x if np.isfinite(x) else None

        return {
            "count": self.count,
            "mean": finite(self.mean),
            "m2": finite(self.m2),
            "min": finite(self.minimum),
            "max": finite(self.maximum),
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Moments:
        def value(key: str, default: float) -> float:
            return default if data[key] is None else float(data[key])

        return Moments(
            int(data["count"]),
            value("mean", 0.0),
            value("m2", 0.0),
            value("min", float("inf")),
            value("max", float("-inf")),
        )


@dataclass(frozen=True, slots=True)
class QuantileSummary:
    """Weighted sorted points approximating a distribution.

    >>> s = QuantileSummary.of(np.arange(1000, dtype=float), size=100)
    >>> abs(s.quantile(0.5) - 500) <= 5  # rank error at most 1/(2 * size) of 1000 values
    True
    >>> merged = s.merge(QuantileSummary.of(np.arange(1000, 2000, dtype=float), size=100))
    >>> merged.count, abs(merged.quantile(0.5) - 1000) <= 20  # one merge level: error <= 1/size
    (2000, True)
    """

    points: tuple[float, ...]
    weights: tuple[float, ...]
    size: int = 200

    @staticmethod
    def of(values: FloatArray, size: int = 200) -> QuantileSummary:
        x = np.sort(values[np.isfinite(values)])
        n = len(x)
        if n <= size:
            return QuantileSummary(tuple(x.tolist()), (1.0,) * n, size)
        idx = ((np.arange(size) + 0.5) * n / size).astype(np.int64)
        return QuantileSummary(tuple(x[idx].tolist()), (n / size,) * size, size)

    @property
    def count(self) -> int:
        return round(sum(self.weights))

    def merge(self, other: QuantileSummary) -> QuantileSummary:
        points = np.asarray(self.points + other.points)
        weights = np.asarray(self.weights + other.weights)
        order = np.argsort(points, kind="stable")
        points, weights = points[order], weights[order]
        if len(points) <= self.size:
            return QuantileSummary(tuple(points.tolist()), tuple(weights.tolist()), self.size)
        total = weights.sum()
        targets = (np.arange(self.size) + 0.5) * total / self.size
        idx = np.searchsorted(np.cumsum(weights), targets)
        return QuantileSummary(
            tuple(points[np.minimum(idx, len(points) - 1)].tolist()),
            (float(total / self.size),) * self.size,
            self.size,
        )

    def quantile(self, q: float) -> float:
        if not self.points:
            return float("nan")
        cum = np.cumsum(self.weights)
        idx = int(np.searchsorted(cum, q * cum[-1]))
        return self.points[min(idx, len(self.points) - 1)]

    def cdf(self, x: FloatArray) -> FloatArray:
        """Estimated P(X <= x) for each x."""
        cum = np.cumsum(self.weights)
        idx = np.searchsorted(np.asarray(self.points), x, side="right")
        out = np.where(idx > 0, cum[np.maximum(idx - 1, 0)], 0.0)
        return np.asarray(out / cum[-1] if len(cum) else out, dtype=np.float64)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "points": list(self.points), "weights": list(self.weights)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> QuantileSummary:
        return QuantileSummary(tuple(data["points"]), tuple(data["weights"]), int(data["size"]))


_P = 12
_M = 1 << _P


def _sigma(x: float) -> float:
    if x == 1.0:
        return float("inf")
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = float(np.sqrt(x))
        previous = z
        y *= 0.5
        z -= (1.0 - x) ** 2 * y
        if z == previous:
            return z / 3.0


@dataclass(frozen=True, slots=True)
class HyperLogLog:
    """Distinct-count sketch over 64-bit hashes.

    >>> rng = np.random.default_rng(0)
    >>> h = HyperLogLog.of(rng.integers(0, 2**64, 50_000, dtype=np.uint64))
    >>> abs(h.estimate() - 50_000) / 50_000 < 0.05
    True
    """

    registers: bytes

    @staticmethod
    def empty() -> HyperLogLog:
        return HyperLogLog(bytes(_M))

    @staticmethod
    def of(hashes: npt.NDArray[np.uint64]) -> HyperLogLog:
        if len(hashes) == 0:
            return HyperLogLog.empty()
        idx = (hashes >> np.uint64(64 - _P)).astype(np.intp)
        # The 52 remaining bits, shifted below 2**53 so a float64 holds them exactly, with a guard
        # bit that bounds the rank; the float exponent then gives the leading-zero count.
        rest = ((hashes << np.uint64(_P)) >> np.uint64(_P - 1)) | np.uint64(1)
        rank = (66 - _P - np.frexp(rest.astype(np.float64))[1]).astype(np.uint8)
        registers = np.zeros(_M, dtype=np.uint8)
        np.maximum.at(registers, idx, rank)
        return HyperLogLog(registers.tobytes())

    def merge(self, other: HyperLogLog) -> HyperLogLog:
        a = np.frombuffer(self.registers, dtype=np.uint8)
        b = np.frombuffer(other.registers, dtype=np.uint8)
        return HyperLogLog(np.maximum(a, b).tobytes())

    def estimate(self) -> float:
        """Ertl's improved estimator (2017): unbiased over the whole range, no bias tables."""
        q = 64 - _P
        reg = np.frombuffer(self.registers, dtype=np.uint8)
        counts = np.bincount(reg, minlength=q + 2).astype(np.float64)
        z = _M * _tau(1.0 - counts[q + 1] / _M)
        for k in range(q, 0, -1):
            z = 0.5 * (z + counts[k])
        z += _M * _sigma(counts[0] / _M)
        return float(_M * _M / (2.0 * np.log(2.0)) / z) if np.isfinite(z) else 0.0

    def to_json(self) -> str:
        return base64.b64encode(self.registers).decode("ascii")

    @staticmethod
    def from_json(data: str) -> HyperLogLog:
        return HyperLogLog(base64.b64decode(data))


@dataclass(frozen=True, slots=True)
class TopValues:
    """Most frequent values; ``other`` counts the rows of values not kept.

    >>> merged = TopValues.of({"a": 3, "b": 1}, k=1).merge(TopValues.of({"b": 5}, k=1))
    >>> merged.counts, merged.other  # b's first count was dropped at k=1: approximate above k
    ((('b', 5),), 4)
    """

    counts: tuple[tuple[str, int], ...]
    other: int = 0
    k: int = 100

    @staticmethod
    def of(counts: dict[str, int], k: int = 100) -> TopValues:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        kept = tuple(ranked[:k])
        return TopValues(kept, sum(c for _, c in ranked[k:]), k)

    def merge(self, other: TopValues) -> TopValues:
        total: dict[str, int] = dict(self.counts)
        for value, count in other.counts:
            total[value] = total.get(value, 0) + count
        merged = TopValues.of(total, self.k)
        return TopValues(merged.counts, merged.other + self.other + other.other, self.k)

    def to_json(self) -> dict[str, Any]:
        return {"k": self.k, "other": self.other, "counts": [list(kv) for kv in self.counts]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> TopValues:
        return TopValues(
            tuple((str(v), int(c)) for v, c in data["counts"]), int(data["other"]), int(data["k"])
        )
