"""Writing one dataset version: Delta commit, digest, profile and catalog record, all or nothing.

The digest and profile are computed batch by batch while the Delta write runs in another thread
(the Rust writer releases the GIL), so versioning and profiling add little to the plain write.
A file lock per dataset serialises writers, so a version's digest always describes its content.
"""

from __future__ import annotations

import fcntl
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from sqlalchemy.exc import IntegrityError, OperationalError

from keelml.core.catalog import Catalog, DatasetRecord, VersionRecord, utcnow
from keelml.core.errors import BackendUnavailableError, ConflictError
from keelml.core.faults import crash_point
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import DatasetRef
from keelml.data import delta
from keelml.data.digest import DigestState, column_hashes, schema_fingerprint
from keelml.data.profile import DatasetProfile, profile_batch

BATCH_ROWS = 131_072


@dataclass(frozen=True, slots=True)
class Scan:
    """Digest state and profile of some rows."""

    digest: DigestState
    profile: DatasetProfile

    def merge(self, other: Scan) -> Scan:
        return Scan(self.digest.merge(other.digest), self.profile.merge(other.profile))

    def to_json(self) -> dict[str, Any]:
        d = self.digest
        return {**self.profile.to_json(), "digest_state": [d.rows, str(d.sum1), str(d.sum2)]}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Scan:
        rows, s1, s2 = data["digest_state"]
        return Scan(DigestState(int(rows), int(s1), int(s2)), DatasetProfile.from_json(data))


def scan(table: pa.Table, label: str | None, progress: Progress) -> Scan:
    digest = DigestState()
    profile: DatasetProfile | None = None
    progress.stage("hashing and profiling", total=table.num_rows)
    for batch in table.to_batches(max_chunksize=BATCH_ROWS):
        hashes = column_hashes(batch)
        digest = digest.add(hashes, batch.num_rows)
        part = profile_batch(batch, hashes, label)
        profile = part if profile is None else profile.merge(part)
        progress.advance(batch.num_rows)
    assert profile is not None  # sources guarantee at least one row
    return Scan(digest, profile)


@contextmanager
def dataset_lock(storage: Path, name: str) -> Iterator[None]:
    lock_dir = storage / "locks"
    lock_dir.mkdir(parents=True, exist_ok=True)
    with (lock_dir / f"{name}.lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclass(frozen=True, slots=True)
class WriteRequest:
    name: str
    table: pa.Table
    operation: str
    source: str | None
    label: str | None
    time: str | None
    id: str | None
    parents: tuple[DatasetRef, ...] = ()


def new_table_uri(storage: Path, name: str) -> str:
    # A fresh directory per dataset: a crashed first write leaves an orphan that gc removes,
    # never a half-made table under a name the catalog will reuse.
    return str(storage / "tables" / f"{name}-{uuid.uuid4().hex[:12]}")


def commit_version(
    catalog: Catalog,
    request: WriteRequest,
    *,
    dataset: DatasetRecord | None,
    previous: VersionRecord | None,
    table_uri: str,
    mode: Literal["error", "append", "overwrite"],
    progress: Progress | None = None,
) -> DatasetRef:
    """Write ``request.table`` as the next version; the caller holds the dataset lock."""
    progress = progress or NoProgress()
    metadata = {"keelml.dataset": request.name, "keelml.operation": request.operation}
    recorded = previous.delta_version if previous is not None else None
    with ThreadPoolExecutor(max_workers=1) as pool:
        progress.stage("writing Delta table")
        pending = pool.submit(
            delta.write, table_uri, request.table, mode, recorded_version=recorded, metadata=metadata
        )
        part = scan(request.table, request.label, progress)
        delta_version = pending.result()
    if mode == "append" and previous is not None:
        whole = Scan.from_json(previous.profile).merge(part)
    else:
        whole = part
    schema = (
        schema_fingerprint(request.table.schema) if previous is None or mode != "append" else previous.schema
    )
    digest = whole.digest.hexdigest(schema)
    version = (previous.version + 1) if previous is not None else 1
    record = VersionRecord(
        dataset=request.name,
        version=version,
        delta_version=delta_version,
        digest=digest,
        operation=request.operation,
        source=request.source,
        row_count=whole.digest.rows,
        schema=schema,
        profile=whole.to_json(),
        parent_version=previous.version if previous is not None else None,
        status="active",
        created_at=utcnow(),
    )
    ref = DatasetRef(request.name, version, digest)
    _record(catalog, record, ref, request, dataset, table_uri, previous)
    return ref


def _record(
    catalog: Catalog,
    record: VersionRecord,
    ref: DatasetRef,
    request: WriteRequest,
    dataset: DatasetRecord | None,
    table_uri: str,
    previous: VersionRecord | None,
) -> None:
    try:
        with catalog.begin() as conn:
            if dataset is None:
                catalog.create_dataset(
                    conn,
                    DatasetRecord(request.name, table_uri, request.label, request.time, request.id, utcnow()),
                )
            catalog.insert_version(conn, record)
            attrs = {"digest": ref.digest, "rows": record.row_count, "operation": record.operation}
            catalog.lineage.add_node(conn, ref.node_id, "dataset", ref.name, ref.version, attrs)
            if previous is not None:
                parent = DatasetRef(request.name, previous.version, previous.digest)
                catalog.lineage.add_edge(conn, parent.node_id, ref.node_id, request.operation)
            for other in request.parents:
                catalog.lineage.add_edge(conn, other.node_id, ref.node_id, request.operation)
            crash_point("before-catalog-commit")
    except IntegrityError as exc:
        raise ConflictError(
            f"another writer recorded {ref} first",
            fix="run the command again; it will build on the newer version",
        ) from exc
    except OperationalError as exc:
        raise BackendUnavailableError(
            "the catalog became unavailable while recording the new version",
            received=str(exc).splitlines()[0],
            fix="nothing was recorded; restore the catalog connection and run the command again",
        ) from exc
