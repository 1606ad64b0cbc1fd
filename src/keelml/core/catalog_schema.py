"""The catalog's tables (SQLAlchemy Core). Alembic migrations in migrations/ create exactly these;
tests/core/test_migrations.py checks that the two never drift apart."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

datasets = Table(
    "datasets",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("table_uri", Text, nullable=False),
    Column("label_column", String(256)),
    Column("time_column", String(256)),
    Column("id_column", String(256)),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(128), ForeignKey("datasets.name"), nullable=False),
    Column("version", Integer, nullable=False),
    Column("delta_version", Integer, nullable=False),
    Column("digest", String(80), nullable=False),
    Column("operation", String(32), nullable=False),
    Column("source", Text),
    Column("row_count", BigInteger, nullable=False),
    Column("schema", JSON, nullable=False),
    Column("profile", JSON, nullable=False),
    Column("parent_version", Integer),
    Column("status", String(16), nullable=False, default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("dataset", "version", name="uq_dataset_version"),
)

nodes = Table(
    "nodes",
    metadata,
    Column("id", String(512), primary_key=True),
    Column("kind", String(32), nullable=False, index=True),
    Column("name", String(256), nullable=False),
    Column("version", Integer),
    Column("attrs", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

edges = Table(
    "edges",
    metadata,
    Column("src", String(512), ForeignKey("nodes.id"), primary_key=True),
    Column("dst", String(512), ForeignKey("nodes.id"), primary_key=True),
    Column("relation", String(64), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

pins = Table(
    "pins",
    metadata,
    Column("node_id", String(512), ForeignKey("nodes.id"), primary_key=True),
    Column("reason", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
