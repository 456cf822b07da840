"""Indexes for free-text search on PostgreSQL: trigrams of experiment names (pg_trgm, for
`name ILIKE '%term%'`) and id prefixes (`id LIKE 'abc%'`), so a search whose matches are few
and old reads those matches rather than scanning every row. SQLite scans (local, small).

Where the pg_trgm extension cannot be created (a managed server without it, a role without
the right), the migration still succeeds and searches keep working, by scanning.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Not in the SQLAlchemy models: they exist only on PostgreSQL (the schema test knows them).
SEARCH_INDEXES = ("ix_experiments_name_trgm", "ix_experiments_id_prefix")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        """
        DO $$
        BEGIN
            CREATE EXTENSION IF NOT EXISTS pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pg_trgm unavailable (%): searches will scan', SQLERRM;
        END $$
        """
    )
    op.execute(
        """
        DO $$
        BEGIN
            IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
                CREATE INDEX IF NOT EXISTS ix_experiments_name_trgm
                    ON experiments USING gin (name gin_trgm_ops);
            END IF;
        END $$
        """
    )
    op.execute(
        "CREATE INDEX IF NOT EXISTS ix_experiments_id_prefix ON experiments (id varchar_pattern_ops)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name in SEARCH_INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
