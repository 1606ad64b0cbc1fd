"""Sources that DuckDB scans in place: the Parquet files of a Delta version, or an arrow table.

Reading a feature view's Delta table into arrow first would hold every feature row in Python memory
next to DuckDB's own join state; scanning the files lets DuckDB stream them, filter with the files'
statistics and spill its sort runs to disk under a memory limit.

Every relation gets ``__ord``, the stored position of a row (file index, then row in file), so that
ties on (entity, event time) go to the row stored last, as in a full read of the version.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import pyarrow as pa

from keelml.core.errors import InvalidInputError

if TYPE_CHECKING:
    import duckdb

FILE_STRIDE = 2**36  # rows per file below this; the file index goes above it
DEFAULT_MEMORY_LIMIT = "1GB"


@dataclass(frozen=True, slots=True)
class ParquetFiles:
    """Parquet files read in this order (a Delta version's data files: oldest first)."""

    paths: tuple[str, ...]
    rows: int | None = None

    def __post_init__(self) -> None:
        if not self.paths:
            raise InvalidInputError(
                "a Parquet source needs at least one file",
                expected="one or more .parquet paths",
                received="none",
                fix="name the files (or the directory) that hold the rows",
            )

    @classmethod
    def at(cls, path: str | Path) -> ParquetFiles:
        """One file, or every ``*.parquet`` file of a directory (sorted by name)."""
        p = Path(path)
        found = tuple(str(f) for f in sorted(p.glob("*.parquet"))) if p.is_dir() else (str(p),)
        if not found or not Path(found[0]).exists():
            raise InvalidInputError(
                f"no Parquet file at {str(path)!r}",
                expected="a .parquet file or a directory of them",
                received="nothing there",
                fix="check the path",
            )
        return cls(found)


Source: TypeAlias = pa.Table | ParquetFiles


def _add_actions(uri: str, version: int) -> pa.Table | None:
    from deltalake import DeltaTable

    table = DeltaTable(uri, version=version)
    if table.protocol().min_reader_version > 1:
        return None  # deletion vectors or column mapping: the files alone are not the version
    return pa.table(table.get_add_actions(flatten=True))


def delta_files(
    uri: str, version: int, *, newer_than: dt.datetime | None = None, column: str = ""
) -> list[tuple[str, int]] | None:
    """(path, rows) of a Delta version's data files, oldest first; ``None`` if they are not the version.

    With ``newer_than``, only files that may hold a later ``column`` value. Delta keeps timestamp
    statistics in milliseconds (or not at all), so a file whose recorded maximum is missing or within
    1 ms of ``newer_than`` is settled by the exact statistics in its Parquet footer (a file without
    any statistics is kept).
    """
    actions = _add_actions(uri, version)
    if actions is None:
        return None
    keep = [True] * actions.num_rows
    name = f"max.{column}"
    if newer_than is not None and name in actions.column_names:
        margin = newer_than - dt.timedelta(milliseconds=1)
        paths = actions.column("path").to_pylist()
        keep = [
            _footer_after(uri, p, column, newer_than)
            if h is None or margin <= _aware(h) <= newer_than
            else _aware(h) > newer_than
            for p, h in zip(paths, actions.column(name).to_pylist(), strict=True)
        ]
    ordered = sorted(
        (t, p, int(n or 0))
        for t, p, n, k in zip(
            actions.column("modification_time").to_pylist(),
            actions.column("path").to_pylist(),
            actions.column("num_records").to_pylist(),
            keep,
            strict=True,
        )
        if k
    )
    return [(str(Path(uri) / p), n) for _, p, n in ordered]


def _footer_after(uri: str, path: str, column: str, newer_than: dt.datetime) -> bool:
    """Whether a file's Parquet statistics allow a ``column`` value after ``newer_than``."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(Path(uri) / path).metadata
    index = meta.schema.to_arrow_schema().get_field_index(column)
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(index).statistics
        if stats is None or not stats.has_min_max or not isinstance(stats.max, dt.datetime):
            return True
        if _aware(stats.max) > newer_than:
            return True
    return False


def _aware(t: dt.datetime) -> dt.datetime:
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(
    threads: int | None, memory_limit: str | None, temp_directory: str | None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection in UTC that spills to ``temp_directory`` past ``memory_limit``."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    if threads:
        con.execute(f"SET threads={int(threads)}")
    spill = temp_directory or os.path.join(tempfile.gettempdir(), "keel-duckdb")
    con.execute(f"SET temp_directory={_lit(spill)}")
    con.execute(f"SET memory_limit={_lit(memory_limit or DEFAULT_MEMORY_LIMIT)}")
    con.execute("SET preserve_insertion_order=false")  # order comes from ORDER BY, not insertion
    return con


def register(con: duckdb.DuckDBPyConnection, name: str, source: Source, columns: Sequence[str]) -> None:
    """A temp view ``name`` with ``columns`` and ``__ord`` over an arrow table or Parquet files."""
    cols = ", ".join(q(c) for c in columns)
    if isinstance(source, pa.Table):
        raw = source.select(list(columns))
        raw = raw.append_column("__ord", pa.array(np.arange(raw.num_rows, dtype=np.int64)))
        con.register(f"{name}_arrow", raw)
        con.execute(f"CREATE TEMP VIEW {name} AS SELECT * FROM {name}_arrow")
        return
    parts = [
        f"SELECT {cols}, {i}::BIGINT * {FILE_STRIDE} + file_row_number AS __ord "
        f"FROM read_parquet({_lit(path)}, file_row_number=true)"
        for i, path in enumerate(source.paths)
    ]
    con.execute(f"CREATE TEMP VIEW {name} AS {' UNION ALL '.join(parts)}")


def column_names(con: duckdb.DuckDBPyConnection, source: Source) -> list[str]:
    if isinstance(source, pa.Table):
        return list(source.column_names)
    return list(con.sql(f"SELECT * FROM read_parquet({_lit(source.paths[0])}) LIMIT 0").columns)


def as_utc(con: duckdb.DuckDBPyConnection, relation: str, column: str) -> str:
    """SQL for ``column`` as TIMESTAMPTZ (naive values and zone-less strings are UTC)."""
    kind = str(con.sql(f"SELECT {q(column)} FROM {relation} LIMIT 0").types[0]).upper()
    if kind.startswith(("TIMESTAMP", "DATE", "VARCHAR")):
        return f"CAST({q(column)} AS TIMESTAMPTZ)"
    raise TypeError(kind)
