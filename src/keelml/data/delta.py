"""Delta Lake table operations, the only module that talks to deltalake.

The catalog is the source of truth for which Delta version is a dataset version. A write that died
after its Delta commit but before its catalog record leaves an orphan commit; the next write
restores the table to the last recorded version first, so orphans never leak into new versions.

Delta's own log clean-up is switched off on our tables (``delta.enableExpiredLogCleanup=false``):
it would silently break time travel to old versions that a registered model pins. Our own
:func:`remove_unreferenced_files` deletes only files no kept version references.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from keelml.core.faults import crash_point

TABLE_CONFIG: dict[str, str | None] = {
    "delta.enableExpiredLogCleanup": "false",
    "delta.logRetentionDuration": "interval 36500 days",
    "delta.deletedFileRetentionDuration": "interval 36500 days",
}


FILE_ROWS = 1 << 21  # rows per Parquet file
ROW_GROUP_ROWS = 1 << 17  # rows per row group: readers can stream a version a batch at a time


def write(
    uri: str,
    table: pa.Table,
    mode: Literal["error", "append", "overwrite"],
    *,
    recorded_version: int | None,
    metadata: dict[str, str],
) -> int:
    """Write Parquet files with pyarrow and commit them as one Delta transaction; the new version.

    Files are written first and are invisible until the commit (an atomic log entry) names them,
    so a crash leaves at most unreferenced files, which gc removes.
    """
    from deltalake import CommitProperties, DeltaTable, Schema
    from deltalake.transaction import create_table_with_add_actions

    if recorded_version is not None:
        _restore_recorded(uri, recorded_version)
    actions = _write_files(uri, table)
    schema = Schema.from_arrow(table.schema)
    props = CommitProperties(custom_metadata=metadata)
    if mode == "error":
        create_table_with_add_actions(
            uri, schema, actions, mode="error", configuration=TABLE_CONFIG, commit_properties=props
        )
    else:
        DeltaTable(uri).create_write_transaction(actions, mode=mode, schema=schema, commit_properties=props)
    crash_point("after-delta-commit")
    return int(DeltaTable(uri).version())


def _write_files(uri: str, table: pa.Table) -> list[Any]:
    import json
    import time
    import uuid

    import pyarrow.parquet as pq
    from deltalake.transaction import AddAction

    root = Path(uri)
    root.mkdir(parents=True, exist_ok=True)
    actions = []
    for index, start in enumerate(range(0, max(table.num_rows, 1), FILE_ROWS)):
        chunk = table.slice(start, FILE_ROWS)
        name = f"part-{index:05d}-{uuid.uuid4()}-c000.snappy.parquet"
        pq.write_table(
            chunk,
            root / name,
            compression="snappy",
            row_group_size=ROW_GROUP_ROWS,
            # Dictionary pages only where values repeat; on floats each row group would build
            # one and give it up (about 2x slower and 18% larger files, measured).
            use_dictionary=[f.name for f in chunk.schema if not pa.types.is_floating(f.type)],
        )
        crash_point("after-data-file")
        stats = _file_stats(chunk)
        actions.append(
            AddAction(
                name, (root / name).stat().st_size, {}, int(time.time() * 1000), True, json.dumps(stats)
            )
        )
    return actions


_MAX_STAT_CHARS = 64  # longer strings get no min/max rather than a truncated (wrong) max


def _file_stats(chunk: pa.Table) -> dict[str, Any]:
    """Delta file statistics: row and null counts, min/max of numbers and short strings.

    Other engines use min/max to skip files; keelml uses them to check only the files whose id
    range can hold an appended id.
    """
    import pyarrow.compute as pc

    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for f in chunk.schema:
        t = f.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_string(t)):
            continue
        extremes = pc.min_max(chunk.column(f.name)).as_py()
        low, high = extremes["min"], extremes["max"]
        if low is None or (isinstance(low, str) and max(len(low), len(high)) > _MAX_STAT_CHARS):
            continue
        if isinstance(low, float) and not (math.isfinite(low) and math.isfinite(high)):
            continue
        mins[f.name], maxs[f.name] = low, high
    return {
        "numRecords": chunk.num_rows,
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": {
            f.name: chunk.column(f.name).null_count for f in chunk.schema if not pa.types.is_nested(f.type)
        },
    }


def write_stream_files(uri: str, batches: Iterable[pa.RecordBatch]) -> list[Any]:
    """Write record batches as Parquet files, uncommitted; their add actions for :func:`commit_files`.

    Files hold ``FILE_ROWS`` rows in row groups of ``ROW_GROUP_ROWS`` (as :func:`write` makes them);
    at most one row group is buffered, so memory follows the batch size. Nobody sees the files until
    a commit names them; if ``batches`` raises, the files written so far are deleted first.
    """
    root = Path(uri)
    root.mkdir(parents=True, exist_ok=True)
    out = _StreamFiles(root)
    try:
        for batch in batches:
            out.add(batch)
        out.finish()
    except BaseException:
        out.abort()
        raise
    return out.actions


def commit_files(
    uri: str,
    actions: list[Any],
    schema: pa.Schema,
    mode: Literal["error", "overwrite"],
    *,
    recorded_version: int | None,
    metadata: dict[str, str],
) -> int:
    """Commit files from :func:`write_stream_files` as one Delta transaction; the new version."""
    from deltalake import CommitProperties, DeltaTable, Schema
    from deltalake.transaction import create_table_with_add_actions

    if recorded_version is not None:
        _restore_recorded(uri, recorded_version)
    props = CommitProperties(custom_metadata=metadata)
    delta_schema = Schema.from_arrow(schema)
    if mode == "error":
        create_table_with_add_actions(
            uri, delta_schema, actions, mode="error", configuration=TABLE_CONFIG, commit_properties=props
        )
    else:
        DeltaTable(uri).create_write_transaction(
            actions, mode=mode, schema=delta_schema, commit_properties=props
        )
    crash_point("after-delta-commit")
    return int(DeltaTable(uri).version())


def discard_files(uri: str, actions: list[Any]) -> None:
    """Delete uncommitted files from :func:`write_stream_files` (they were never visible)."""
    for action in actions:
        (Path(uri) / action.path).unlink(missing_ok=True)


class _StreamFiles:
    """Batches in, Parquet files out: one row group buffered, statistics merged per batch."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.actions: list[Any] = []
        self.paths: list[Path] = []
        self.writer: Any = None
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0
        self.file_rows = 0
        self.stats: list[dict[str, Any]] = []

    def add(self, batch: pa.RecordBatch) -> None:
        while batch.num_rows:
            if self.writer is None:
                self._open(batch.schema)
            part = batch.slice(0, FILE_ROWS - self.file_rows)
            batch = batch.slice(part.num_rows)
            self.pending.append(part)
            self.pending_rows += part.num_rows
            self.file_rows += part.num_rows
            self.stats.append(_file_stats(pa.Table.from_batches([part])))
            if self.pending_rows >= ROW_GROUP_ROWS:
                self._flush(whole_groups=True)
            if self.file_rows == FILE_ROWS:
                self._close()

    def finish(self) -> None:
        if self.writer is not None:
            self._close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.close()
        for path in self.paths:
            path.unlink(missing_ok=True)

    def _open(self, schema: pa.Schema) -> None:
        import uuid

        import pyarrow.parquet as pq

        path = self.root / f"part-{len(self.paths):05d}-{uuid.uuid4()}-c000.snappy.parquet"
        self.paths.append(path)
        self.writer = pq.ParquetWriter(
            path,
            schema,
            compression="snappy",
            use_dictionary=[f.name for f in schema if not pa.types.is_floating(f.type)],
        )
        self.file_rows, self.stats = 0, []

    def _flush(self, *, whole_groups: bool) -> None:
        if not self.pending:  # a file that ends on a row-group boundary has nothing left
            return
        table = pa.Table.from_batches(self.pending)
        keep = table.num_rows % ROW_GROUP_ROWS if whole_groups else 0
        if table.num_rows - keep:
            self.writer.write_table(table.slice(0, table.num_rows - keep), row_group_size=ROW_GROUP_ROWS)
        self.pending = table.slice(table.num_rows - keep).to_batches() if keep else []
        self.pending_rows = keep

    def _close(self) -> None:
        import json
        import time

        from deltalake.transaction import AddAction

        self._flush(whole_groups=False)
        self.writer.close()
        self.writer = None
        crash_point("after-data-file")
        path = self.paths[-1]
        stats = json.dumps(_merge_stats(self.stats))
        self.actions.append(
            AddAction(path.name, path.stat().st_size, {}, int(time.time() * 1000), True, stats)
        )


