"""The engine's random source: one seedable numpy Generator for dropout and initialisers."""

from __future__ import annotations

from typing import Any

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the default generator (dropout masks, layer initialisation) and return it."""
    global _rng
    _rng = np.random.default_rng(seed)
    return _rng


def default_rng() -> np.random.Generator:
    return _rng


def uniform(shape: tuple[int, ...], rng: Any = None) -> np.ndarray:
    gen = _rng if rng is None else rng
    return gen.random(shape, dtype=np.float32)
