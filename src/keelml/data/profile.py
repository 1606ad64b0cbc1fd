"""Per-version profiles: computed once on write from mergeable sketches, stored in the catalog.

Later work (validation, drift baselines) reads the stored profile instead of rescanning the table;
profiles of batches or partitions merge into the profile of the whole.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keelml.data.sketches import HyperLogLog, Moments, QuantileSummary, TopValues

Kind = Literal["numeric", "categorical", "text", "boolean", "temporal", "other"]
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
_TEXT_MEAN_LENGTH = 40  # strings longer than this on average are treated as free text
_MAX_VALUE_CHARS = 120  # top values are cut to this length so a profile stays small
_TOP_MIN_DISTINCT = 1000  # top values are kept for columns with at most this many distinct values...
_TOP_MAX_SHARE = 0.05  # ...or at most this share of the rows


def kind_of(dtype: pa.DataType) -> Kind:
    if pa.types.is_boolean(dtype):
        return "boolean"
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
        return "numeric"
    if pa.types.is_temporal(dtype):
        return "temporal"
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_dictionary(dtype):
        return "categorical"
    return "other"


@dataclass(frozen=True, slots=True)
class ColumnProfile:
    name: str
    dtype: str
    kind: Kind
    rows: int
    nulls: int
    distinct: HyperLogLog
    moments: Moments | None = None  # numeric/temporal values; string lengths for text
    quantiles: QuantileSummary | None = None
    top: TopValues | None = None

    @property
    def missing_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def distinct_estimate(self) -> int:
        return min(round(self.distinct.estimate()), self.rows - self.nulls)

    def merge(self, other: ColumnProfile) -> ColumnProfile:
        def both(a: Any, b: Any) -> Any:
            return a.merge(b) if a is not None and b is not None else (a if a is not None else b)

        # Top values are tracked only where every part tracked them (low cardinality everywhere).
        top = self.top.merge(other.top) if self.top is not None and other.top is not None else None

        merged = replace(
            self,
            rows=self.rows + other.rows,
            nulls=self.nulls + other.nulls,
            distinct=self.distinct.merge(other.distinct),
            moments=both(self.moments, other.moments),
            quantiles=both(self.quantiles, other.quantiles),
            top=top,
        )
        if merged.kind in ("categorical", "text") and merged.moments and merged.moments.count:
            merged = replace(
                merged, kind="text" if merged.moments.mean > _TEXT_MEAN_LENGTH else "categorical"
            )
        return merged

    def summary(self) -> dict[str, Any]:
        """A readable digest of the profile (no sketch internals)."""
        out: dict[str, Any] = {
            "type": self.dtype,
            "kind": self.kind,
            "missing_rate": round(self.missing_rate, 6),
            "distinct": self.distinct_estimate,
        }
        if self.moments is not None and self.moments.count:
            key = "length" if self.kind in ("categorical", "text") else "stats"
            out[key] = {
                "min": self.moments.minimum,
                "max": self.moments.maximum,
                "mean": self.moments.mean,
                "std": self.moments.std,
            }
        if self.quantiles is not None and self.quantiles.points:
            out["quantiles"] = {str(q): self.quantiles.quantile(q) for q in QUANTILES}
        if self.top is not None:
            out["top"] = dict(self.top.counts[:10])
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dtype": self.dtype,
            "kind": self.kind,
            "rows": self.rows,
            "nulls": self.nulls,
            "distinct": self.distinct.to_json(),
            "moments": self.moments.to_json() if self.moments else None,
            "quantiles": self.quantiles.to_json() if self.quantiles else None,
            "top": self.top.to_json() if self.top else None,
        }

    @staticmethod
    def from_json(d: dict[str, Any]) -> ColumnProfile:
        return ColumnProfile(
            name=d["name"],
            dtype=d["dtype"],
            kind=d["kind"],
            rows=int(d["rows"]),
            nulls=int(d["nulls"]),
            distinct=HyperLogLog.from_json(d["distinct"]),
            moments=Moments.from_json(d["moments"]) if d["moments"] else None,
            quantiles=QuantileSummary.from_json(d["quantiles"]) if d["quantiles"] else None,
            top=TopValues.from_json(d["top"]) if d["top"] else None,
        )


@dataclass(frozen=True, slots=True)
class DatasetProfile:
    rows: int
    columns: tuple[ColumnProfile, ...]
    label: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def column(self, name: str) -> ColumnProfile:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def label_distribution(self) -> dict[str, int]:
        if self.label is None:
            return {}
        top = self.column(self.label).top
        return dict(top.counts) if top else {}

    def merge(self, other: DatasetProfile) -> DatasetProfile:
        theirs = {c.name: c for c in other.columns}
        cols = tuple(c.merge(theirs[c.name]) if c.name in theirs else c for c in self.columns)
        cols += tuple(c for c in other.columns if c.name not in {x.name for x in self.columns})
        return DatasetProfile(self.rows + other.rows, cols, self.label or other.label)

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "label": self.label, "columns": [c.to_json() for c in self.columns]}

    @staticmethod
    def from_json(d: dict[str, Any]) -> DatasetProfile:
        return DatasetProfile(
            int(d["rows"]), tuple(ColumnProfile.from_json(c) for c in d["columns"]), d["label"]
        )


def profile_batch(
    batch: pa.Table | pa.RecordBatch, hashes: dict[str, np.ndarray], label: str | None = None
) -> DatasetProfile:
    """Profile one batch; ``hashes`` are the per-column value hashes from :mod:`keelml.data.digest`."""
    cols = tuple(
        _profile_column(name, batch.column(name), hashes[name], is_label=(name == label))
        for name in batch.column_names
    )
    return DatasetProfile(batch.num_rows, cols, label)


def _profile_column(
    name: str, values: pa.Array | pa.ChunkedArray, hashes: np.ndarray, is_label: bool
) -> ColumnProfile:
    kind = kind_of(values.type)
    nulls = values.null_count
    valid = values.is_valid()
    distinct = HyperLogLog.of(hashes[np.asarray(valid)] if nulls else hashes)
    base = ColumnProfile(name, str(values.type), kind, len(values), nulls, distinct)
    # Counting values of a near-unique column (ids, free text) costs much and says nothing.
    few = is_label or distinct.estimate() <= max(_TOP_MIN_DISTINCT, _TOP_MAX_SHARE * len(values))
    if kind == "numeric" or kind == "temporal":
        if kind == "numeric":
            numbers = values
        elif pa.types.is_date(values.type):  # days -> microseconds, like timestamps
            numbers = pc.cast(pc.cast(values, pa.timestamp("us")), pa.int64())
        else:
            numbers = pc.cast(values, pa.int64())
        floats = np.asarray(pc.cast(numbers, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        finite = floats[np.isfinite(floats)]
        moments = Moments.of_values(finite)
        top = _top(values) if few and (is_label or pa.types.is_integer(values.type)) else None
        return replace(base, moments=moments, quantiles=QuantileSummary.of(finite), top=top)
    if kind == "categorical":
        lengths = np.asarray(
            pc.utf8_length(pc.cast(values, pa.string())).to_numpy(zero_copy_only=False), dtype=float
        )
        moments = Moments.of_values(lengths[~np.isnan(lengths)])
        text = bool(moments.count and moments.mean > _TEXT_MEAN_LENGTH)
        top = _top(values) if few else None
        return replace(base, kind="text" if text else "categorical", moments=moments, top=top)
    if kind == "boolean":
        return replace(base, top=_top(values))
    return base


def _top(values: pa.Array | pa.ChunkedArray, k: int = 100) -> TopValues:
    counts = pc.value_counts(values.drop_null())
    if len(counts) > k:
        counts = counts.take(
            pc.select_k_unstable(counts.field("counts"), k, sort_keys=[("counts", "descending")])
        )
        total = len(values) - values.null_count
    else:
        total = None
    pairs = zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True)
    kept: dict[str, int] = {}
    for value, count in pairs:  # long texts are cut so a profile stays small
        key = str(value)[:_MAX_VALUE_CHARS]
        kept[key] = kept.get(key, 0) + int(count)
    other = (total - sum(kept.values())) if total is not None else 0
    return TopValues(TopValues.of(kept, k).counts, other, k)
