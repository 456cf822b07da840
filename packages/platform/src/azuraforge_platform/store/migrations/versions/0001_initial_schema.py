"""Initial schema: experiments, tags, metrics, logs, events, artifacts.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the column types (a migration must not change when tables.py does).
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # SQLite rowid alias


def _fk_experiment(table: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["experiment_id"],
        ["experiments.id"],
        name=f"fk_{table}_experiment_id_experiments",
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("pipeline_id", sa.String(100), nullable=False),
        sa.Column("pipeline_version", sa.String(50), nullable=True),
        sa.Column("config", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.Column("started_at", TIME, nullable=True),
        sa.Column("finished_at", TIME, nullable=True),
        sa.Column("heartbeat_at", TIME, nullable=True),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("summary", JSON, nullable=True),
        sa.Column("parent_id", sa.String(32), nullable=True),
        sa.Column("last_event_seq", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', "
            "'cancelling', 'lost')",
            name="ck_experiments_status",
        ),
        sa.CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="ck_experiments_attempts"),
        sa.ForeignKeyConstraint(
            ["parent_id"],
            ["experiments.id"],
            name="fk_experiments_parent_id_experiments",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_experiments"),
    )
    op.create_index("ix_experiments_created", "experiments", ["created_at", "id"])
    op.create_index("ix_experiments_name", "experiments", ["name", "id"])
    op.create_index("ix_experiments_parent", "experiments", ["parent_id"])
    op.create_index(
        "ix_experiments_pipeline_created", "experiments", ["pipeline_id", "created_at", "id"]
    )
    op.create_index("ix_experiments_status_created", "experiments", ["status", "created_at", "id"])

    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("tag", sa.String(100), nullable=False),
        _fk_experiment("experiment_tags"),
        sa.PrimaryKeyConstraint("experiment_id", "tag", name="pk_experiment_tags"),
    )
    op.create_index("ix_experiment_tags_tag", "experiment_tags", ["tag", "experiment_id"])

    op.create_table(
        "metrics",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),  # NULL = NaN/inf
        sa.Column("time", TIME, nullable=False),
        _fk_experiment("metrics"),
        sa.PrimaryKeyConstraint("id", name="pk_metrics"),
        sa.UniqueConstraint(
            "experiment_id", "name", "step", name="uq_metrics_experiment_id_name_step"
        ),
    )

    op.create_table(
        "logs",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("time", TIME, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        _fk_experiment("logs"),
        sa.PrimaryKeyConstraint("id", name="pk_logs"),
    )
    op.create_index("ix_logs_experiment", "logs", ["experiment_id", "id"])

    op.create_table(
        "events",
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("time", TIME, nullable=False),
        _fk_experiment("events"),
        sa.PrimaryKeyConstraint("experiment_id", "seq", name="pk_events"),
    )

    op.create_table(
        "artifacts",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        _fk_experiment("artifacts"),
        sa.PrimaryKeyConstraint("id", name="pk_artifacts"),
        sa.UniqueConstraint("experiment_id", "path", name="uq_artifacts_experiment_id_path"),
    )


def downgrade() -> None:
    for table in ("artifacts", "events", "logs", "metrics", "experiment_tags", "experiments"):
        op.drop_table(table)
