"""Slice statistics of a version: counts, label balance, and representativeness versus a reference.

Representativeness compares a slice's share of the rows with its share in the reference version
(a two-proportion z-test gives the p-value); label balance compares the slice's label distribution
with the reference slice's (largest difference in class share).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from keelml.data.slices import Slice

ALPHA = 0.01


@dataclass(frozen=True, slots=True)
class SliceStats:
    name: str
    expression: str
    rows: int
    share: float
    labels: tuple[tuple[str, int], ...]  # label counts inside the slice
    reference_rows: int | None
    reference_share: float | None
    share_p_value: float | None  # is the share different from the reference's?
    label_shift: float | None  # largest change in a class's share within the slice

    @property
    def representation(self) -> float | None:
        """Share here divided by share in the reference (1.0 = as represented as before)."""
        if self.reference_share is None or self.reference_share == 0:
            return None
        return self.share / self.reference_share

    @property
    def flag(self) -> str:
        if self.rows == 0:
            return "empty"
        ratio = self.representation
        if ratio is not None and self.share_p_value is not None and self.share_p_value < ALPHA:
            if ratio < 0.5:
                return "under-represented"
            if ratio > 2.0:
                return "over-represented"
        if len(self.labels) == 1 and self.rows > 1:
            return "single class"
        return ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "expression": self.expression,
            "rows": self.rows,
            "share": round(self.share, 6),
            "labels": dict(self.labels),
            "reference_rows": self.reference_rows,
            "reference_share": None if self.reference_share is None else round(self.reference_share, 6),
            "representation": None if self.representation is None else round(self.representation, 4),
            "share_p_value": self.share_p_value,
            "label_shift": self.label_shift,
            "flag": self.flag,
        }


@dataclass(frozen=True, slots=True)
class SliceReport:
    target: str
    reference: str | None
    rows: int
    label: str | None
    slices: tuple[SliceStats, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "reference": self.reference,
            "rows": self.rows,
            "label": self.label,
            "slices": [s.to_json() for s in self.slices],
        }


@dataclass
class _Tally:
    rows: int = 0
    labels: dict[str, int] | None = None


def _count(
    batches: Iterable[pa.Table], slices: Sequence[Slice], label: str | None
) -> tuple[int, list[_Tally]]:
    total = 0
    tallies = [_Tally(labels={}) for _ in slices]
    for batch in batches:
        total += batch.num_rows
        for spec, tally in zip(slices, tallies, strict=True):
            mask = spec.mask(batch)
            tally.rows += int(pc.sum(mask).as_py() or 0)
            if label is not None and label in batch.column_names and tally.labels is not None:
                counts = pc.value_counts(pc.cast(batch.column(label).filter(mask), pa.string()))
                for value, n in zip(
                    counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
                ):
                    key = "(missing)" if value is None else str(value)
                    tally.labels[key] = tally.labels.get(key, 0) + int(n)
    return total, tallies


def _two_proportion_p(k1: int, n1: int, k2: int, n2: int) -> float:
    if not n1 or not n2:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0 if k1 / n1 == k2 / n2 else 0.0
    z = abs(k1 / n1 - k2 / n2) / se
    return math.erfc(z / math.sqrt(2))


def _shift(a: dict[str, int], b: dict[str, int]) -> float | None:
    na, nb = sum(a.values()), sum(b.values())
    if not na or not nb:
        return None
    return max(abs(a.get(k, 0) / na - b.get(k, 0) / nb) for k in set(a) | set(b))


def slice_report(
    batches: Iterable[pa.Table],
    slices: Sequence[Slice],
    *,
    target: str,
    label: str | None = None,
    reference: Iterable[pa.Table] | None = None,
    reference_name: str | None = None,
) -> SliceReport:
    """Count each slice in ``batches`` (and in ``reference``, when given) batch by batch."""
    total, tallies = _count(batches, slices, label)
    ref_total, ref_tallies = _count(reference, slices, label) if reference is not None else (0, [])
    stats = []
    for i, spec in enumerate(slices):
        tally = tallies[i]
        labels = tuple(sorted((tally.labels or {}).items(), key=lambda kv: (-kv[1], kv[0])))
        ref = ref_tallies[i] if ref_tallies else None
        stats.append(
            SliceStats(
                spec.name,
                spec.expression,
                tally.rows,
                tally.rows / total if total else 0.0,
                labels,
                ref.rows if ref else None,
                (ref.rows / ref_total if ref_total else 0.0) if ref else None,
                _two_proportion_p(tally.rows, total, ref.rows, ref_total) if ref else None,
                _shift(tally.labels or {}, ref.labels or {}) if ref and label else None,
            )
        )
    return SliceReport(target, reference_name, total, label, tuple(stats))
