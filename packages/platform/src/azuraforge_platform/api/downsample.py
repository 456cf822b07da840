"""Server-side downsampling of metric series that keeps the peaks: each bucket of steps
contributes its minimum and its maximum (in step order), plus the first and last points, so a
spike or a divergence is never averaged away."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Point", "minmax_downsample"]

Point = tuple[int, float | None, int | None]  # (step, value or None for NaN/inf, epoch)


def minmax_downsample(points: Sequence[Point], max_points: int) -> list[Point]:
    """At most `max_points` of `points` (sorted by step): min and max of each bucket of
    consecutive points. Points with a None value are kept only when there is room."""
    n = len(points)
    if n <= max_points:
        return list(points)
    if max_points < 4:
        return [points[0], points[-1]][:max_points]
    buckets = (max_points - 2) // 2
    chosen: set[int] = {0, n - 1}
    inner = n - 2
    for b in range(buckets):
        lo = 1 + (b * inner) // buckets
        hi = 1 + ((b + 1) * inner) // buckets
        lo_i = hi_i = -1
        for i in range(lo, hi):
            value = points[i][1]
            if value is None:
                continue
            if lo_i < 0 or value < points[lo_i][1]:  # type: ignore[operator]
                lo_i = i
            if hi_i < 0 or value > points[hi_i][1]:  # type: ignore[operator]
                hi_i = i
        if lo_i >= 0:
            chosen.add(lo_i)
            chosen.add(hi_i)
        elif hi > lo:
            chosen.add(lo)  # an all-NaN bucket still shows up as a gap
    return [points[i] for i in sorted(chosen)]
