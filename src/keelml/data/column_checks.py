"""Per-column checks of a validation run, accumulated batch by batch, and the Anomaly they report.

A :class:`ColumnCheck` sees one column of each batch: type against the schema, missing values,
numeric range, allowed values (checked on the distinct values of the batch, weighted by their
counts), numbers mixed with text, bytes that are not UTF-8, repeated ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keelml.data.digest import column_hashes
from keelml.data.profile import kind_of
from keelml.data.schema import ColumnSchema

Severity = Literal["blocking", "warning"]
_NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
MAX_EXAMPLES = 5


@dataclass(frozen=True, slots=True)
class Anomaly:
    kind: str
    severity: Severity
    column: str | None
    description: str
    expected: str = ""
    received: str = ""
    rows: int = 0
    examples: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "column": self.column,
            "description": self.description,
            "expected": self.expected,
            "received": self.received,
            "rows": self.rows,
            "examples": list(self.examples),
        }


def _severity(bad: int, total: int, tolerated: float) -> Severity:
    return "blocking" if total and bad / total > tolerated else "warning"


def _examples(values: pa.Array | pa.ChunkedArray) -> list[str]:
    return [str(v)[:60] for v in pc.unique(values).slice(0, MAX_EXAMPLES).to_pylist()]


class ColumnCheck:
    """Accumulates one column's checks over batches (private, mutable)."""

    def __init__(self, spec: ColumnSchema, dtype: pa.DataType) -> None:
        self.spec, self.dtype = spec, dtype
        actual = "binary" if pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype) else kind_of(dtype)
        expected = spec.kind
        if actual == "binary":
            self.mode = "binary"
        elif expected in ("numeric", "temporal") and actual in ("numeric", "temporal"):
            self.mode = "numeric"
        elif expected == "numeric" and actual == "categorical":
            self.mode = "parse"
        elif expected in ("categorical", "text", "boolean"):
            self.mode = "string"
        elif expected == "other":
            self.mode = "none"
        else:
            self.mode = "mismatch"
        self.rows = self.nulls = self.violations = self.non_numeric = self.numeric_like = 0
        self.invalid_utf8 = 0
        self.minimum, self.maximum = float("inf"), float("-inf")
        self.bad_values: list[str] = []
        self.non_numeric_values: list[str] = []
        self.invalid_rows: list[str] = []
        self.id_hashes: list[np.ndarray[Any, np.dtype[np.uint64]]] = []

    def add(self, values: pa.ChunkedArray, offset: int, hashes: dict[str, Any] | None = None) -> None:
        self.rows += len(values)
        self.nulls += values.null_count
        if self.spec.unique:
            known = hashes.get(self.spec.name) if hashes is not None else None
            self.id_hashes.append(known if known is not None else column_hashes(pa.table({"v": values}))["v"])
        if self.mode == "binary":
            values = self._decode(values, offset)
            if values is None:
                return
        if self.mode == "parse":
            matches = pc.match_substring_regex(values, _NUMBER)
            self.numeric_like += int(pc.sum(matches).as_py() or 0)
            bad = values.filter(pc.invert(matches))
            self.non_numeric += len(bad) - bad.null_count
            if len(self.non_numeric_values) < MAX_EXAMPLES:
                self.non_numeric_values += _examples(bad.drop_null())
            self._numeric(pc.cast(values.filter(matches), pa.float64()))
        elif self.mode == "numeric":
            numbers = values if kind_of(values.type) == "numeric" else pc.cast(values, pa.int64())
            self._numeric(pc.cast(numbers, pa.float64()))
        elif self.mode == "string":
            self._strings(pc.cast(values, pa.string()))

    def _decode(self, values: pa.ChunkedArray, offset: int) -> pa.ChunkedArray | None:
        """Count values that are not valid UTF-8; the rest continue as strings."""
        decoded: list[str | None] = []
        for i, raw in enumerate(values.to_pylist()):
            if raw is None:
                decoded.append(None)
                continue
            try:
                decoded.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                self.invalid_utf8 += 1
                decoded.append(None)
                if len(self.invalid_rows) < MAX_EXAMPLES:
                    self.invalid_rows.append(f"row {offset + i}: {raw[:40]!r}")
        if self.spec.kind in ("numeric", "temporal", "other"):
            return None
        return pa.chunked_array([pa.array(decoded, pa.string())])

    def _numeric(self, floats: pa.ChunkedArray | pa.Array) -> None:
        bounds = pc.min_max(floats)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is not None:
            self.minimum, self.maximum = min(self.minimum, low), max(self.maximum, high)
        lo, hi = self.spec.minimum, self.spec.maximum
        if lo is None and hi is None:
            return
        outside = pc.or_(
            pc.less(floats, lo if lo is not None else float("-inf")),
            pc.greater(floats, hi if hi is not None else float("inf")),
        )
        count = int(pc.sum(outside).as_py() or 0)
        if count:
            self.violations += count
            if len(self.bad_values) < MAX_EXAMPLES:
                self.bad_values += _examples(floats.filter(outside))

    def _strings(self, values: pa.ChunkedArray | pa.Array) -> None:
        if self.spec.kind != "categorical" and self.spec.allowed is None:
            return
        # checks run on the distinct values, weighted by their counts: categories repeat a lot
        counts = pc.value_counts(values.drop_null())
        distinct, weights = counts.field("values"), counts.field("counts")
        if self.spec.kind == "categorical":
            numeric = pc.match_substring_regex(distinct, _NUMBER)
            self.numeric_like += int(pc.sum(weights.filter(numeric)).as_py() or 0)
        if self.spec.allowed is None:
            return
        unknown = pc.invert(pc.is_in(distinct, value_set=pa.array(self.spec.allowed, pa.string())))
        count = int(pc.sum(weights.filter(unknown)).as_py() or 0)
        if count:
            self.violations += count
            if len(self.bad_values) < MAX_EXAMPLES:
                shown = [str(v)[:60] for v in distinct.filter(unknown).slice(0, MAX_EXAMPLES).to_pylist()]
                self.bad_values = list(dict.fromkeys(self.bad_values + shown))

    def anomalies(self) -> list[Anomaly]:
        s, name, out = self.spec, self.spec.name, []
        present = self.rows - self.nulls
        if self.mode == "mismatch":
            out.append(
                Anomaly(
                    "type_mismatch", "blocking", name, f"{name} has the wrong type", s.dtype, str(self.dtype)
                )
            )
        if self.invalid_utf8:
            out.append(
                Anomaly(
                    "invalid_utf8",
                    "blocking",
                    name,
                    f"{self.invalid_utf8:,} values of {name} are not valid UTF-8 text",
                    "UTF-8 text",
                    "bytes that do not decode",
                    self.invalid_utf8,
                    tuple(self.invalid_rows),
                )
            )
        if self.non_numeric:
            out.append(
                Anomaly(
                    "mixed_types",
                    "blocking",
                    name,
                    f"{self.non_numeric:,} values of numeric column {name} are not numbers",
                    "numbers",
                    f"{self.numeric_like:,} numbers and {self.non_numeric:,} other values",
                    self.non_numeric,
                    tuple(self.non_numeric_values[:MAX_EXAMPLES]),
                )
            )
        elif s.kind == "categorical" and self.mode == "string" and present:
            share = self.numeric_like / present
            if 0.5 <= share < 1.0:
                out.append(
                    Anomaly(
                        "mixed_types",
                        "warning",
                        name,
                        f"{name} mixes numbers ({share:.0%}) with other values: numbers stored as text?",
                        "one type per column",
                        f"{self.numeric_like:,} numbers, {present - self.numeric_like:,} other values",
                        present - self.numeric_like,
                    )
                )
        out += self._missing()
        if self.violations:
            what = "out of range" if self.mode in ("numeric", "parse") else "not among the allowed values"
            expected = (
                f"between {s.minimum:g} and {s.maximum:g}"
                if s.minimum is not None and s.maximum is not None
                else f"one of {', '.join(s.allowed or ())[:200]}"
            )
            out.append(
                Anomaly(
                    "out_of_range" if what.startswith("out") else "unexpected_values",
                    _severity(self.violations, present, s.max_violation_rate),
                    name,
                    f"{self.violations:,} values of {name} are {what} "
                    f"({self.violations / max(present, 1):.2%})",
                    expected,
                    ", ".join(self.bad_values[:MAX_EXAMPLES]),
                    self.violations,
                    tuple(self.bad_values[:MAX_EXAMPLES]),
                )
            )
        if s.unique and self.id_hashes:
            hashes = np.sort(np.concatenate(self.id_hashes))
            repeated = int(np.count_nonzero(hashes[1:] == hashes[:-1]))
            if repeated:
                out.append(
                    Anomaly(
                        "duplicate_ids",
                        "blocking",
                        name,
                        f"{repeated:,} repeated values in the id column {name}",
                        "each id once",
                        f"{repeated:,} repeats",
                        repeated,
                    )
                )
        return out

    def _missing(self) -> list[Anomaly]:
        s, name = self.spec, self.spec.name
        if self.rows and self.nulls == self.rows:
            return [
                Anomaly(
                    "all_missing",
                    "warning" if s.max_missing_rate >= 1.0 else "blocking",
                    name,
                    f"every value of {name} is missing",
                    f"at most {s.max_missing_rate:.1%} missing",
                    f"{self.rows:,} of {self.rows:,} missing",
                    self.rows,
                )
            ]
        rate = self.nulls / self.rows if self.rows else 0.0
        if rate > s.max_missing_rate:
            return [
                Anomaly(
                    "missing_values",
                    "blocking",
                    name,
                    f"{name} has {rate:.2%} missing values",
                    f"at most {s.max_missing_rate:.2%}",
                    f"{self.nulls:,} of {self.rows:,}",
                    self.nulls,
                )
            ]
        return []
