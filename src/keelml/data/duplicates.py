"""Duplicates, near-duplicates, conflicting labels, and leakage between two datasets.

Rows are compared by 64-bit hashes (DuckDB's, as for digests), computed batch by batch, so the
state kept is a few integers per row, never the rows themselves:

- exact duplicates: rows equal on every column but the id;
- near-duplicates: rows whose text, normalised (Unicode NFKC, lower case, punctuation dropped,
  whitespace collapsed), is equal while the raw text differs;
- conflicting labels: rows equal on every feature (exactly, or by normalised text) whose labels differ;
- leakage: rows of one dataset whose features (or normalised text, or id) appear in another.

>>> import pyarrow as pa
>>> t = pa.table({"text": ["Great food!", "great food", "bad"], "y": ["a", "b", "a"]})
>>> report = find_duplicates([t], label="y", text_columns=("text",))
>>> report.exact_rows, report.near[0].rows, report.near[0].conflicting_groups
(0, 1, 1)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from keelml.data.digest import column_hashes, row_hashes

U64 = npt.NDArray[np.uint64]
MAX_EXAMPLES = 5
Batches = Iterable[pa.Table | pa.RecordBatch]


def normalise_text(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Unicode NFKC, lower case, punctuation removed, whitespace collapsed and trimmed.

    >>> normalise_text(pa.array(["  Hello,   WORLD!! ", None])).to_pylist()
    ['hello world', None]
    """
    if pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type):  # not valid UTF-8
        raw = values.to_pylist()
        values = pa.array(
            [None if v is None else v.decode("utf-8", errors="replace") for v in raw], pa.string()
        )
    elif not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = pc.cast(values, pa.string())
    out = pc.utf8_lower(pc.utf8_normalize(values, form="NFKC"))
    out = pc.replace_substring_regex(out, pattern=r"[^\p{L}\p{N}\p{M}\s]+", replacement="")
    # runs of whitespace, and single tabs or newlines, become one space (cheaper than \s+ in RE2)
    out = pc.replace_substring_regex(out, pattern=r"\s\s+|[\t\n\r\f\v]", replacement=" ")
    return pc.utf8_trim_whitespace(out)


@dataclass(frozen=True, slots=True)
class DuplicateGroups:
    """Groups of rows that share a key (all features, or one column's normalised text)."""

    key: str  # "all columns but the id" or the text column's name
    groups: int  # keys held by more than one row
    rows: int  # rows beyond the first of each group (what dropping duplicates would remove)
    conflicting_groups: int  # groups whose rows carry different labels
    conflicting_rows: int
    examples: tuple[tuple[Any, ...], ...]  # row ids (or positions) of a few groups

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "groups": self.groups,
            "rows": self.rows,
            "conflicting_groups": self.conflicting_groups,
            "conflicting_rows": self.conflicting_rows,
            "examples": [list(map(_plain, e)) for e in self.examples],
        }


@dataclass(frozen=True, slots=True)
class DuplicateReport:
    rows: int
    exact: DuplicateGroups  # equal on every column but the id (label included)
    conflicts: DuplicateGroups  # equal on every feature, labels differ
    near: tuple[DuplicateGroups, ...]  # one per text column

    @property
    def exact_rows(self) -> int:
        return self.exact.rows

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "exact": self.exact.to_json(),
            "conflicting_labels": self.conflicts.to_json(),
            "near": [n.to_json() for n in self.near],
        }


@dataclass(frozen=True, slots=True)
class LeakageReport:
    """Rows of ``b`` whose content also appears in ``a`` (e.g. test rows seen in training)."""

    a: str
    b: str
    rows_b: int
    exact_rows: int  # rows of b equal to a row of a on every feature
    text_rows: dict[str, int]  # per text column: rows of b whose normalised text is in a
    id_rows: int  # rows of b whose id is in a
    examples: tuple[Any, ...]

    @property
    def hard_rows(self) -> int:
        """Rows leaked exactly (same features or same id), not only by similar text."""
        return max(self.exact_rows, self.id_rows)

    @property
    def leaked_rows(self) -> int:
        return max(self.exact_rows, self.id_rows, *self.text_rows.values(), 0)

    @property
    def share(self) -> float:
        return self.leaked_rows / self.rows_b if self.rows_b else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "rows_b": self.rows_b,
            "exact_rows": self.exact_rows,
            "text_rows": self.text_rows,
            "id_rows": self.id_rows,
            "share": round(self.share, 6),
            "examples": [_plain(e) for e in self.examples],
        }


