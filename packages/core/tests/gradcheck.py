"""Gradient-check helpers for the tests: `check_op` plus input makers that avoid kinks.

The checking itself lives in `azuraforge_core.testing` so other packages can use it
without importing these tests; this module adds inputs suited to finite differences:
values kept away from zero (relu, abs, division), positive values (log, sqrt, pow) and
well-separated distinct values (max, min, max-pooling, maximum), so a perturbation of
`eps` never crosses a point where the op is not differentiable.
"""

from __future__ import annotations

import numpy as np

from azuraforge_core.testing import assert_grad_close, check_op, numerical_grad

__all__ = [
    "assert_grad_close",
    "away_from_zero",
    "check_op",
    "distinct",
    "numerical_grad",
    "positive",
    "randn",
]


def randn(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape)


def positive(
    rng: np.random.Generator, *shape: int, low: float = 0.5, high: float = 2.0
) -> np.ndarray:
    return rng.uniform(low, high, size=shape)


def away_from_zero(rng: np.random.Generator, *shape: int, margin: float = 0.2) -> np.ndarray:
    """Random signs, magnitudes in [margin, margin + |N(0, 1)|]."""
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return sign * (margin + np.abs(rng.standard_normal(shape)))


def distinct(
    rng: np.random.Generator, *shape: int, spacing: float = 0.1, offset: float = 0.0
) -> np.ndarray:
    """All values different by at least `spacing`: a shuffled grid k * spacing + offset.

    Two arrays made with offsets 0 and spacing / 2 never come closer than spacing / 2.
    """
    n = int(np.prod(shape, dtype=np.int64))
    values = (rng.permutation(n) - n // 2) * spacing + offset  # integer multiples of spacing
    return values.reshape(shape).astype(np.float64)
