"""Weight initialisers: plain functions that return float32 numpy arrays.

Every draw goes through azuraforge_core's generator (`af.manual_seed` makes layer
construction reproducible). The generator is looked up at call time because
`manual_seed` replaces it.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from azuraforge_core import random as af_random

Shape = tuple[int, ...]


def _rng(rng: Any) -> np.random.Generator:
    return af_random.default_rng() if rng is None else rng


def _check_fan(fan: int, what: str) -> None:
    if fan < 1:
        raise ValueError(f"{what} must be at least 1 to initialise weights, got {fan}")


def zeros(shape: Shape) -> np.ndarray:
    return np.zeros(shape, dtype=np.float32)


def ones(shape: Shape) -> np.ndarray:
    return np.ones(shape, dtype=np.float32)


def uniform(shape: Shape, bound: float, rng: Any = None) -> np.ndarray:
    """U(-bound, bound)."""
    return _rng(rng).uniform(-bound, bound, size=shape).astype(np.float32)


def normal(shape: Shape, std: float = 1.0, rng: Any = None) -> np.ndarray:
    return (_rng(rng).standard_normal(size=shape) * std).astype(np.float32)


def kaiming_uniform(
    shape: Shape, fan_in: int, gain: float = math.sqrt(2.0), rng: Any = None
) -> np.ndarray:
    """He initialisation: keeps activation variance steady through ReLU layers.
    U(-b, b) with b = gain * sqrt(3 / fan_in), so the variance is gain^2 / fan_in."""
    _check_fan(fan_in, "fan_in")
    return uniform(shape, gain * math.sqrt(3.0 / fan_in), rng)


def kaiming_normal(
    shape: Shape, fan_in: int, gain: float = math.sqrt(2.0), rng: Any = None
) -> np.ndarray:
    _check_fan(fan_in, "fan_in")
    return normal(shape, gain / math.sqrt(fan_in), rng)


def glorot_uniform(shape: Shape, fan_in: int, fan_out: int, rng: Any = None) -> np.ndarray:
    """Glorot/Xavier: U(-b, b) with b = sqrt(6 / (fan_in + fan_out)), suited to tanh/sigmoid."""
    _check_fan(fan_in, "fan_in")
    _check_fan(fan_out, "fan_out")
    return uniform(shape, math.sqrt(6.0 / (fan_in + fan_out)), rng)


def orthogonal(rows: int, cols: int, gain: float = 1.0, rng: Any = None) -> np.ndarray:
    """A (rows, cols) matrix with orthonormal rows or columns (whichever are fewer).

    Recurrent weights start orthogonal so repeated multiplication neither blows up nor
    shrinks the hidden state early in training."""
    _check_fan(rows, "rows")
    _check_fan(cols, "cols")
    a = _rng(rng).standard_normal(size=(max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))  # makes the result uniformly distributed over orthogonal matrices
    if rows < cols:
        q = q.T
    return (gain * q).astype(np.float32)


__all__ = [
    "glorot_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "normal",
    "ones",
    "orthogonal",
    "uniform",
    "zeros",
]
