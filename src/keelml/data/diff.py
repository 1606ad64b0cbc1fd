"""Differences between two versions of a dataset, in time proportional to the change.

Delta versions share every data file they have in common; only files present in one version and
not the other can hold differing rows, so only those are read. With an id column, rows are matched
by id (added / removed / changed); without one, rows are compared as a multiset of row hashes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from keelml.core.catalog import VersionRecord
from keelml.core.refs import DatasetRef
from keelml.data import delta
from keelml.data.digest import column_hashes, row_hashes

SAMPLE = 20


@dataclass(frozen=True, slots=True)
class SchemaChange:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    retyped: tuple[tuple[str, str, str], ...]  # (column, old type, new type)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.retyped)


@dataclass(frozen=True, slots=True)
class DatasetDiff:
    a: DatasetRef
    b: DatasetRef
    matched_by: str  # the id column, or "content"
    added: int
    removed: int
    changed: int
    schema: SchemaChange
    sample_added: tuple[Any, ...]
    sample_removed: tuple[Any, ...]
    sample_changed: tuple[Any, ...]
    files_read: int

    @property
    def identical(self) -> bool:
        return self.a.digest == self.b.digest

    def to_json(self) -> dict[str, Any]:
        return {
            "a": str(self.a),
            "b": str(self.b),
            "matched_by": self.matched_by,
            "rows": {"added": self.added, "removed": self.removed, "changed": self.changed},
            "schema": {
                "added": list(self.schema.added),
                "removed": list(self.schema.removed),
                "retyped": [list(r) for r in self.schema.retyped],
            },
            "sample": {
                "added": list(self.sample_added),
                "removed": list(self.sample_removed),
                "changed": list(self.sample_changed),
            },
            "files_read": self.files_read,
        }


def schema_change(a: dict[str, str], b: dict[str, str]) -> SchemaChange:
    return SchemaChange(
        added=tuple(sorted(set(b) - set(a))),
        removed=tuple(sorted(set(a) - set(b))),
        retyped=tuple(sorted((c, a[c], b[c]) for c in set(a) & set(b) if a[c] != b[c])),
    )


def diff_versions(uri: str, a: VersionRecord, b: VersionRecord, id_column: str | None) -> DatasetDiff:
    ref_a = DatasetRef(a.dataset, a.version, a.digest)
    ref_b = DatasetRef(b.dataset, b.version, b.digest)
    schema = schema_change(a.schema, b.schema)
    files_a, files_b = delta.files(uri, a.delta_version), delta.files(uri, b.delta_version)
    only_a, only_b = files_a - files_b, files_b - files_a
    common = sorted(set(a.schema) & set(b.schema) - {c for c, _, _ in schema.retyped})
    rows_a = delta.read_files(uri, only_a, columns=common)
    rows_b = delta.read_files(uri, only_b, columns=common)
    files_read = len(only_a) + len(only_b)
    if id_column is not None and id_column in common:
        counts, samples = _by_id(rows_a, rows_b, id_column, common)
        matched = id_column
    else:
        counts, samples = _by_content(rows_a, rows_b)
        matched = "content"
    return DatasetDiff(ref_a, ref_b, matched, *counts, schema, *samples, files_read=files_read)


def _row_hashes(rows: pa.Table | None, exclude: str | None = None) -> np.ndarray:
    if rows is None or rows.num_rows == 0:
        return np.zeros(0, dtype=np.uint64)
    keep = [c for c in rows.column_names if c != exclude]
    return row_hashes(column_hashes(rows.select(keep)), rows.num_rows)


def _by_id(
    rows_a: pa.Table | None, rows_b: pa.Table | None, id_column: str, columns: list[str]
) -> tuple[tuple[int, int, int], tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]]:
    empty = pa.table({c: pa.array([], type=pa.string()) for c in columns})
    left = (rows_a if rows_a is not None else empty).append_column(
        "__h", pa.array(_row_hashes(rows_a, id_column))
    )
    right = (rows_b if rows_b is not None else empty).append_column(
        "__h", pa.array(_row_hashes(rows_b, id_column))
    )
    left, right = left.select([id_column, "__h"]), right.select([id_column, "__h"])
    con = duckdb.connect()
    try:
        con.register("l", left)
        con.register("r", right)
        q = f'"{id_column}"'
        added = con.sql(f"SELECT r.{q} FROM r ANTI JOIN l USING ({q}) ORDER BY 1").fetchall()
        removed = con.sql(f"SELECT l.{q} FROM l ANTI JOIN r USING ({q}) ORDER BY 1").fetchall()
        changed = con.sql(
            f"SELECT l.{q} FROM l JOIN r USING ({q}) WHERE l.__h <> r.__h ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    counts = (len(added), len(removed), len(changed))
    samples = tuple(tuple(_plain(r[0]) for r in rows[:SAMPLE]) for rows in (added, removed, changed))
    return counts, (samples[0], samples[1], samples[2])


def _by_content(
    rows_a: pa.Table | None, rows_b: pa.Table | None
) -> tuple[tuple[int, int, int], tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]]:
    ca = Counter(_row_hashes(rows_a).tolist())
    cb = Counter(_row_hashes(rows_b).tolist())
    added = sum((cb - ca).values())
    removed = sum((ca - cb).values())
    return (added, removed, 0), ((), (), ())


def _plain(value: Any) -> Any:
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)
