"""Delta Lake table operations, the only module that talks to deltalake.

The catalog is the source of truth for which Delta version is a dataset version. A write that died
after its Delta commit but before its catalog record leaves an orphan commit; the next write
restores the table to the last recorded version first, so orphans never leak into new versions.

Delta's own log clean-up is switched off on our tables (``delta.enableExpiredLogCleanup=false``):
it would silently break time travel to old versions that a registered model pins. Our own
:func:`remove_unreferenced_files` deletes only files no kept version references.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import pyarrow as pa

from keelml.core.faults import crash_point

TABLE_CONFIG: dict[str, str | None] = {
    "delta.enableExpiredLogCleanup": "false",
    "delta.logRetentionDuration": "interval 36500 days",
    "delta.deletedFileRetentionDuration": "interval 36500 days",
}


def write(
    uri: str,
    table: pa.Table,
    mode: Literal["error", "append", "overwrite"],
    *,
    recorded_version: int | None,
    metadata: dict[str, str],
) -> int:
    """Write and commit; returns the new Delta version."""
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    if recorded_version is not None:
        _restore_recorded(uri, recorded_version)
    write_deltalake(
        uri,
        table,
        mode=mode,
        schema_mode="overwrite" if mode == "overwrite" else None,
        configuration=TABLE_CONFIG if mode == "error" else None,
        commit_properties=CommitProperties(custom_metadata=metadata),
    )
    crash_point("after-delta-commit")
    return int(DeltaTable(uri).version())


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
    parts = [pq.read_table(path, columns=schema.names).cast(schema) for path in dt.file_uris()]
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
