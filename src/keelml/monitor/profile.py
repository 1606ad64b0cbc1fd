"""Reference profiles: per-column sketches plus a bottom-k row sample, built per partition and merged.

The row sample keeps the ``sample_size`` rows with the smallest random priorities; the union of two such
samples cut back to ``sample_size`` is again a uniform sample of the union, so samples merge like sketches.
It feeds the tests that need whole rows (MMD, domain classifier, BBSD, CBPE).

>>> import pandas as pd
>>> rng = np.random.default_rng(0)
>>> df = pd.DataFrame({"x": rng.normal(size=1000), "c": rng.choice(["a", "b"], 1000)})
>>> whole = build_profile(Frame(df), sample_size=100)
>>> parts = build_profile(Frame(df), sample_size=100, partition_rows=300)
>>> whole.rows == parts.rows == 1000, parts.columns["c"].counts == whole.columns["c"].counts
(True, True)
>>> Profile.from_payload(parts.to_payload()).sample.shape
(100, 3)
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from keelml.core.errors import ColumnNotFoundError, EmptySourceError
from keelml.monitor.frame import Frame
from keelml.monitor.sketch import CategoricalSketch, ColumnSketch, NumericSketch, _key, sketch_from_json

Array = np.ndarray[Any, Any]
PRIORITY = "__priority__"
PREDICTION = "__prediction__"
TRUTH = "__truth__"


def is_categorical(values: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values))


@dataclass
class Profile:
    """What the monitor keeps of a reference: it never rereads the reference rows."""

    rows: int
    columns: dict[str, ColumnSketch]
    outputs: dict[str, ColumnSketch]
    classes: tuple[str, ...]
    sample: pd.DataFrame
    sample_size: int
    labelled: int = 0
    correct: int = 0
    partitions: int = 1
    details: dict[str, Any] = field(default_factory=dict)
    # text column -> (priorities, unit embeddings) of a bottom-k sample of its reference texts
    embeddings: dict[str, tuple[Array, Array]] = field(default_factory=dict)

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(self.columns)

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(n for n, s in self.columns.items() if isinstance(s, CategoricalSketch))

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    def merge(self, other: Profile) -> Profile:
        cols = {
            n: _merge(self.columns.get(n), other.columns.get(n))
            for n in dict.fromkeys([*self.columns, *other.columns])
        }
        outs = {
            n: _merge(self.outputs.get(n), other.outputs.get(n))
            for n in dict.fromkeys([*self.outputs, *other.outputs])
        }
        size = max([len(e[0]) for e in (*self.embeddings.values(), *other.embeddings.values())] or [0])
        emb = {
            n: _merge_embeddings(self.embeddings.get(n), other.embeddings.get(n), size)
            for n in dict.fromkeys([*self.embeddings, *other.embeddings])
        }
        both = pd.concat([self.sample, other.sample], ignore_index=True)
        sample = both.nsmallest(self.sample_size, PRIORITY).reset_index(drop=True)
        return Profile(
            self.rows + other.rows,
            cols,
            outs,
            self.classes or other.classes,
            sample,
            self.sample_size,
            self.labelled + other.labelled,
            self.correct + other.correct,
            self.partitions + other.partitions,
            {**other.details, **self.details},
            emb,
        )

    # -- the rows of the sample, in the shapes the detectors want ----------------------------------

    def sample_frame(self) -> Frame:
        s = self.sample
        proba_cols = [f"proba.{c}" for c in self.classes]
        feats = s[[c for c in self.columns if c in s.columns]]
        proba = s[proba_cols].to_numpy(dtype=float) if self.classes and set(proba_cols) <= set(s) else None
        pred = s[PREDICTION].to_numpy(dtype=object) if PREDICTION in s else None
        truth = s[TRUTH].to_numpy(dtype=object) if TRUTH in s else None
        return Frame(feats.reset_index(drop=True), self.classes, proba, pred, truth)

    # -- storage ------------------------------------------------------------------------------------

    def to_payload(self) -> bytes:
        buf = io.BytesIO()
        self.sample.to_parquet(buf, index=False)
        body = {
            "format": 1,
            "rows": self.rows,
            "classes": list(self.classes),
            "sample_size": self.sample_size,
            "labelled": self.labelled,
            "correct": self.correct,
            "partitions": self.partitions,
            "details": self.details,
            "columns": {n: s.to_json() for n, s in self.columns.items()},
            "outputs": {n: s.to_json() for n, s in self.outputs.items()},
            "sample": buf.getvalue().hex(),
            "embeddings": {
                n: {"priority": p.tolist(), "vectors": _encode(v)} for n, (p, v) in self.embeddings.items()
            },
        }
        return zlib.compress(json.dumps(body).encode("utf-8"), 6)

    @classmethod
    def from_payload(cls, payload: bytes) -> Profile:
        body = json.loads(zlib.decompress(payload))
        sample = pd.read_parquet(io.BytesIO(bytes.fromhex(body["sample"])))
        return cls(
            int(body["rows"]),
            {n: sketch_from_json(s) for n, s in body["columns"].items()},
            {n: sketch_from_json(s) for n, s in body["outputs"].items()},
            tuple(body["classes"]),
            sample,
            int(body["sample_size"]),
            int(body["labelled"]),
            int(body["correct"]),
            int(body["partitions"]),
            dict(body["details"]),
            {
                n: (np.asarray(e["priority"], dtype=float), _decode(e["vectors"]))
                for n, e in body.get("embeddings", {}).items()
            },
        )


def _encode(vectors: Array) -> str:
    buf = io.BytesIO()
    np.save(buf, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _decode(text: str) -> Array:
    out: Array = np.load(io.BytesIO(base64.b64decode(text)), allow_pickle=False)
    return out


def _merge_embeddings(
    a: tuple[Array, Array] | None, b: tuple[Array, Array] | None, size: int
) -> tuple[Array, Array]:
    if a is None or b is None:
        one = a if b is None else b
        assert one is not None
        return one
    pri = np.concatenate([a[0], b[0]])
    keep = np.argsort(pri, kind="stable")[:size]
    return pri[keep], np.concatenate([a[1], b[1]])[keep]


def _merge(a: ColumnSketch | None, b: ColumnSketch | None) -> ColumnSketch:
    if a is None:
        assert b is not None
        return b
    if b is None:
        return a
    if isinstance(a, NumericSketch) and isinstance(b, NumericSketch):
        return a.merge(b)
    if isinstance(a, CategoricalSketch) and isinstance(b, CategoricalSketch):
        return a.merge(b)
    raise EmptySourceError(
        "profile partitions disagree on a column's kind",
        expected="the same column type (number or category) in every partition",
        received=f"{type(a).__name__} and {type(b).__name__}",
        fix="cast the column to one type before profiling",
    )


def _profile_part(
    frame: Frame,
    categorical: frozenset[str],
    sample_size: int,
    rng: np.random.Generator,
    k: int,
    text: frozenset[str] = frozenset(),
) -> Profile:
    cols: dict[str, ColumnSketch] = {}
    for name in frame.features.columns:
        if name in text:  # kept in the row sample only: tested on embeddings (monitor.text)
            continue
        values = frame.features[name]
        if name in categorical or is_categorical(values):
            cat = CategoricalSketch.empty()
            cat.update(values)
            cols[str(name)] = cat
        else:
            num = NumericSketch.empty(k)
            num.update(values.to_numpy(dtype=float))
            cols[str(name)] = num
    outs: dict[str, ColumnSketch] = {}
    priority = rng.random(len(frame))
    keep = (
        np.argsort(priority)[:sample_size]
        if len(frame) <= sample_size
        else np.argpartition(priority, sample_size)[:sample_size]
    )
    sample = frame.features.iloc[keep].reset_index(drop=True)
    if frame.proba is not None:
        for j, c in enumerate(frame.classes):
            s = NumericSketch.empty(k)
            s.update(frame.proba[:, j])
            outs[f"proba.{c}"] = s
            sample[f"proba.{c}"] = frame.proba[keep, j]
    if frame.prediction is not None:
        pred = CategoricalSketch.empty()
        pred.update(frame.prediction)
        outs["prediction"] = pred
        sample[PREDICTION] = frame.prediction[keep].astype(str)
    if frame.truth is not None:
        sample[TRUTH] = frame.truth[keep]
    sample[PRIORITY] = priority[keep]
    correct = frame.correct()
    labelled = int(np.isfinite(correct).sum())
    return Profile(
        len(frame), cols, outs, frame.classes, sample, sample_size, labelled, int(np.nansum(correct)), 1
    )


def _profile_arrow(
    table: Any,
    categorical: frozenset[str],
    sample_size: int,
    rng: np.random.Generator,
    k: int,
    text: frozenset[str] = frozenset(),
) -> Profile:
    return _profile_columns(
        zip(table.schema.names, table.columns, strict=True),
        table.num_rows,
        categorical,
        sample_size,
        rng,
        k,
        text,
    )


def _profile_columns(
    columns: Iterable[tuple[str, Any]],
    rows: int,
    categorical: frozenset[str],
    sample_size: int,
    rng: np.random.Generator,
    k: int,
    text: frozenset[str] = frozenset(),
) -> Profile:
    """Sketch Arrow columns one at a time (each may be read just before and freed just after)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    priority = rng.random(rows)
    keep_rows = (
        np.argsort(priority)[:sample_size]
        if rows <= sample_size
        else np.argpartition(priority, sample_size)[:sample_size]
    )
    take = pa.array(keep_rows)
    cols: dict[str, ColumnSketch] = {}
    sample: dict[str, Any] = {}
    for name, col in columns:
        picked = col.take(take)
        if pa.types.is_dictionary(col.type):  # the sample holds plain values, as a plain read gives
            picked = picked.cast(col.type.value_type)
        sample[str(name)] = picked.to_pandas()
        if name in text:
            continue
        kind = col.type
        if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and name not in categorical:
            num = NumericSketch.empty(k)
            num.update(col.to_numpy(zero_copy_only=False).astype(float, copy=False))
            cols[str(name)] = num
            continue
        cat = CategoricalSketch.empty()
        counts = pc.value_counts(col)
        values, freq = counts.field("values"), counts.field("counts").to_numpy(zero_copy_only=False)
        valid = pc.is_valid(values).to_numpy(zero_copy_only=False)
        cat.missing += int(col.null_count)
        for value, n in zip(values.filter(pa.array(valid)).to_pylist(), freq[valid].tolist(), strict=True):
            key = _key(value)
            cat.counts[key] = cat.counts.get(key, 0) + int(n)
        cat._cap()
        cols[str(name)] = cat
    frame = pd.DataFrame({n: v.reset_index(drop=True) for n, v in sample.items()})
    frame[PRIORITY] = priority[keep_rows]
    return Profile(rows, cols, {}, (), frame, sample_size, 0, 0, 1)