def _plain(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) or value is None else str(value)


class HashCollector:
    """Per-row hashes of a stream of batches: features, label, id and each text column."""

    def __init__(self, *, label: str | None, id: str | None, text_columns: Sequence[str]) -> None:
        self.label, self.id, self.text_columns = label, id, tuple(text_columns)
        self._features: list[U64] = []
        self._labels: list[U64] = []
        self._label_valid: list[npt.NDArray[np.bool_]] = []
        self._texts: dict[str, list[U64]] = {c: [] for c in self.text_columns}
        self._text_valid: dict[str, list[npt.NDArray[np.bool_]]] = {c: [] for c in self.text_columns}
        self._ids: list[pa.Array] = []
        self._id_hashes: list[U64] = []
        self.rows = 0

    def add(self, batch: pa.Table | pa.RecordBatch, hashes: dict[str, U64] | None = None) -> None:
        hashes = hashes if hashes is not None else column_hashes(batch)
        n = batch.num_rows
        features = {k: v for k, v in hashes.items() if k not in (self.label, self.id)}
        self._features.append(row_hashes(features, n))
        if self.label is not None and self.label in hashes:
            self._labels.append(hashes[self.label])
            self._label_valid.append(np.asarray(batch.column(self.label).is_valid()))
        if self.id is not None and self.id in hashes:
            self._ids.append(pa.array(batch.column(self.id)))
            self._id_hashes.append(hashes[self.id])
        for col in self.text_columns:
            values = batch.column(col)
            normal = normalise_text(values)
            self._texts[col].append(column_hashes(pa.table({"t": normal}))["t"])
            self._text_valid[col].append(
                np.asarray(pc.fill_null(pc.greater(pc.utf8_length(normal), 0), False))
            )
        self.rows += n

    # -- views ------------------------------------------------------------------------------------

    @staticmethod
    def _cat(parts: list[Any], dtype: Any = np.uint64) -> Any:
        return np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)

    @property
    def features(self) -> U64:
        return np.asarray(self._cat(self._features), dtype=np.uint64)

    @property
    def id_hashes(self) -> U64:
        return np.asarray(self._cat(self._id_hashes), dtype=np.uint64)

    def text(self, col: str) -> tuple[U64, npt.NDArray[np.bool_]]:
        return self._cat(self._texts[col]), self._cat(self._text_valid[col], bool)

    def name_rows(self, positions: Sequence[int]) -> tuple[Any, ...]:
        """Row ids when there is an id column, else row positions."""
        if not self._ids:
            return tuple(int(p) for p in positions)
        ids = pa.chunked_array(self._ids)
        return tuple(ids[int(p)].as_py() for p in positions)

    def report(self) -> DuplicateReport:
        feats = self.features
        labels = self._cat(self._labels) if self._labels else None
        valid = self._cat(self._label_valid, bool) if self._labels else None
        whole = feats if labels is None else row_hashes({"f": feats, "l": labels}, len(feats))
        exact = self._groups("all columns but the id", whole, None, None, np.ones(len(feats), bool))
        conflicts = self._groups("all features", feats, labels, valid, np.ones(len(feats), bool))
        conflicts = DuplicateGroups(
            conflicts.key,
            conflicts.conflicting_groups,
            conflicts.conflicting_rows,
            conflicts.conflicting_groups,
            conflicts.conflicting_rows,
            conflicts.examples,
        )
        near = tuple(self._groups(col, *self._text_labels(col, labels, valid)) for col in self.text_columns)
        return DuplicateReport(self.rows, exact, conflicts, near)

    def _text_labels(
        self, col: str, labels: U64 | None, valid: npt.NDArray[np.bool_] | None
    ) -> tuple[U64, U64 | None, npt.NDArray[np.bool_] | None, npt.NDArray[np.bool_]]:
        keys, present = self.text(col)
        return keys, labels, valid, present

    def _groups(
        self,
        key: str,
        keys: U64,
        labels: U64 | None,
        label_valid: npt.NDArray[np.bool_] | None,
        include: npt.NDArray[np.bool_],
    ) -> DuplicateGroups:
        positions = np.flatnonzero(include)
        k = keys[positions]
        order = np.argsort(k, kind="stable")
        sk = k[order]
        if len(sk) == 0:
            return DuplicateGroups(key, 0, 0, 0, 0, ())
        starts = np.flatnonzero(np.concatenate([[True], sk[1:] != sk[:-1]]))
        sizes = np.diff(np.append(starts, len(sk)))
        multi = sizes > 1
        examples: list[tuple[Any, ...]] = []
        conflicting_groups = conflicting_rows = 0
        want_conflicts = labels is not None and label_valid is not None
        conflict_flags = np.zeros(len(starts), bool)
        if want_conflicts and multi.any():
            assert labels is not None and label_valid is not None
            lab = labels[positions][order]
            ok = label_valid[positions][order]
            # a group conflicts when its labelled rows carry more than one label hash
            top = np.uint64(np.iinfo(np.uint64).max)
            low = np.minimum.reduceat(np.where(ok, lab, top), starts)
            high = np.maximum.reduceat(np.where(ok, lab, np.uint64(0)), starts)
            conflict_flags = multi & (np.add.reduceat(ok.astype(np.int64), starts) > 1) & (low != high)
            conflicting_groups = int(conflict_flags.sum())
            conflicting_rows = int(sizes[conflict_flags].sum())
        shown = np.flatnonzero(conflict_flags) if conflicting_groups else np.flatnonzero(multi)
        for g in shown[:MAX_EXAMPLES]:
            rows = positions[order[starts[g] : starts[g] + sizes[g]]][:MAX_EXAMPLES]
            examples.append(self.name_rows(sorted(rows.tolist())))
        return DuplicateGroups(
            key,
            int(multi.sum()),
            int((sizes[multi] - 1).sum()),
            conflicting_groups,
            conflicting_rows,
            tuple(examples),
        )


