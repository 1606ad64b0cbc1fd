"""The Alembic migrations create exactly the tables of catalog_schema.py, on SQLite and PostgreSQL."""

from __future__ import annotations

from importlib import resources

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from keelml.core import catalog_schema
from keelml.core.catalog import HEAD_REVISION, Catalog


def _is_server_default_only(diff: object) -> bool:
    # ("modify_default", ...) entries are nested in a list per column; ignore those alone.
    if isinstance(diff, list):
        return all(isinstance(d, tuple) and d[0] == "modify_default" for d in diff)
    return isinstance(diff, tuple) and diff[0] == "modify_default"


def test_migrated_database_matches_the_schema_module(catalog_url: str) -> None:
    catalog = Catalog(catalog_url)
    try:
        with catalog.engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            diffs = compare_metadata(context, catalog_schema.metadata)
    finally:
        catalog.close()
    real = [d for d in diffs if not _is_server_default_only(d)]
    assert real == [], f"catalog_schema.py and the migrations differ: {real}"


def test_migrations_create_exactly_the_schema_tables_and_are_idempotent(catalog_url: str) -> None:
    first = Catalog(catalog_url)
    first.close()
    second = Catalog(catalog_url)  # opening again must not re-run or fail
    try:
        with second.engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    finally:
        second.close()
    assert tables == set(catalog_schema.metadata.tables) | {"alembic_version"}
    assert revision == [HEAD_REVISION]


def test_head_revision_constant_matches_the_migration_scripts() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("keelml.core") / "migrations"))
    script = ScriptDirectory.from_config(cfg)
    assert script.get_heads() == [HEAD_REVISION]
