"""The metadata catalog: one SQL database (SQLite embedded, PostgreSQL for teams).

Writes happen inside :meth:`Catalog.begin` transactions, so a version row, its lineage node and its
edges appear together or not at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, select, update
from sqlalchemy.exc import NoSuchModuleError, OperationalError

from keelml.core import catalog_schema as t
from keelml.core.errors import (
    BackendUnavailableError,
    DatasetNotFoundError,
    VersionNotFoundError,
    missing_dependency,
)
from keelml.core.lineage import Lineage

HEAD_REVISION = "0002"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def normalise_url(url: str) -> str:
    """Use the psycopg 3 driver for plain PostgreSQL URLs.

    >>> normalise_url("postgresql://u@h/db")
    'postgresql+psycopg://u@h/db'
    """
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    name: str
    table_uri: str
    label_column: str | None
    time_column: str | None
    id_column: str | None
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class VersionRecord:
    dataset: str
    version: int
    delta_version: int
    digest: str
    operation: str
    source: str | None
    row_count: int
    schema: dict[str, str]
    profile: dict[str, Any]
    parent_version: int | None
    status: str
    created_at: dt.datetime


def _version_record(row: Any) -> VersionRecord:
    created = row.created_at
    if created.tzinfo is None:  # SQLite drops the zone; values are always written in UTC
        created = created.replace(tzinfo=dt.UTC)
    return VersionRecord(
        dataset=row.dataset,
        version=row.version,
        delta_version=row.delta_version,
        digest=row.digest,
        operation=row.operation,
        source=row.source,
        row_count=row.row_count,
        schema=dict(row.schema),
        profile=dict(row.profile),
        parent_version=row.parent_version,
        status=row.status,
        created_at=created,
    )


class Catalog:
    """Datasets, versions and the lineage graph, in one SQL database."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.engine = _make_engine(self.url)
        self._migrate()
        self.lineage = Lineage(self.engine)

    # -- plumbing -------------------------------------------------------------------------------

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    def _migrate(self) -> None:
        try:
            with self.engine.begin() as conn:
                if _current_revision(conn) == HEAD_REVISION:
                    return
                from alembic import command
                from alembic.config import Config

                cfg = Config()
                cfg.set_main_option("script_location", str(resources.files("keelml.core") / "migrations"))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise _unavailable(self.url, exc) from exc

    def close(self) -> None:
        self.engine.dispose()

    # -- datasets -------------------------------------------------------------------------------

    def create_dataset(self, conn: Connection, record: DatasetRecord) -> None:
        conn.execute(
            t.datasets.insert().values(
                name=record.name,
                table_uri=record.table_uri,
                label_column=record.label_column,
                time_column=record.time_column,
                id_column=record.id_column,
                created_at=record.created_at,
            )
        )

    def find_dataset(self, name: str) -> DatasetRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(t.datasets).where(t.datasets.c.name == name)).first()
        if row is None:
            return None
        return DatasetRecord(
            row.name, row.table_uri, row.label_column, row.time_column, row.id_column, row.created_at
        )

    def get_dataset(self, name: str) -> DatasetRecord:
        record = self.find_dataset(name)
        if record is None:
            known = ", ".join(self.dataset_names()) or "none yet"
            raise DatasetNotFoundError(
                f"no dataset named {name!r} in this workspace",
                expected="the name of an existing dataset",
                received=f"{name!r} (datasets: {known})",
                fix=f"add it with `keel data add {name} FILE`, or check `keel data list`",
            )
        return record

    def dataset_names(self) -> list[str]:
        with self.engine.connect() as conn:
            return list(conn.execute(select(t.datasets.c.name).order_by(t.datasets.c.name)).scalars())

    def insert_version(self, conn: Connection, record: VersionRecord) -> None:
        conn.execute(
            t.dataset_versions.insert().values(
                dataset=record.dataset,
                version=record.version,
                delta_version=record.delta_version,
                digest=record.digest,
                operation=record.operation,
                source=record.source,
                row_count=record.row_count,
                schema=record.schema,
                profile=record.profile,
                parent_version=record.parent_version,
                status=record.status,
                created_at=record.created_at,
            )
        )

    def versions(self, name: str, *, include_collected: bool = True) -> list[VersionRecord]:
        query = select(t.dataset_versions).where(t.dataset_versions.c.dataset == name)
        if not include_collected:
            query = query.where(t.dataset_versions.c.status == "active")
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(t.dataset_versions.c.version)).all()
        return [_version_record(r) for r in rows]

    def get_version(self, name: str, version: int | None) -> VersionRecord:
        """The given version (``None``: the latest), which must not have been collected."""
        self.get_dataset(name)
        history = self.versions(name)
        if not history:
            raise VersionNotFoundError(
                f"dataset {name!r} has no versions",
                fix=f"add data with `keel data add {name} FILE`",
            )
        if version is None:
            return history[-1]
        for record in history:
            if record.version == version:
                if record.status != "active":
                    raise VersionNotFoundError(
                        f"{name}@{version} was removed by `keel gc`",
                        expected="a version that is still stored",
                        received=f"{name}@{version} (status {record.status})",
                        fix="pin versions you need later with `keel pin dataset:NAME@V` before gc",
                    )
                return record
        raise VersionNotFoundError(
            f"dataset {name!r} has no version {version}",
            expected=f"a version between 1 and {history[-1].version}",
            received=str(version),
            fix=f"see `keel data log {name}` for its versions",
        )

    def mark_collected(self, conn: Connection, name: str, versions: list[int]) -> None:
        if versions:
            conn.execute(
                update(t.dataset_versions)
                .where(t.dataset_versions.c.dataset == name, t.dataset_versions.c.version.in_(versions))
                .values(status="collected")
            )


def _make_engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": 30})

            @event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                cursor = dbapi_conn.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.close()

            return engine
        return create_engine(url, pool_pre_ping=True, connect_args={"connect_timeout": 5})
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise missing_dependency("psycopg", "postgres", "a PostgreSQL catalog") from exc


def _current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()


def _unavailable(url: str, exc: Exception) -> BackendUnavailableError:
    safe = url.split("@")[-1] if "@" in url else url
    return BackendUnavailableError(
        "cannot reach the catalog database",
        expected=f"a reachable database at {safe}",
        received=str(exc).splitlines()[0],
        fix="start the server (or fix `catalog` in keel.toml); the embedded default is sqlite:///.keel/catalog.db",
    )
