"""Operations tables: privacy ledger, monitor profiles and results, alerts, benchmark results.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "privacy_ledger",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.Integer),
        sa.Column("kind", sa.String(32), nullable=False),  # dp-train, dp-synth, federated, ...
        sa.Column("run_id", sa.String(128)),
        sa.Column("epsilon", sa.Float, nullable=False),
        sa.Column("delta", sa.Float, nullable=False),
        sa.Column("accountant", sa.String(32), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_privacy_ledger_dataset", "privacy_ledger", ["dataset"])
    op.create_table(
        "monitor_profiles",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("source", sa.Text, nullable=False),  # dataset ref or request-log window
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),  # serialised mergeable sketches
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_monitor_profiles_monitor", "monitor_profiles", ["monitor"])
    op.create_table(
        "monitor_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("window_start", _TS),
        sa.Column("window_end", _TS),
        sa.Column("check_name", sa.String(128), nullable=False),
        sa.Column("target", sa.String(256)),  # feature, slice or group the value is about
        sa.Column("value", sa.Float),
        sa.Column("p_value", sa.Float),
        sa.Column("alarm", sa.Boolean, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_monitor_results_monitor", "monitor_results", ["monitor"])
    op.create_index("ix_monitor_results_created_at", "monitor_results", ["created_at"])
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("monitor", sa.String(256), nullable=False),
        sa.Column("rule", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("dedup_key", sa.String(512), nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("channels", sa.JSON, nullable=False),
        sa.Column("fired_at", _TS, nullable=False),
    )
    op.create_index("ix_alerts_monitor", "alerts", ["monitor"])
    op.create_index("ix_alerts_dedup_key", "alerts", ["dedup_key"])
    op.create_table(
        "benchmark_results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("model_version", sa.Integer, nullable=False),
        sa.Column("hardware", sa.String(128), nullable=False),
        sa.Column("batch_size", sa.Integer, nullable=False),
        sa.Column("seq_len", sa.Integer),
        sa.Column("p50_ms", sa.Float, nullable=False),
        sa.Column("p90_ms", sa.Float, nullable=False),
        sa.Column("p99_ms", sa.Float, nullable=False),
        sa.Column("throughput", sa.Float, nullable=False),  # predictions per second
        sa.Column("peak_memory_mb", sa.Float),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("cost_per_million", sa.Float),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_benchmark_results_model", "benchmark_results", ["model"])


def downgrade() -> None:
    op.drop_table("benchmark_results")
    op.drop_table("alerts")
    op.drop_table("monitor_results")
    op.drop_table("monitor_profiles")
    op.drop_table("privacy_ledger")