def _merge_stats(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The statistics of a file from those of its batches (as :func:`_file_stats` of the whole)."""
    first = parts[0]
    columns = first["nullCount"].keys() | first["minValues"].keys()
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    for name in columns:
        lows = [p["minValues"][name] for p in parts if name in p["minValues"]]
        highs = [p["maxValues"][name] for p in parts if name in p["maxValues"]]
        # a batch without a min/max has only nulls there (then it adds nothing) or a value that
        # voids the file's min/max (a long string, an infinity): :func:`_file_stats` drops those
        voided = any(name not in p["minValues"] and _has_values(p, name) for p in parts)
        if lows and not voided:
            mins[name], maxs[name] = min(lows), max(highs)
    return {
        "numRecords": sum(p["numRecords"] for p in parts),
        "minValues": mins,
        "maxValues": maxs,
        "nullCount": {n: sum(p["nullCount"][n] for p in parts) for n in first["nullCount"]},
    }


def _has_values(part: dict[str, Any], name: str) -> bool:
    return bool(part["nullCount"].get(name, 0) < part["numRecords"])


def files_that_may_hold(uri: str, version: int, column: str, low: Any, high: Any) -> set[str]:
    """Files of a version whose recorded [min, max] of ``column`` overlaps [low, high].

    A file without statistics for the column may hold anything and is included.
    """
    from deltalake import DeltaTable

    actions = pa.table(DeltaTable(uri, version=version).get_add_actions(flatten=True))
    paths = actions.column("path").to_pylist()
    lo_name, hi_name = f"min.{column}", f"max.{column}"
    if lo_name not in actions.column_names or hi_name not in actions.column_names:
        return set(paths)
    mins = actions.column(lo_name).to_pylist()
    maxs = actions.column(hi_name).to_pylist()
    return {
        p
        for p, lo, hi in zip(paths, mins, maxs, strict=True)
        if lo is None or hi is None or not (hi < low or lo > high)
    }


def _restore_recorded(uri: str, recorded_version: int) -> None:
    from deltalake import DeltaTable

    dt = DeltaTable(uri)
    if dt.version() != recorded_version:
        dt.restore(recorded_version)


def read(uri: str, version: int, columns: list[str] | None = None) -> pa.Table:
    """One version's rows, read file by file with pyarrow.

    Our tables use no deletion vectors, column mapping or partitions (reader protocol 1), so the
    add actions' Parquet files are the version. Reading them directly also avoids the pyarrow
    dataset bridge of deltalake 1.6, whose I/O threads abort the interpreter at exit about half
    the time ("terminate called without an active exception").
    """
    import pyarrow.parquet as pq
    from deltalake import DeltaTable

    dt = DeltaTable(uri, version=version)
    if dt.protocol().min_reader_version > 1:
        return dt.to_pyarrow_table(columns=columns)  # a table written by another tool
    schema = pa.schema(dt.schema().to_arrow())
    if columns is not None:
        schema = pa.schema([schema.field(c) for c in columns])
    actions = pa.table(dt.get_add_actions(flatten=True))
    ordered = sorted(zip(actions["modification_time"].to_pylist(), actions["path"].to_pylist(), strict=True))
    root = Path(uri)  # oldest files first, so appended rows come after the rows they follow
    parts = [pq.read_table(root / path, columns=schema.names).cast(schema) for _, path in ordered]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def schema(uri: str, version: int) -> pa.Schema:
    from deltalake import DeltaTable

    return pa.schema(DeltaTable(uri, version=version).schema().to_arrow())


def files(uri: str, version: int) -> set[str]:
    """Data files (relative paths) that make up one version."""
    from deltalake import DeltaTable

    actions = DeltaTable(uri, version=version).get_add_actions(flatten=True)
    return set(pa.table(actions).column("path").to_pylist())


def read_files(uri: str, paths: set[str], columns: list[str] | None = None) -> pa.Table | None:
    """Read a subset of a version's data files directly (our tables use no deletion vectors)."""
    import pyarrow.parquet as pq

    if not paths:
        return None
    root = Path(uri)
    return pa.concat_tables(
        [pq.read_table(root / p, columns=columns) for p in sorted(paths)], promote_options="permissive"
    )


def remove_unreferenced_files(
    uri: str, keep_versions: set[int], known_versions: set[int], *, dry_run: bool, grace_seconds: float
) -> tuple[int, int]:
    """Delete data files that no kept version (nor the current one) references; (files, bytes).

    Files of known (recorded) versions that are not kept go at once; files no recorded version
    knows (an interrupted or in-flight write) go only once older than ``grace_seconds``, so gc never
    races a writer that has not committed yet.
    """
    import time

    from deltalake import DeltaTable

    keep: set[str] = set()
    for version in keep_versions | {int(DeltaTable(uri).version())}:
        keep |= files(uri, version)
    known: set[str] = set()
    for version in known_versions:
        known |= files(uri, version)
    cutoff = time.time() - grace_seconds
    root = Path(uri)
    removed = freed = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != "_delta_log"]
        for name in filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if not rel.endswith(".parquet") or rel in keep:
                continue
            if rel in known or path.stat().st_mtime < cutoff:
                removed += 1
                freed += path.stat().st_size
                if not dry_run:
                    path.unlink()
    return removed, freed


def history_metadata(uri: str) -> list[dict[str, object]]:
    from deltalake import DeltaTable

    return list(DeltaTable(uri).history())
