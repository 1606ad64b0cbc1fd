"""Writing one dataset version from a stream of record batches, committed once at the end.

Each batch is normalised, written to the version's Parquet files and hashed/profiled, then dropped:
memory follows the batch size (plus one buffered row group), not the version. Nothing is visible
until the last batch is written: then one Delta commit and one catalog record make the version. If
the stream raises (or a check fails) the files written so far are deleted and no version exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa

from keelml.core.catalog import Catalog, VersionRecord, utcnow
from keelml.core.errors import DuplicateIdError, EmptySourceError, SchemaConflictError
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import DatasetRef, check_name
from keelml.data import delta
from keelml.data.digest import DigestState, column_hashes, schema_fingerprint
from keelml.data.profile import DatasetProfile, profile_batch
from keelml.data.sources import coerce_time, normalise, require_columns
from keelml.data.writer import Scan, WriteRequest, _record, dataset_lock, new_table_uri


class _Prepared:
    """The batches as stored (normalised, time coerced, one schema), hashed and profiled on the way."""

    def __init__(self, label: str | None, time: str | None, id: str | None, progress: Progress) -> None:
        self.label, self.time, self.id = label, time, id
        self.progress = progress
        self.schema: pa.Schema | None = None
        self.digest = DigestState()
        self.profile: DatasetProfile | None = None

    def batches(self, source: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for raw in source:
            if raw.num_rows == 0:
                continue
            table = normalise(pa.Table.from_batches([raw]))
            if self.schema is None:
                require_columns(table, {"label": self.label, "time": self.time, "id": self.id})
            if self.time is not None:
                table = coerce_time(table, self.time)
            table = self._conform(table)
            for batch in table.combine_chunks().to_batches():
                hashes = column_hashes(batch)
                self.digest = self.digest.add(hashes, batch.num_rows)
                part = profile_batch(batch, hashes, self.label)
                self.profile = part if self.profile is None else self.profile.merge(part)
                self.progress.advance(batch.num_rows)
                yield batch

    def _conform(self, table: pa.Table) -> pa.Table:
        if self.schema is None:
            self.schema = table.schema
            return table
        if table.schema.equals(self.schema):
            return table
        try:
            return table.select(self.schema.names).cast(self.schema)
        except (KeyError, pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise SchemaConflictError(
                "a later batch of the stream does not match the first batch's schema",
                expected=f"columns {', '.join(f'{f.name}:{f.type}' for f in self.schema)}",
                received=f"columns {', '.join(f'{f.name}:{f.type}' for f in table.schema)}",
                fix="yield batches of one schema (cast each batch before yielding it)",
            ) from exc


def _check_ids(uri: str, actions: list[Any], column: str) -> None:
    """Ids unique over the written files, checked by DuckDB (which spills) instead of in memory."""
    import duckdb

    files = ", ".join("'" + str(Path(uri) / a.path).replace("'", "''") + "'" for a in actions)
    col = '"' + column.replace('"', '""') + '"'
    con = duckdb.connect()
    try:
        nulls, repeated, examples = con.sql(
            f"WITH c AS (SELECT {col} AS v, count(*) AS n FROM read_parquet([{files}]) GROUP BY 1) "
            "SELECT coalesce(sum(n) FILTER (WHERE v IS NULL), 0), count(*) FILTER (WHERE v IS NOT NULL "
            "AND n > 1), list(v) FILTER (WHERE v IS NOT NULL AND n > 1) FROM c"
        ).fetchall()[0]
    finally:
        con.close()
    if nulls:
        raise DuplicateIdError(
            f"the id column {column!r} has {nulls} missing values",
            expected="a value in every row",
            fix="fill the missing ids, or choose another --id column",
        )
    if repeated:
        raise DuplicateIdError(
            f"the id column {column!r} has repeated values",
            expected="each id once",
            received=f"{repeated} repeated ids, e.g. {sorted(examples)[:5]}",
            fix="remove the duplicate rows, or choose a column that identifies rows uniquely",
        )


def add_stream(
    catalog: Catalog,
    storage: Path,
    name: str,
    batches: Iterable[pa.RecordBatch],
    *,
    label: str | None,
    time: str | None,
    id: str | None,
    source: str,
    operation: str = "add",
    progress: Progress | None = None,
) -> DatasetRef:
    """Add the streamed rows as a new dataset, or as a new version replacing an existing one's rows.

    As ``DatasetStore.add``: a new version keeps the dataset's roles unless overridden, and rows
    identical to the latest version (same digest) return that version (the new files are deleted).
    """
    check_name(name)
    progress = progress or NoProgress()
    progress.stage("writing Delta table")
    with dataset_lock(storage, name):
        dataset = catalog.find_dataset(name)
        previous = catalog.get_version(name, None) if dataset is not None else None
        if dataset is not None:
            label = label or dataset.label_column
            time = time or dataset.time_column
            id = id or dataset.id_column
        uri = dataset.table_uri if dataset is not None else new_table_uri(storage / "datasets", name)
        prepared = _Prepared(label, time, id, progress)
        actions: list[Any] = []
        try:
            actions = delta.write_stream_files(uri, prepared.batches(batches))
            if prepared.schema is None or prepared.profile is None:
                raise EmptySourceError(
                    "the stream of batches has no rows",
                    expected="at least one batch with at least one row",
                    received="0 rows",
                    fix="check the batches you pass; a dataset version cannot be empty",
                )
            if id is not None:
                _check_ids(uri, actions, id)
            schema = schema_fingerprint(prepared.schema)
            whole = Scan(prepared.digest, prepared.profile)
            digest = whole.digest.hexdigest(schema)
            if previous is not None and digest == previous.digest:
                delta.discard_files(uri, actions)
                return DatasetRef(name, previous.version, previous.digest)
            delta_version = delta.commit_files(
                uri,
                actions,
                prepared.schema,
                "error" if previous is None else "overwrite",
                recorded_version=previous.delta_version if previous is not None else None,
                metadata={"keelml.dataset": name, "keelml.operation": operation},
            )
        except BaseException:
            delta.discard_files(uri, actions)
            if dataset is None and Path(uri).is_dir() and not any(Path(uri).iterdir()):
                Path(uri).rmdir()
            raise
        version = previous.version + 1 if previous is not None else 1
        record = VersionRecord(
            dataset=name,
            version=version,
            delta_version=delta_version,
            digest=digest,
            operation=operation,
            source=source,
            row_count=whole.digest.rows,
            schema=schema,
            profile=whole.to_json(),
            parent_version=previous.version if previous is not None else None,
            status="active",
            created_at=utcnow(),
        )
        ref = DatasetRef(name, version, digest)
        request = WriteRequest(name, prepared.schema.empty_table(), operation, source, label, time, id)
        _record(catalog, record, ref, request, dataset, uri, previous)
        return ref
