"""Min/max downsampling keeps every peak and the ends."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from azuraforge_platform.api.downsample import minmax_downsample


def test_a_spike_survives() -> None:
    points = [(i, 1.0, None) for i in range(10_000)]
    points[6789] = (6789, 50.0, None)
    points[1234] = (1234, -50.0, None)
    kept = minmax_downsample(points, 100)
    assert len(kept) <= 100
    assert (6789, 50.0, None) in kept and (1234, -50.0, None) in kept
    assert kept[0][0] == 0 and kept[-1][0] == 9999
    assert [p[0] for p in kept] == sorted(p[0] for p in kept)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=400),
    st.integers(2, 120),
)
def test_bounded_ordered_subset_with_extremes(values: list[float | None], max_points: int) -> None:
    points = [(i, v, None) for i, v in enumerate(values)]
    kept = minmax_downsample(points, max_points)
    assert len(kept) <= max(max_points, 0) or len(kept) == len(points) <= max_points
    assert len(kept) <= max_points
    assert all(p in points for p in kept)
    assert [p[0] for p in kept] == sorted({p[0] for p in kept})
    finite = [v for v in values if v is not None]
    if finite and max_points >= 4:
        kept_values = [p[1] for p in kept if p[1] is not None]
        assert max(finite) in kept_values and min(finite) in kept_values