def profile_parquet(
    path: Any,
    *,
    columns: tuple[str, ...] = (),
    categorical: tuple[str, ...] = (),
    sample_size: int = 2000,
    seed: int = 0,
    k: int = 4000,
    text_columns: tuple[str, ...] = (),
    text_sample: int = 500,
) -> Profile:
    """Profile a Parquet file one row group and a few columns at a time (only ``columns``, if given).

    The peak memory is a few decoded column chunks plus the sketches, whatever the file's size.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = list(dict.fromkeys(columns)) or list(pf.schema_arrow.names)
    unknown = [n for n in names if n not in pf.schema_arrow.names]
    if unknown:
        raise ColumnNotFoundError(
            f"columns {unknown} are not in {path}",
            expected="column names of the Parquet file",
            received=", ".join(pf.schema_arrow.names[:20]),
            fix="drop them from `columns` or profile the file that has them",
        )

    cats, text = frozenset(categorical), frozenset(text_columns)
    # string columns are read dictionary-encoded (as Parquet usually stores them): no string is decoded,
    # categories are counted on the dictionary indices, and only the sampled rows are turned into strings
    strings = [
        f.name
        for f in pf.schema_arrow
        if f.name in names
        and f.name not in text
        and (pa.types.is_string(f.type) or pa.types.is_large_string(f.type))
    ]
    if strings:
        pf = pq.ParquetFile(path, read_dictionary=strings)

    def parts() -> Iterable[Profile]:
        for i in range(pf.num_row_groups):
            rows = pf.metadata.row_group(i).num_rows
            if rows == 0:
                continue
            cols = _column_chunks(pf, i, names)
            rng = np.random.default_rng([seed, i])
            yield _profile_columns(cols, rows, cats, sample_size, rng, k, text)

    return _with_embeddings(_merge_all(parts()), text_columns, text_sample)


def _merge_all(profiles: Iterable[Profile]) -> Profile:
    # merged as a binary counter (like sizes merge with like), so summary error grows with log(partitions)
    stack: list[tuple[int, Profile]] = []
    for prof in profiles:
        level = 0
        while stack and stack[-1][0] == level:
            prof = stack.pop()[1].merge(prof)
            level += 1
        stack.append((level, prof))
    out: Profile | None = None
    for _, prof in reversed(stack):
        out = prof if out is None else prof.merge(out)
    if out is None:
        raise EmptySourceError(
            "cannot profile an empty reference",
            expected="at least one row",
            received="0 rows in every partition",
            fix="point the reference at a dataset version or log window that has rows",
        )
    return out


def build_profile(
    frame: Frame,
    *,
    categorical: tuple[str, ...] = (),
    sample_size: int = 2000,
    partition_rows: int = 250_000,
    seed: int = 0,
    k: int = 4000,
    text_columns: tuple[str, ...] = (),
    text_sample: int = 500,
) -> Profile:
    """Sketch ``frame`` in partitions of ``partition_rows`` rows and merge them."""
    if len(frame) == 0:
        raise EmptySourceError(
            "cannot profile an empty reference",
            expected="at least one row",
            received="0 rows",
            fix="point the reference at a dataset version or log window that has rows",
        )
    parts = (
        frame.take(np.arange(start, min(start + partition_rows, len(frame))))
        for start in range(0, len(frame), partition_rows)
    )
    _require_text_columns(text_columns, list(frame.features.columns), "features, if it lists the inputs")
    return profile_partitions(
        parts,
        categorical=categorical,
        sample_size=sample_size,
        seed=seed,
        k=k,
        text_columns=text_columns,
        text_sample=text_sample,
    )


def profile_partitions(
    partitions: Iterable[Any],
    *,
    categorical: tuple[str, ...] = (),
    sample_size: int = 2000,
    seed: int = 0,
    k: int = 4000,
    text_columns: tuple[str, ...] = (),
    text_sample: int = 500,
) -> Profile:
    """Sketch each partition (e.g. each file or row group of a reference too big for memory) and merge.

    A partition is a :class:`Frame` or a pyarrow ``Table`` / ``RecordBatch`` of plain feature columns; the
    latter is sketched column by column in Arrow (categories counted by ``pyarrow.compute``), so no pandas
    copy of the partition is made and only the sampled rows become Python objects.
    """
    cats, text = frozenset(categorical), frozenset(text_columns)

    def parts() -> Iterable[Profile]:
        for i, part in enumerate(partitions):
            if len(part) == 0:
                continue
            rng = np.random.default_rng([seed, i])
            if isinstance(part, Frame):
                yield _profile_part(part, cats, sample_size, rng, k, text)
            else:
                yield _profile_arrow(part, cats, sample_size, rng, k, text)

    return _with_embeddings(_merge_all(parts()), text_columns, text_sample)


def _with_embeddings(profile: Profile, text_columns: tuple[str, ...], size: int) -> Profile:
    """Embed the texts of the ``size`` sample rows with the smallest priorities (a uniform sample)."""
    if not text_columns:
        return profile
    from keelml.monitor.text import reference_embeddings

    _require_text_columns(text_columns, list(profile.sample.columns), None)
    priority = profile.sample[PRIORITY].to_numpy(dtype=float)
    profile.embeddings = reference_embeddings(profile.sample, priority, text_columns, size)
    profile.details = {**profile.details, "text_columns": list(text_columns), "text_sample": size}
    return profile


def _require_text_columns(text_columns: Sequence[str], available: list[Any], also: str | None) -> None:
    missing = [c for c in text_columns if c not in available]
    if missing:
        raise ColumnNotFoundError(
            f"text columns {missing} are not columns of the reference",
            expected="columns of the reference holding free text",
            received=", ".join(map(str, available[:20])),
            fix="correct text_columns in [monitor.<model>]" + (f" (and {also})" if also else ""),
        )


def _column_chunks(pf: Any, group: int, names: list[str], per_read: int = 8) -> Iterable[tuple[str, Any]]:
    """The row group's columns, decoded a few at a time: parallel decoding, bounded memory."""
    for start in range(0, len(names), per_read):
        batch = names[start : start + per_read]
        table = pf.read_row_group(group, columns=batch, use_threads=True)
        yield from ((n, table.column(n)) for n in batch)
