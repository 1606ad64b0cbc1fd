"""Reading a stored version, or an input file, as a stream of record batches.

Checks that only need a batch at a time (validation, duplicates, slices) read through here, so
their memory follows the batch size, not the table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace

BATCH_ROWS = 131_072


@dataclass(frozen=True, slots=True)
class VersionSource:
    """Where a stored version's rows are: enough to stream them without loading the table."""

    ref: DatasetRef
    table_uri: str
    delta_version: int
    schema: pa.Schema
    rows: int
    label: str | None
    id: str | None
    time: str | None

    @staticmethod
    def of(ws: Workspace, spec: str | DatasetRef) -> VersionSource:
        from keelml.data import delta

        ref = ws.datasets.ref(spec)
        record = ws.catalog.get_version(ref.name, ref.version)
        dataset = ws.datasets.dataset(ref.name)
        return VersionSource(
            ref,
            dataset.table_uri,
            record.delta_version,
            delta.schema(dataset.table_uri, record.delta_version),
            record.row_count,
            dataset.label_column,
            dataset.id_column,
            dataset.time_column,
        )

    def batches(self, columns: list[str] | None = None, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
        """The version's rows in read order (the order of ``ws.datasets.read``), batch by batch."""
        import pyarrow.parquet as pq
        from deltalake import DeltaTable

        from keelml.data import delta

        table = DeltaTable(self.table_uri, version=self.delta_version)
        schema = self.schema if columns is None else pa.schema([self.schema.field(c) for c in columns])
        if table.protocol().min_reader_version > 1:  # written by another engine: no file-level reads
            yield from table_batches(delta.read(self.table_uri, self.delta_version, columns), batch_rows)
            return
        actions = pa.table(table.get_add_actions(flatten=True))
        ordered = sorted(
            zip(actions["modification_time"].to_pylist(), actions["path"].to_pylist(), strict=True)
        )
        for _, path in ordered:
            with pq.ParquetFile(Path(self.table_uri) / path) as fh:
                groups = [fh.metadata.row_group(i).num_rows for i in range(fh.num_row_groups)]
                if max(groups, default=0) <= 2 * batch_rows:  # row groups are batches: the cheapest read
                    parts = (fh.read_row_group(i, columns=schema.names) for i in range(len(groups)))
                else:
                    parts = (
                        pa.Table.from_batches([b])
                        for b in fh.iter_batches(batch_size=batch_rows, columns=schema.names)
                    )
                for part in parts:
                    yield part if part.schema == schema else part.cast(schema)


def table_batches(table: pa.Table, batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """An in-memory table as batches (for inputs read from a file)."""
    for batch in table.to_batches(max_chunksize=batch_rows):
        yield pa.Table.from_batches([batch], schema=table.schema)
