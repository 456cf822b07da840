"""Keyset pages at 100,000 experiments on a real PostgreSQL: a deep page (either way, with a
filter) reads the index from the cursor on, never sorts every row, and the estimated total
comes from a capped count and the planner. The plans are checked, not timed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, text

from azuraforge_platform.store import ExperimentStore

pytestmark = pytest.mark.integration

ROWS = 100_000


@pytest.fixture
def big_store(store: ExperimentStore) -> ExperimentStore:
    """100,000 experiments in one statement; every tenth running, the rest succeeded."""
    with store.engine.begin() as conn:
        conn.execute(
            text(
                """
                INSERT INTO experiments (id, name, pipeline_id, config, status, created_at,
                                         updated_at, attempts, max_attempts, last_event_seq)
                SELECT md5(i::text), 'run ' || i, 'p' || (i % 3), '{}'::json,
                       CASE WHEN i % 10 = 0 THEN 'running' ELSE 'succeeded' END,
                       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second',
                       timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second',
                       1, 1, 0
                FROM generate_series(1, :rows) AS i
                """
            ),
            {"rows": ROWS},
        )
        conn.execute(text("ANALYZE experiments"))
    return store


@pytest.fixture
def statements(big_store: ExperimentStore) -> Iterator[list[tuple[str, Any]]]:
    """The SQL the store sends (with its parameters), to EXPLAIN afterwards."""
    sent: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        sent.append((statement, parameters))

    event.listen(big_store.engine, "before_cursor_execute", record)
    yield sent
    event.remove(big_store.engine, "before_cursor_execute", record)


def _plan_nodes(store: ExperimentStore, statement: str, parameters: Any) -> list[dict[str, Any]]:
    with store.engine.connect() as conn:
        plan = conn.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters).scalar_one()
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def _page_query(sent: list[tuple[str, Any]]) -> tuple[str, Any]:
    """The statement that read the page's rows (not the tags, not a count)."""
    pages = [(s, p) for s, p in sent if "FROM experiments" in s and "ORDER BY" in s]
    assert len(pages) == 1, [s for s, _ in sent]
    return pages[0]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("filters", "index"),
    [({}, "ix_experiments_created"), ({"status": "running"}, "ix_experiments_status_created")],
)
def test_a_deep_keyset_page_reads_the_index_from_the_cursor(
    big_store: ExperimentStore,
    statements: list[tuple[str, Any]],
    filters: dict[str, Any],
    index: str,
) -> None:
    depth = 9_000 if filters else 90_000
    deep = big_store.list_experiments(limit=50, offset=depth, **filters)
    after = big_store.list_experiments(limit=50, offset=depth + 50, **filters)
    assert deep.next_cursor is not None
    for cursor, expected, direction in (
        (deep.next_cursor, after, "Backward"),  # newest first: the index read backwards
        (after.prev_cursor, deep, "Forward"),  # the page before: the same index, forwards
    ):
        statements.clear()
        page = big_store.list_experiments(limit=50, cursor=cursor, **filters)
        assert [e.id for e in page.items] == [e.id for e in expected.items]
        nodes = _plan_nodes(big_store, *_page_query(statements))
        kinds = [n["Node Type"] for n in nodes]
        assert "Sort" not in kinds and "Seq Scan" not in kinds, kinds
        scans = [n for n in nodes if n["Node Type"] in ("Index Scan", "Index Only Scan")]
        assert [(n["Index Name"], n["Scan Direction"]) for n in scans] == [(index, direction)]
        # the cursor bounds the scan itself: it starts there instead of skipping rows
        # the cursor bounds the scan itself: it starts there instead of skipping rows
        assert "ROW(created_at, (id)::text) " in scans[0]["Index Cond"], scans[0]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_estimated_total_at_100000_rows(big_store: ExperimentStore) -> None:
    everything = big_store.list_experiments(limit=50, estimate_total=True)
    assert everything.estimate_exact is False and everything.estimated_total is not None
    assert 50_000 <= everything.estimated_total <= 200_000  # the planner's figure, not a count
    # a filter that matches few enough is counted exactly
    running = big_store.list_experiments(limit=50, status="running", estimate_total=True)
    assert (running.estimated_total, running.estimate_exact) == (ROWS // 10, True)
