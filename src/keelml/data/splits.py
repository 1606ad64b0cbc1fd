"""Reproducible splits: by random (stratified by label), time, or group; checked for leakage.

Row assignment depends only on the rows' content and the seed, never on their order in storage:
each row (or group) gets a uniform number from a seeded hash. Rows that are identical apart from
their id and label hash alike and land in the same part, so exact duplicates cannot leak across
a random split; with text columns, rows whose normalised text is equal (near-duplicates) do too.
Time splits put the latest rows in test (ties at a cut go to the later part); group splits keep
every group whole.

>>> import pyarrow as pa
>>> t = pa.table({"g": ["a", "a", "b", "b", "c", "c", "d", "d"], "x": list(range(8))})
>>> parts = assign(t, SplitConfig(by="group", column="g", test=0.25))
>>> len({(g, int(p)) for g, p in zip(t["g"].to_pylist(), parts)})  # each group in one part only
4
>>> int((parts == 1).sum())  # one group of two rows: a quarter of the rows
2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import InvalidInputError
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace
from keelml.data.digest import column_hashes, row_hashes
from keelml.data.duplicates import LeakageReport, find_leakage, normalise_text
from keelml.data.sources import require_columns

SplitBy = Literal["random", "time", "group"]
PARTS = ("train", "test", "validation")
SYNTHETIC_COLUMN = "keel_synthetic"


@dataclass(frozen=True, slots=True)
class SplitConfig:
    by: SplitBy = "random"
    test: float = 0.2
    validation: float = 0.0
    seed: int = 0
    column: str | None = None  # time or group column (time defaults to the dataset's time column)
    stratify: bool = True  # random splits keep the label balance in each part

    def __post_init__(self) -> None:
        if self.by not in get_args(SplitBy):
            raise InvalidInputError(
                f"unknown split method {self.by!r}", expected="random, time or group", fix="--by random"
            )
        if not (0 < self.test < 1 and 0 <= self.validation < 1 and self.test + self.validation < 1):
            raise InvalidInputError(
                "split fractions do not leave rows for training",
                expected="0 < test < 1, 0 <= validation < 1, test + validation < 1",
                received=f"test={self.test}, validation={self.validation}",
                fix="e.g. --test 0.2 --validation 0.1",
            )
        if self.by == "group" and not self.column:
            raise InvalidInputError(
                "a group split needs the group column",
                received="no --column",
                fix="e.g. --by group --column user_id",
            )


@dataclass(frozen=True, slots=True)
class SplitPart:
    name: str  # "train", "test", "validation"
    ref: DatasetRef
    rows: int
    labels: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class SplitResult:
    source: DatasetRef
    config: SplitConfig
    parts: tuple[SplitPart, ...]
    leakage: tuple[LeakageReport, ...]

    @property
    def leaked_rows(self) -> int:
        return sum(r.leaked_rows for r in self.leakage)

    @property
    def hard_leaked_rows(self) -> int:
        """Rows shared exactly (same features or id): what fails `keel data split`."""
        return sum(r.hard_rows for r in self.leakage)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "by": self.config.by,
            "seed": self.config.seed,
            "column": self.config.column,
            "parts": [
                {
                    "part": p.name,
                    "dataset": str(p.ref),
                    "digest": p.ref.digest,
                    "rows": p.rows,
                    "labels": dict(p.labels),
                }
                for p in self.parts
            ],
            "leakage": [r.to_json() for r in self.leakage],
        }


def _uniform(hashes: npt.NDArray[np.uint64], seed: int) -> npt.NDArray[np.float64]:
    salted = row_hashes({f"seed:{seed}": hashes}, len(hashes))
    return np.asarray((salted >> np.uint64(11)).astype(np.float64) / float(1 << 53))


def _cut(u: npt.NDArray[np.float64], config: SplitConfig) -> npt.NDArray[np.int8]:
    """Part by rank of ``u``: the first ``1 - test - validation`` train, then validation, then test."""
    n = len(u)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(u, kind="stable")] = np.arange(n)
    out = np.zeros(n, dtype=np.int8)
    test_from = n - round(n * config.test)
    val_from = test_from - round(n * config.validation)
    out[rank >= val_from] = 2
    out[rank >= test_from] = 1
    return out


def assign(
    table: pa.Table, config: SplitConfig, *, label: str | None = None, id: str | None = None
) -> npt.NDArray[np.int8]:
    """Part index of each row: 0 train, 1 test, 2 validation."""
    if config.by == "time" or config.by == "group":
        column = config.column
        assert column is not None
        require_columns(table, {"split": column})
    if config.by == "time":
        times = table.column(config.column)
        if times.null_count:
            raise InvalidInputError(
                f"the time column {config.column!r} has {times.null_count} missing values",
                expected="a time in every row for a time split",
                fix="fill or drop them, or split --by random",
            )
        values = pc.cast(times, pa.int64()) if pa.types.is_temporal(times.type) else times
        t = np.asarray(values.to_numpy(), dtype=np.float64)
        out = np.zeros(len(t), dtype=np.int8)
        cut_test = np.quantile(t, 1 - config.test, method="lower")
        cut_val = np.quantile(t, 1 - config.test - config.validation, method="lower")
        if config.validation:
            out[t > cut_val] = 2
        out[t > cut_test] = 1
        return out
    if config.by == "group":
        groups = table.column(config.column)
        keys = column_hashes(pa.table({"g": groups}))["g"]
        unique, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
        u = _uniform(unique, config.seed)
        order = np.argsort(u, kind="stable")
        end = np.cumsum(counts[order]) / len(keys)  # row share up to and including each group
        part = np.zeros(len(unique), dtype=np.int8)
        # a group that reaches into a part's share of the rows goes there: no part is left empty
        if config.validation:
            part[order[end > 1 - config.test - config.validation + 1e-12]] = 2
        part[order[end > 1 - config.test + 1e-12]] = 1
        return part[inverse].astype(np.int8)
    u = _uniform(_content_keys(table, label=label, id=id), config.seed)
    if not (config.stratify and label is not None and label in table.column_names):
        return _cut(u, config)
    out = np.zeros(table.num_rows, dtype=np.int8)
    strata = np.asarray(
        pc.cast(table.column(label), pa.string()).fill_null("\x00missing").to_numpy(zero_copy_only=False)
    )
    for value in np.unique(strata):
        rows = np.flatnonzero(strata == value)
        out[rows] = _cut(u[rows], config)
    return out


def _content_keys(table: pa.Table, *, label: str | None, id: str | None) -> npt.NDArray[np.uint64]:
    """Rows with the same normalised text (or, without text, the same features) share a key."""
    texts = [c for c in table.column_names if c not in (label, id) and _is_text(table.column(c))]
    if texts:
        normal = pa.table({c: normalise_text(table.column(c)) for c in texts})
        return row_hashes(column_hashes(normal), table.num_rows)
    features = [c for c in table.column_names if c not in (label, id)]
    return row_hashes(column_hashes(table.select(features)), table.num_rows)


def split_dataset(
    ws: Workspace, spec: str | DatasetRef, config: SplitConfig, *, progress: Progress | None = None
) -> SplitResult:
    """Write ``NAME-train`` / ``NAME-test`` (/ ``NAME-validation``) as versions made from ``spec``.

    The same source and config always give the same parts (same digests, so no new versions).
    """
    progress = progress or NoProgress()
    ref = ws.datasets.ref(spec)
    dataset = ws.datasets.dataset(ref.name)
    if config.by == "time" and config.column is None:
        if dataset.time_column is None:
            raise InvalidInputError(
                f"{ref.name} has no time column to split by",
                expected="--column TIME or a dataset added with --time",
                fix=f"keel data split {ref.name} --by time --column created_at",
            )
        config = SplitConfig(
            "time", config.test, config.validation, config.seed, dataset.time_column, config.stratify
        )
    progress.stage("assigning rows")
    table = ws.datasets.read(ref)
    parts_of = assign(table, config, label=dataset.label_column, id=dataset.id_column)
    parts_of[_synthetic(table)] = 0  # synthetic rows (keel augment) train; they are never test rows
    wanted = (0, 1, 2) if config.validation else (0, 1)
    parts: list[SplitPart] = []
    tables: dict[int, pa.Table] = {}
    for index in wanted:
        part = table.filter(pa.array(parts_of == index))
        if part.num_rows == 0:
            raise InvalidInputError(
                f"the {PARTS[index]} part of {ref} would be empty",
                expected="enough rows (or groups, or distinct times) for every part",
                received=f"{table.num_rows} rows",
                fix="use a larger fraction, or more data",
            )
        tables[index] = part
        name = f"{ref.name}-{PARTS[index]}"
        progress.stage(f"writing {name}")
        new = ws.datasets.add(
            name,
            part,
            label=dataset.label_column,
            time=dataset.time_column,
            id=dataset.id_column,
            source_name=f"split:{ref} by {config.by} seed {config.seed}",
        )
        with ws.catalog.begin() as conn:
            ws.catalog.lineage.add_edge(conn, ref.node_id, new.node_id, "split")
        labels: tuple[tuple[str, int], ...] = ()
        if dataset.label_column is not None:
            counts = pc.value_counts(pc.cast(part.column(dataset.label_column), pa.string()))
            labels = tuple(
                (str(v), int(c))
                for v, c in zip(
                    counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
                )
            )
        parts.append(SplitPart(PARTS[index], new, part.num_rows, labels))
    progress.stage("checking leakage")
    texts = [c for c in table.column_names if _is_text(table.column(c))]
    # rows equal but for their id and time are the same example seen at another time
    times = {c for c in (dataset.time_column, config.column if config.by == "time" else None) if c}
    leakage = tuple(
        find_leakage(
            [tables[0].drop_columns(list(times))],
            [tables[index].drop_columns(list(times))],
            label=dataset.label_column,
            id=dataset.id_column,
            text_columns=texts,
            names=(f"{ref.name}-train", f"{ref.name}-{PARTS[index]}"),
        )
        for index in wanted[1:]
    )
    return SplitResult(ref, config, tuple(parts), leakage)


def _synthetic(table: pa.Table) -> npt.NDArray[np.bool_]:
    """Rows marked ``keel_synthetic`` by keel augment (the column is a convention shared by name)."""
    if SYNTHETIC_COLUMN not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    marked = pc.fill_null(table.column(SYNTHETIC_COLUMN), False)
    return np.asarray(marked.to_numpy(zero_copy_only=False), dtype=bool)


def _is_text(values: pa.ChunkedArray) -> bool:
    if not pa.types.is_string(values.type) or len(values) == values.null_count:
        return False
    mean = pc.mean(pc.utf8_length(values)).as_py()
    return bool(mean is not None and mean > 40)
