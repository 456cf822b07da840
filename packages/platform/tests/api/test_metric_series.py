"""The metrics endpoint's series: PostgreSQL's in-SQL reduction (from block summaries or from
the points) picks exactly the points a plain Python reading of the same bucketing picks, and
its hand-assembled JSON is a valid `MetricsPublic`."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from azuraforge_platform.api.metric_series import SHORT, metric_series_json
from azuraforge_platform.api.schemas import MetricSeries
from azuraforge_platform.store import ExperimentStore, MetricValue
from azuraforge_platform.store.tables import METRIC_BLOCK


def reference(points: list[tuple[int, float | None]], max_points: int) -> list[tuple[int, float]]:
    """Buckets of steps as the SQL forms them; per bucket the (value, step)-smallest and
    -largest finite points, all in step order."""
    steps = [s for s, _ in points]
    lo, span = min(steps), max(steps) - min(steps) + 1
    buckets = max(1, max_points // 2)
    coarse = span >= buckets * 2 * METRIC_BLOCK
    chosen: dict[int, tuple[tuple[float, int], tuple[float, int]]] = {}
    for step, value in points:
        if value is None:
            continue
        start = max((step // METRIC_BLOCK) * METRIC_BLOCK, lo) if coarse else step
        g = (start - lo) * buckets // span
        low, high = chosen.get(g, ((value, step), (value, step)))
        chosen[g] = (min(low, (value, step)), max(high, (value, step)))
    kept = {(s, v) for pair in chosen.values() for v, s in pair}
    return sorted(kept)


def _series(
    store: ExperimentStore, exp_id: str, max_points: int, name: str | None = None
) -> dict[str, MetricSeries]:
    raw = metric_series_json(store, exp_id, [name] if name else None, max_points)
    return {s.name: s for s in (MetricSeries.model_validate_json(b) for b in raw)}


# db_url on PostgreSQL only: it empties the database after each test
on_postgres = pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)


@pytest.mark.integration
@on_postgres
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sql_reduction_matches_the_python_reference(db_url: str, tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    store = ExperimentStore(db_url, tmp_path)
    exp = store.create(pipeline_id="alpha", config={})
    first = rng.randrange(-50, 50)  # negative steps too: blocks are floor(step / 16)
    steps = sorted(rng.sample(range(first, first + 40_000), 12_000))  # gaps between steps
    points: list[tuple[int, float | None]] = []
    for step in steps:
        r = rng.random()
        value = None if r < 0.02 else float(rng.randrange(50)) if r < 0.3 else rng.gauss(0, 1e3)
        points.append((step, value))  # repeated values: ties break by step, as in SQL
    points += [(s, None) for s in range(first + 40_000, first + 40_100)]  # an all-NaN stretch
    store.append_metrics(
        exp.id, [MetricValue("loss", s, math.nan if v is None else v) for s, v in points]
    )
    store.append_metrics(exp.id, [MetricValue("acc", s, s / 10) for s in range(20)])
    # 2 and 3: one bucket; 100: coarse (block summaries); 3000: fine (the points themselves)
    for max_points in (2, 3, 100, 1000, 3000):
        series = _series(store, exp.id, max_points)
        loss = series["loss"]
        assert loss.downsampled and loss.total_points == len(points)
        assert list(zip(loss.steps, loss.values, strict=True)) == reference(points, max_points)
        assert len(loss.steps) <= max_points and loss.epochs == [None] * len(loss.steps)
        assert series["acc"].steps[-1] == 19  # a short series beside it stays whole...
        assert not series["acc"].downsampled or max_points < 20  # ...unless asked smaller
    # asked for more points than there are: every point, with its epoch
    whole = _series(store, exp.id, 100_000, "loss")["loss"]
    assert not whole.downsampled and len(whole.steps) == len(points)
    store.close()


@pytest.mark.integration
@on_postgres
def test_a_sparse_long_span_keeps_every_point_and_its_epoch(db_url: str, tmp_path: Path) -> None:
    store = ExperimentStore(db_url, tmp_path)
    exp = store.create(pipeline_id="alpha", config={})
    steps = [i * 1000 for i in range(50)]  # spans 49,001 steps with 50 points
    assert steps[-1] > SHORT
    store.append_metrics(exp.id, [MetricValue("lr", s, 0.1, epoch=s // 1000) for s in steps])
    lr = _series(store, exp.id, 200)["lr"]
    assert lr.steps == steps and lr.epochs == list(range(50)) and not lr.downsampled
    assert _series(store, exp.id, 200, "nothing") == {}
    store.close()


def test_the_spliced_response_is_valid_json(tmp_path: Path) -> None:
    store = ExperimentStore(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    exp = store.create(pipeline_id="alpha", config={})
    store.append_metrics(exp.id, [MetricValue('we"ird', 1, 0.5), MetricValue("x", 2, math.inf)])
    raw = metric_series_json(store, exp.id, None, 10)
    assert [json.loads(b)["name"] for b in raw] == ['we"ird', "x"]
    assert json.loads(raw[1])["values"] == [None]
    store.close()


@pytest.mark.integration
@on_postgres
@pytest.mark.parametrize("max_points", [100, 2000])  # block summaries, then the points
def test_steps_written_after_the_span_was_read_add_no_buckets(
    db_url: str, tmp_path: Path, max_points: int
) -> None:
    """A live run keeps writing between the span query and the reduction: the reduction
    stays within the span it was given, so the answer stays within max_points."""
    from sqlalchemy import text

    from azuraforge_platform.api.metric_series import _reduce

    store = ExperimentStore(db_url, tmp_path)
    exp = store.create(pipeline_id="alpha", config={})
    store.append_metrics(exp.id, [MetricValue("loss", s, (s * 7919) % 1000) for s in range(20_000)])
    with store.engine.connect() as conn:  # as if read when the run had reached step 9,999
        raw = _reduce(conn, exp.id, "loss", 0, 9_999, max_points)
        stored = conn.execute(text("SELECT count(*) FROM metrics")).scalar_one()
    assert raw is not None and stored == 20_000
    series = MetricSeries.model_validate_json(raw)
    assert len(series.steps) <= max_points and series.total_points <= 10_000 + 15
    assert max(series.steps) < 10_000 + 16
    store.close()
