"""Per-block metric summaries, so a long series downsamples without reading every point.

`metric_blocks` holds, for each run of BLOCK (16) consecutive steps of a series, its point
count, its finite-value count and the (value, step) of its minimum and maximum. On PostgreSQL,
statement-level triggers on `metrics` keep it exact (every insert, upsert, update and delete
recomputes the blocks it touched, once per statement, so a bulk COPY costs one pass); existing
points are summarised here. SQLite downsamples in Python and leaves the table empty.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# step >> 4 is floor(step / 16), also for negative steps; must match models.METRIC_BLOCK_SHIFT
_UPSERT_BLOCKS = """
    INSERT INTO metric_blocks AS b
        (experiment_id, name, block, points, finite, min_value, min_step, max_value, max_step)
    SELECT k.experiment_id, k.name, k.block, s.points, s.finite,
           s.lo[1], s.lo[2]::bigint, s.hi[1], s.hi[2]::bigint
    FROM (SELECT DISTINCT experiment_id, name, step >> 4 AS block FROM {rows}) AS k
    CROSS JOIN LATERAL (
        SELECT count(*) AS points, count(m.value) AS finite,
               min(ARRAY[m.value, m.step]) FILTER (WHERE m.value IS NOT NULL) AS lo,
               max(ARRAY[m.value, m.step]) FILTER (WHERE m.value IS NOT NULL) AS hi
        FROM metrics AS m
        WHERE m.experiment_id = k.experiment_id AND m.name = k.name
          AND m.step >= k.block * 16 AND m.step < k.block * 16 + 16
    ) AS s
    WHERE s.points > 0
    ON CONFLICT (experiment_id, name, block) DO UPDATE SET
        points = excluded.points, finite = excluded.finite,
        min_value = excluded.min_value, min_step = excluded.min_step,
        max_value = excluded.max_value, max_step = excluded.max_step
"""

_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION azf_metric_blocks_written() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    {_UPSERT_BLOCKS.format(rows="new_rows")};
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION azf_metric_blocks_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM metric_blocks AS b
    USING (SELECT DISTINCT experiment_id, name, step >> 4 AS block FROM old_rows) AS k
    WHERE b.experiment_id = k.experiment_id AND b.name = k.name AND b.block = k.block;
    {_UPSERT_BLOCKS.format(rows="old_rows")};
    RETURN NULL;
END $$;
"""

_TRIGGERS = """
CREATE TRIGGER azf_metric_blocks_insert AFTER INSERT ON metrics
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION azf_metric_blocks_written();
CREATE TRIGGER azf_metric_blocks_update AFTER UPDATE ON metrics
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION azf_metric_blocks_written();
CREATE TRIGGER azf_metric_blocks_delete AFTER DELETE ON metrics
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION azf_metric_blocks_deleted();
"""


def upgrade() -> None:
    op.create_table(
        "metric_blocks",
        sa.Column("experiment_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("finite", sa.Integer(), nullable=False),
        sa.Column("min_value", sa.Float(), nullable=True),
        sa.Column("min_step", sa.BigInteger(), nullable=True),
        sa.Column("max_value", sa.Float(), nullable=True),
        sa.Column("max_step", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name="fk_metric_blocks_experiment_id_experiments",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "name", "block", name="pk_metric_blocks"),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(_FUNCTIONS)
    op.execute(_TRIGGERS)
    # summarise the points already stored
    op.execute(
        """
        INSERT INTO metric_blocks
            (experiment_id, name, block, points, finite, min_value, min_step, max_value, max_step)
        SELECT experiment_id, name, block, count(*), count(value),
               (min(a) FILTER (WHERE value IS NOT NULL))[1],
               (min(a) FILTER (WHERE value IS NOT NULL))[2]::bigint,
               (max(a) FILTER (WHERE value IS NOT NULL))[1],
               (max(a) FILTER (WHERE value IS NOT NULL))[2]::bigint
        FROM (SELECT experiment_id, name, step >> 4 AS block, value, ARRAY[value, step] AS a
              FROM metrics) AS m
        GROUP BY experiment_id, name, block
        """
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS azf_metric_blocks_insert ON metrics")
        op.execute("DROP TRIGGER IF EXISTS azf_metric_blocks_update ON metrics")
        op.execute("DROP TRIGGER IF EXISTS azf_metric_blocks_delete ON metrics")
        op.execute("DROP FUNCTION IF EXISTS azf_metric_blocks_written()")
        op.execute("DROP FUNCTION IF EXISTS azf_metric_blocks_deleted()")
    op.drop_table("metric_blocks")
