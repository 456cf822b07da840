"""Metric series for the metrics endpoint, downsampled on the server and returned as the JSON
of `MetricSeries` objects (bytes): the endpoint splices them into its response.

SQLite (local, no round trips) fetches every point and downsamples in Python. PostgreSQL
first reads each series' first and last step (index lookups): short runs are fetched whole in
one query; a long series is reduced in SQL to at most `max_points` points, which come back as
JSON number lists ready to send, because decoding and re-encoding thousands of floats in the
API process (one core, the bottleneck under load) cost more than the query itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import String

from azuraforge_platform.api.downsample import Point, minmax_downsample
from azuraforge_platform.api.schemas import MetricSeries
from azuraforge_platform.store import ExperimentStore
from azuraforge_platform.store.tables import METRIC_BLOCK, MetricPoint

__all__ = ["metric_series_json"]

SHORT = 5000  # steps spanned by all series together, up to which a run is fetched whole

# Per bucket of steps, the point with the smallest and the one with the largest value (ARRAY
# comparison orders by value, then step) and the bucket's point count. Coarse buckets (each
# spanning at least two blocks of METRIC_BLOCK steps) come from the trigger-maintained block
# summaries: a bucket is a run of whole blocks, and the min/max of its blocks' extremes are
# exactly its own, so peaks survive while ~1/16 of the rows are read. Finer buckets read the
# covering index ix_metrics_series.
_BLOCK_BUCKETS = """
    SELECT (greatest(block * :block, :lo) - :lo) * :buckets / :span AS g,
           min(ARRAY[min_value, min_step]) FILTER (WHERE finite > 0) AS lo,
           max(ARRAY[max_value, max_step]) FILTER (WHERE finite > 0) AS hi,
           sum(points) AS total
    FROM metric_blocks
    WHERE experiment_id = :id AND name = :name AND block * :block <= :hi
    GROUP BY g
"""
_POINT_BUCKETS = """
    SELECT (step - :lo) * :buckets / :span AS g,
           min(ARRAY[value, step]) FILTER (WHERE value IS NOT NULL) AS lo,
           max(ARRAY[value, step]) FILTER (WHERE value IS NOT NULL) AS hi,
           count(*) AS total
    FROM metrics
    WHERE experiment_id = :id AND name = :name AND step <= :hi
    GROUP BY g
"""
# Buckets in step order, and within one its two points in step order (one when the minimum
# and the maximum are the same point): the lists come out sorted without a sort of the points.
# float8 prints the shortest text that reads back exactly, a valid JSON number (no NaN or
# infinity reaches here: they are stored as NULL).
_REDUCE = """
    WITH b AS ({buckets})
    SELECT sum(total)::bigint AS total,
           sum(CASE WHEN lo IS NULL THEN 0 WHEN lo[2] = hi[2] THEN 1 ELSE 2 END)::bigint AS kept,
           string_agg(CASE WHEN lo[2] < hi[2] THEN lo[2]::bigint || ',' || hi[2]::bigint
                           WHEN lo[2] > hi[2] THEN hi[2]::bigint || ',' || lo[2]::bigint
                           ELSE lo[2]::bigint::text END, ',' ORDER BY g) AS steps,
           string_agg(CASE WHEN lo[2] < hi[2] THEN lo[1] || ',' || hi[1]
                           WHEN lo[2] > hi[2] THEN hi[1] || ',' || lo[1]
                           ELSE lo[1]::text END, ',' ORDER BY g) AS vals
    FROM b
"""
_BLOCK_REDUCE = text(_REDUCE.format(buckets=_BLOCK_BUCKETS))
_POINT_REDUCE = text(_REDUCE.format(buckets=_POINT_BUCKETS))

_FIRST_LAST = """
    (SELECT min(m.step) FROM metrics m WHERE m.experiment_id = :id AND m.name = n.name),
    (SELECT max(m.step) FROM metrics m WHERE m.experiment_id = :id AND m.name = n.name)
