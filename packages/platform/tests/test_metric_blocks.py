"""The per-block metric summaries (migration 0003) stay exact through every kind of write, and
the listing's Core query hands out the same records as `get`."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from azuraforge_platform.store import ExperimentStore, MetricValue

# What the triggers must keep equal to: the blocks recomputed from the points themselves.
_FROM_POINTS = """
    SELECT experiment_id, name, step >> 4 AS block, count(*) AS points, count(value) AS finite,
           (min(ARRAY[value, step]) FILTER (WHERE value IS NOT NULL))[1],
           (min(ARRAY[value, step]) FILTER (WHERE value IS NOT NULL))[2]::bigint,
           (max(ARRAY[value, step]) FILTER (WHERE value IS NOT NULL))[1],
           (max(ARRAY[value, step]) FILTER (WHERE value IS NOT NULL))[2]::bigint
    FROM metrics GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
"""
_STORED = """
    SELECT experiment_id, name, block, points, finite, min_value, min_step, max_value, max_step
    FROM metric_blocks ORDER BY 1, 2, 3
"""


def _blocks_match(store: ExperimentStore) -> list[tuple[object, ...]]:
    with store.engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(text(_STORED))]
        assert stored == [tuple(r) for r in conn.execute(text(_FROM_POINTS))]
    return stored


@pytest.mark.integration
def test_metric_blocks_follow_inserts_upserts_and_deletes(
    postgres_url: str, tmp_path: Path
) -> None:
    store = ExperimentStore(postgres_url, tmp_path)
    try:
        with store.engine.begin() as conn:
            conn.execute(text("TRUNCATE experiments CASCADE"))
        a = store.create(pipeline_id="p", config={})
        b = store.create(pipeline_id="p", config={})
        points = [MetricValue("loss", s, 1.0 / (10 + s)) for s in range(-5, 100)]
        points[40] = MetricValue("loss", 35, 50.0)  # the peak of block 2
        points[7] = MetricValue("loss", 2, float("nan"))
        store.append_metrics(a.id, points)
        store.append_metrics(b.id, [MetricValue("acc", 3, 0.5)])
        blocks = _blocks_match(store)
        peak = next(r for r in blocks if r[0] == a.id and r[2] == 2)
        assert peak[7:] == (50.0, 35)
        assert any(r[0] == a.id and r[2] == -1 for r in blocks)  # step -5 .. -1: floor division
        # an upsert that replaces the peak with a small value must move the block's max
        store.append_metrics(a.id, [MetricValue("loss", 35, -1.0)])
        peak = next(r for r in _blocks_match(store) if r[0] == a.id and r[2] == 2)
        assert peak[5:7] == (-1.0, 35) and peak[7] != 50.0
        # a block whose points are all NaN keeps its count and has no extremes
        store.append_metrics(b.id, [MetricValue("nan", s, float("nan")) for s in range(3)])
        nan_block = next(r for r in _blocks_match(store) if r[1] == "nan")
        assert nan_block[3:] == (3, 0, None, None, None, None)
        store.delete(a.id)
        assert {r[0] for r in _blocks_match(store)} == {b.id}
    finally:
        store.close()


def test_listing_returns_the_same_records_as_get(db_url: str, tmp_path: Path) -> None:
    store = ExperimentStore(db_url, tmp_path)
    try:
        for i in range(5):
            store.create(
                pipeline_id="listing",
                config={"i": i, "nested": {"x": [1, 2]}},
                name=f"run {i}",
                tags=["z", "a"] if i % 2 else [],
            )
        page = store.list_experiments(pipeline_id="listing", limit=3)
        rest = store.list_experiments(pipeline_id="listing", limit=3, cursor=page.next_cursor)
        listed = page.items + rest.items
        assert len(listed) == 5 and rest.next_cursor is None
        assert listed == [store.get(r.id) for r in listed]
        assert sorted(len(r.tags) for r in listed) == [0, 0, 0, 2, 2]
        assert all(r.tags in ([], ["a", "z"]) for r in listed)
    finally:
        store.close()
