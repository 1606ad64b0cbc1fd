"""Initial catalog: datasets, versions, lineage nodes and edges, pins.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("table_uri", sa.Text, nullable=False),
        sa.Column("label_column", sa.String(256)),
        sa.Column("time_column", sa.String(256)),
        sa.Column("id_column", sa.String(256)),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("dataset", sa.String(128), sa.ForeignKey("datasets.name"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("delta_version", sa.Integer, nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("operation", sa.String(32), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("row_count", sa.BigInteger, nullable=False),
        sa.Column("schema", sa.JSON, nullable=False),
        sa.Column("profile", sa.JSON, nullable=False),
        sa.Column("parent_version", sa.Integer),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.UniqueConstraint("dataset", "version", name="uq_dataset_version"),
    )
    op.create_table(
        "nodes",
        sa.Column("id", sa.String(512), primary_key=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(256), nullable=False),
        sa.Column("version", sa.Integer),
        sa.Column("attrs", sa.JSON, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_nodes_kind", "nodes", ["kind"])
    op.create_table(
        "edges",
        sa.Column("src", sa.String(512), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("dst", sa.String(512), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("relation", sa.String(64), primary_key=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_table(
        "pins",
        sa.Column("node_id", sa.String(512), sa.ForeignKey("nodes.id"), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("pins", "edges", "nodes", "dataset_versions", "datasets"):
        op.drop_table(table)
