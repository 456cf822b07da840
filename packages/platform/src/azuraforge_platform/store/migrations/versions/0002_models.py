"""Registered models (a named artifact of a finished experiment, served by the predict API),
and a covering index that lets metric series be read and downsampled from the index alone.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("pipeline_id", sa.String(100), nullable=False),
        sa.Column("pipeline_version", sa.String(50), nullable=True),
        sa.Column("artifact_path", sa.String(500), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_models_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("name", name="pk_models"),
    )
    op.create_index("ix_models_experiment", "models", ["experiment_id"])
    op.create_index(
        "ix_metrics_series",
        "metrics",
        ["experiment_id", "name", "step"],
        postgresql_include=["value", "epoch"],
    )


def downgrade() -> None:
    op.drop_index("ix_metrics_series", table_name="metrics")
    op.drop_index("ix_models_experiment", table_name="models")
    op.drop_table("models")
