"""Point-in-time retrieval through a sorted key index per feature-view source version.

A dataset version never changes, so its feature rows can be indexed once: each row's (entity key,
event time) packed into one int64 and sorted (stable, so ties keep storage order), the permutation
back to storage order, and an uncompressed Arrow IPC copy of the view's features that is memory-mapped
when read. A retrieval then sorts the entity rows' packed keys, finds each one's latest row at or
before T with a binary search, drops matches past the ttl, and takes the matched rows' features: the
same answer as the ASOF JOIN of ``keelml.features.offline`` (ties go to the row stored last), without
sorting or decoding the view's rows again (benchmarks/results/features.md, session 10).

The index serves a view whose entity has one key column and whose (key range, time span) fit 62 bits.
An integer key is packed as is; a string, binary or uint64 key is first replaced by its position in the
source's sorted distinct keys (the index's ``vocabulary``), and entity keys missing from it match
nothing, as in the join. ``unsupported`` says why another view cannot be served, and the caller falls
back to the ASOF JOIN.

>>> import datetime as dt
>>> from keelml.features.definitions import Entity, FeatureView
>>> v = FeatureView("v", entity=Entity("c", keys=("cid",)), source="s", timestamp="ts",
...                 ttl=dt.timedelta(days=1), features=("x",))
>>> t = lambda d: dt.datetime(2024, 1, d, tzinfo=dt.UTC)
>>> index = KeyIndex.build(pa.table({"cid": [1, 1], "ts": [t(1), t(3)], "x": [10.0, 30.0]}), v)
>>> rows = pa.table({"cid": [1, 1, 1, 2], "at": [t(1), t(2), t(5), t(2)]})
>>> out = pa.Table.from_batches(list(indexed_point_in_time(rows, "at", [(v, index, ["x"])])))
>>> out.column("x").to_pylist()  # day 5 is past the 1-day ttl of day 3; customer 2 has no rows
[10.0, 10.0, None, None]
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.feather as feather

from keelml.features.definitions import FeatureNameConflictError, FeatureView
from keelml.features.offline import check_entity_rows, utc

FORMAT = 2  # bump when the files change: an index of another format is rebuilt
_MAX_BITS = 62  # packed keys stay positive in an int64


def packable(kind: pa.DataType) -> bool:
    """An integer type whose every value fits the packed int64 key (uint64's may not)."""
    return pa.types.is_integer(kind) and not pa.types.is_uint64(kind)


def coded(kind: pa.DataType) -> bool:
    """A key type the index replaces by codes (positions in the sorted distinct keys)."""
    return kind in _CODED_FAMILY or pa.types.is_uint64(kind)


# key types that compare equal across these pairs, as DuckDB's join compares them
_CODED_FAMILY = {pa.string(): pa.string(), pa.large_string(): pa.string(), pa.binary(): pa.binary(),
                 pa.large_binary(): pa.binary()}  # fmt: skip


def unsupported(view: FeatureView, schema: pa.Schema) -> str | None:
    """Why the index cannot serve ``view`` over a source of ``schema``; None when it can."""
    if len(view.entity.keys) != 1:
        return f"entity {view.entity.name!r} has {len(view.entity.keys)} key columns (the index packs one)"
    key = view.entity.keys[0]
    if key not in schema.names:
        return f"key {key!r} is not a column of the source"
    kind = schema.field(key).type
    if not (packable(kind) or coded(kind)):
        return f"key {key!r} is {kind} (the index takes integer, string and binary keys)"
    return None


def _vocabulary_type(kind: pa.DataType) -> pa.DataType:
    return _CODED_FAMILY.get(kind, kind)


def _codes(column: pa.ChunkedArray | pa.Array, vocabulary: pa.Array | None) -> pa.ChunkedArray | pa.Array:
    """The column itself (integer keys) or each key's position in ``vocabulary`` (null: not in it)."""
    if vocabulary is None:
        return column
    return pc.index_in(column.cast(vocabulary.type), value_set=vocabulary)


def _as_int64(column: pa.ChunkedArray | pa.Array) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """(values with nulls as 0, which are not null); filled in arrow: with nulls to_numpy gives float64,
    which rounds keys past 2^53."""
    known = ~np.asarray(pc.is_null(column), bool)
    return np.asarray(pc.fill_null(column, 0).to_numpy(zero_copy_only=False), dtype=np.int64), known


@dataclass(frozen=True)
class KeyIndex:
    """A view version's rows sorted by (key, event time); ``features`` in storage order."""

    keys: npt.NDArray[np.int64]  # ((key - key_low) << time_bits) | (time - time_low), sorted
    positions: npt.NDArray[np.int64]  # the stored position of each sorted entry
    key_low: int
    time_low: int
    time_bits: int
    features: pa.Table
    vocabulary: pa.Array | None = None  # sorted distinct keys of a string / binary / uint64 key

    def accepts(self, kind: pa.DataType) -> bool:
        """Whether entity keys of type ``kind`` can be looked up (else the caller uses the join)."""
        if self.vocabulary is None:
            return packable(kind)
        return coded(kind) and _vocabulary_type(kind) == self.vocabulary.type

    def encode(self, column: pa.ChunkedArray) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Entity keys as (int64 keys, known): unknown or null keys are not known and match nothing."""
        return _as_int64(_codes(column, self.vocabulary))

    @classmethod
    def build(cls, source: pa.Table, view: FeatureView) -> KeyIndex | None:
        """The index of ``source`` (the view's key, timestamp and features), or None if it cannot fit."""
        if unsupported(view, source.schema):
            return None
        column = source.column(view.entity.keys[0])
        vocabulary = None
        if not packable(column.type):
            distinct = pc.unique(column.cast(_vocabulary_type(column.type))).drop_null()
            vocabulary = distinct.take(pc.sort_indices(distinct))
        key, valid = _as_int64(_codes(column, vocabulary))
        t, timed = _as_int64(utc(source.column(view.timestamp)).cast(pa.int64()))
        kept = np.flatnonzero(valid & timed)  # rows without key or time never match
        key, t = key[kept], t[kept]
        features = source.select(list(view.features))
        if not len(kept):
            return cls(np.empty(0, np.int64), np.empty(0, np.int64), 0, 0, 0, features, vocabulary)
        key_low, time_low = int(key.min()), int(t.min())
        time_bits = (int(t.max()) - time_low + 1).bit_length()
        if (int(key.max()) - key_low).bit_length() + time_bits > _MAX_BITS:
            return None
        packed = ((key - key_low) << time_bits) | (t - time_low)
        order = np.argsort(packed, kind="stable")
        return cls(packed[order], kept[order].astype(np.int64), key_low, time_low, time_bits, features,
                   vocabulary)  # fmt: skip

    def match(self, key: npt.NDArray[np.int64], known: npt.NDArray[np.bool_], at_us: npt.NDArray[np.int64],
              ttl_us: int) -> npt.NDArray[np.int64]:  # fmt: skip
        """The stored position of each query's latest row at or before ``at_us`` within the ttl; -1: none."""
        if not len(self.keys):
            return np.full(len(key), -1, np.int64)
        rel_key = key - self.key_low
        rel_t = at_us - self.time_low
        ok = known & (rel_key >= 0) & (rel_t >= 0)
        ok &= rel_key < (1 << (_MAX_BITS - self.time_bits))
        query = (np.where(ok, rel_key, 0) << self.time_bits) | np.clip(rel_t, 0, (1 << self.time_bits) - 1)
        order = np.argsort(query, kind="stable")  # sorted queries make the binary searches walk forward
        found = np.empty(len(query), np.int64)
        found[order] = np.searchsorted(self.keys, query[order], side="right") - 1
        hit = self.keys[np.maximum(found, 0)]
        hit_t = (hit & ((1 << self.time_bits) - 1)) + self.time_low
        ok &= (found >= 0) & ((hit >> self.time_bits) == rel_key) & (at_us - hit_t <= ttl_us)
        return np.where(ok, self.positions[np.maximum(found, 0)], -1)

    # -- files -----------------------------------------------------------------------------------

    def save(self, folder: Path) -> None:
        """Write to ``folder`` atomically: a reader sees the whole index or none."""
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            np.save(tmp / "keys.npy", self.keys)
            np.save(tmp / "positions.npy", self.positions)
            feather.write_feather(self.features, tmp / "features.arrow", compression="uncompressed")
            if self.vocabulary is not None:
                feather.write_feather(pa.table({"key": self.vocabulary}), tmp / "vocabulary.arrow")
            meta = {"format": FORMAT, "key_low": self.key_low, "time_low": self.time_low,
                    "time_bits": self.time_bits, "rows": self.features.num_rows,
                    "coded": self.vocabulary is not None}  # fmt: skip
            (tmp / "meta.json").write_text(json.dumps(meta))
            os.replace(tmp, folder)  # fails if another process got there first: theirs is as good
        except OSError:
            if not (folder / "meta.json").exists():
                raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> KeyIndex | None:
        """The index saved in ``folder``; None when absent, of another format, or damaged."""
        try:
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("format") != FORMAT:
                return None
            features = feather.read_table(folder / "features.arrow", memory_map=True)
            keys = np.load(folder / "keys.npy", mmap_mode="r")
            positions = np.load(folder / "positions.npy", mmap_mode="r")
            vocabulary = (
                feather.read_table(folder / "vocabulary.arrow").column("key").combine_chunks()
                if meta["coded"]
                else None
            )
        except (OSError, ValueError, KeyError, pa.ArrowInvalid):
            return None
        if features.num_rows != meta["rows"] or len(keys) != len(positions):
            return None
        return cls(keys, positions, int(meta["key_low"]), int(meta["time_low"]), int(meta["time_bits"]),
                   features, vocabulary)  # fmt: skip


def indexed_point_in_time(
    rows: pa.Table,
    timestamp: str,
    views: Sequence[tuple[FeatureView, KeyIndex, list[str]]],
    *,
    batch_rows: int = 100_000,
) -> Iterator[pa.RecordBatch]:
    """``offline.point_in_time`` through key indexes: the entity rows (in order) with each view's columns."""
    keys = list(dict.fromkeys(k for view, _, _ in views for k in view.entity.keys))
    rows = check_entity_rows(rows, timestamp, keys)
    clash = [c for _, _, cols in views for c in cols if c in rows.column_names]
    if clash:
        raise FeatureNameConflictError(
            "the entity rows already have columns named like requested features",
            received=", ".join(clash),
            fix="rename or drop those columns of the entity rows",
        )
    at = np.asarray(rows.column(timestamp).cast(pa.int64()).to_numpy(zero_copy_only=False), np.int64)
    out: dict[str, Any] = {name: rows.column(name) for name in rows.column_names}
    for view, index, cols in views:
        key, known = index.encode(rows.column(view.entity.keys[0]))
        found = index.match(key, known, at, int(view.ttl.total_seconds() * 1_000_000))
        if not index.features.num_rows:  # nothing to take from: every value is missing
            found = np.full(len(found), -1, np.int64)
            taken = pa.table({c: pa.nulls(len(found), index.features.schema.field(c).type) for c in cols})
        else:
            taken = index.features.select(cols).take(pa.array(np.maximum(found, 0)))
        missing = pa.array(found < 0)
        for name in cols:
            out[name] = pc.if_else(
                missing, pa.scalar(None, taken.schema.field(name).type), taken.column(name)
            )
    yield from _as_the_join_types(pa.table(out)).to_batches(max_chunksize=batch_rows)


def _as_the_join_types(table: pa.Table) -> pa.Table:
    """Column types as DuckDB hands them back from the ASOF JOIN, so both paths give one schema."""
    for i, field in enumerate(table.schema):
        kind = field.type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        kind = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}.get(kind, kind)
        if kind != field.type:
            table = table.set_column(i, field.name, table.column(i).cast(kind))
    return table
