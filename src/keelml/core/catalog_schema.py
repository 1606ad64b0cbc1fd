"""The catalog's tables (SQLAlchemy Core). Alembic migrations in migrations/ create exactly these;
tests/core/test_migrations.py checks that the two never drift apart."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
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

# -- operations tables (migration 0002). Each has a JSON ``details`` column: a capability that needs
# more fields puts them there instead of adding a migration of its own.

privacy_ledger = Table(
    "privacy_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dataset", String(128), nullable=False, index=True),
    Column("dataset_version", Integer),
    Column("kind", String(32), nullable=False),  # dp-train, dp-synth, federated, ...
    Column("run_id", String(128)),
    Column("epsilon", Float, nullable=False),
    Column("delta", Float, nullable=False),
    Column("accountant", String(32), nullable=False),
    Column("details", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

monitor_profiles = Table(
    "monitor_profiles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(256), nullable=False, index=True),
    Column("source", Text, nullable=False),  # dataset ref or request-log window
    Column("row_count", BigInteger, nullable=False),
    Column("payload", LargeBinary, nullable=False),  # serialised mergeable sketches
    Column("details", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

monitor_results = Table(
    "monitor_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(256), nullable=False, index=True),
    Column("window_start", DateTime(timezone=True)),
    Column("window_end", DateTime(timezone=True)),
    Column("check_name", String(128), nullable=False),
    Column("target", String(256)),  # feature, slice or group the value is about
    Column("value", Float),
    Column("p_value", Float),
    Column("alarm", Boolean, nullable=False),
    Column("details", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, index=True),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("monitor", String(256), nullable=False, index=True),
    Column("rule", String(128), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("dedup_key", String(512), nullable=False, index=True),
    Column("value", Float),
    Column("message", Text, nullable=False),
    Column("channels", JSON, nullable=False),
    Column("fired_at", DateTime(timezone=True), nullable=False),
)

benchmark_results = Table(
    "benchmark_results",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("model", String(256), nullable=False, index=True),
    Column("model_version", Integer, nullable=False),
    Column("hardware", String(128), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("seq_len", Integer),
    Column("p50_ms", Float, nullable=False),
    Column("p90_ms", Float, nullable=False),
    Column("p99_ms", Float, nullable=False),
    Column("throughput", Float, nullable=False),  # predictions per second
    Column("peak_memory_mb", Float),
    Column("size_bytes", BigInteger),
    Column("cost_per_million", Float),
    Column("details", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)