def find_duplicates(
    batches: Batches,
    *,
    label: str | None = None,
    id: str | None = None,
    text_columns: Sequence[str] = (),
) -> DuplicateReport:
    """Exact and near-duplicates, and conflicting labels, over a stream of batches."""
    collector = HashCollector(label=label, id=id, text_columns=text_columns)
    for batch in batches:
        collector.add(batch)
    return collector.report()


def find_leakage(
    a: Batches,
    b: Batches,
    *,
    label: str | None = None,
    id: str | None = None,
    text_columns: Sequence[str] = (),
    names: tuple[str, str] = ("a", "b"),
) -> LeakageReport:
    """Rows of ``b`` that also occur in ``a``: same features, same normalised text, or same id."""
    ca = HashCollector(label=label, id=id, text_columns=text_columns)
    cb = HashCollector(label=label, id=id, text_columns=text_columns)
    for batch in a:
        ca.add(batch)
    for batch in b:
        cb.add(batch)
    exact = np.isin(cb.features, ca.features)
    text_rows: dict[str, int] = {}
    leaked = exact.copy()
    for col in text_columns:
        ka, va = ca.text(col)
        kb, vb = cb.text(col)
        hit = np.isin(kb, ka[va]) & vb
        text_rows[col] = int(hit.sum())
        leaked |= hit
    id_hit = np.isin(cb.id_hashes, ca.id_hashes) if id is not None else np.zeros(cb.rows, bool)
    if len(id_hit):
        leaked |= id_hit
    examples = cb.name_rows(np.flatnonzero(leaked)[:MAX_EXAMPLES].tolist())
    return LeakageReport(
        names[0], names[1], cb.rows, int(exact.sum()), text_rows, int(id_hit.sum()), examples
    )