"""
# Every metric name of an experiment by skipping through the index (no scan of its points).
_ALL_SPANS = text(
    f"""
    WITH RECURSIVE names(name) AS (
        (SELECT name FROM metrics WHERE experiment_id = :id ORDER BY name LIMIT 1)
        UNION ALL
        SELECT (SELECT m.name FROM metrics m
                WHERE m.experiment_id = :id AND m.name > names.name ORDER BY m.name LIMIT 1)
        FROM names WHERE names.name IS NOT NULL
    )
    SELECT n.name, {_FIRST_LAST} FROM names n WHERE n.name IS NOT NULL
    """
)
_NAMED_SPANS = text(
    f"SELECT n.name, {_FIRST_LAST} FROM unnest(:names) AS n(name) ORDER BY n.name"
).bindparams(bindparam("names", type_=postgresql.ARRAY(String())))


def metric_series_json(
    store: ExperimentStore, experiment_id: str, names: Sequence[str] | None, max_points: int
) -> list[bytes]:
    """The JSON of each `MetricSeries` of the experiment (all metrics, or only `names`), in
    name order, each at most `max_points` points that keep every bucket's extremes."""
    with store.engine.connect() as conn:
        if store.dialect != "postgresql":
            grouped = _points(conn, experiment_id, names)
            return [_encode(n, minmax_downsample(p, max_points), len(p)) for n, p in grouped]
        if names:
            rows = conn.execute(_NAMED_SPANS, {"id": experiment_id, "names": sorted(set(names))})
        else:
            rows = conn.execute(_ALL_SPANS, {"id": experiment_id})
        spans = {name: (lo, hi) for name, lo, hi in rows if lo is not None}
        # Steps are unique per series, so a span bounds its point count.
        if sum(hi - lo + 1 for lo, hi in spans.values()) <= SHORT:
            grouped = _points(conn, experiment_id, list(spans)) if spans else []
            return [_encode(n, minmax_downsample(p, max_points), len(p)) for n, p in grouped]
        out = []
        for name, (lo, hi) in sorted(spans.items()):
            reduced = None
            if hi - lo + 1 > max_points:
                reduced = _reduce(conn, experiment_id, name, lo, hi, max_points)
            if reduced is None:  # short enough, or sparse: every point fits
                ((_, points),) = _points(conn, experiment_id, [name])
                reduced = _encode(name, minmax_downsample(points, max_points), len(points))
            out.append(reduced)
        return out


def _reduce(
    conn: Any, experiment_id: str, name: str, lo: int, hi: int, max_points: int
) -> bytes | None:
    """The series reduced in SQL, or None when nothing was left out (then the caller fetches
    the points themselves, with their epochs)."""
    span = hi - lo + 1
    buckets = max(1, max_points // 2)
    coarse = span >= buckets * 2 * METRIC_BLOCK
    # `hi` bounds the buckets: a live run may have written further steps since it was read
    params = {"id": experiment_id, "name": name, "lo": lo, "hi": hi, "span": span,
              "buckets": buckets, "block": METRIC_BLOCK}  # fmt: skip
    query = _BLOCK_REDUCE if coarse else _POINT_REDUCE
    total, kept, steps, values = conn.execute(query, params).one()
    if kept >= total:
        return None
    epochs = ",".join(["null"] * kept)  # block summaries carry no epochs
    return (
        f'{{"name":{json.dumps(name)},"steps":[{steps or ""}],"values":[{values or ""}],'
        f'"epochs":[{epochs}],"total_points":{total},"downsampled":true}}'
    ).encode()


def _points(
    conn: Any, experiment_id: str, names: Sequence[str] | None
) -> list[tuple[str, list[Point]]]:
    """Every point by metric name, in name order (plain tuples, not ORM objects)."""
    query = select(MetricPoint.name, MetricPoint.step, MetricPoint.value, MetricPoint.epoch)
    query = query.where(MetricPoint.experiment_id == experiment_id)
    if names:
        query = query.where(MetricPoint.name.in_(list(names)))
    grouped: dict[str, list[Point]] = {}
    rows = conn.execute(query.order_by(MetricPoint.name, MetricPoint.step))
    for name, step, value, epoch in rows:
        grouped.setdefault(name, []).append((step, value, epoch))
    return list(grouped.items())


def _encode(name: str, points: list[Point], total: int) -> bytes:
    series = MetricSeries(
        name=name,
        steps=[p[0] for p in points],
        values=[p[1] for p in points],
        epochs=[p[2] for p in points],
        total_points=total,
        downsampled=len(points) < total,
    )
    return series.model_dump_json().encode()
