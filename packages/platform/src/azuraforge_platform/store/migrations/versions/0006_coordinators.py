"""Coordinators: runs that start child runs and wait on them (a hyperparameter study). They
are dispatched apart from the worker slots, so a coordinator never holds the slot its own
children need.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "experiments",
        sa.Column("coordinator", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    # the dispatchers' question: the oldest queued runs of one kind
    op.create_index(
        "ix_experiments_status_coordinator_created",
        "experiments",
        ["status", "coordinator", "created_at", "id"],
    )


def downgrade() -> None:
    op.drop_index("ix_experiments_status_coordinator_created", table_name="experiments")
    op.drop_column("experiments", "coordinator")
