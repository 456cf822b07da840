"""LR schedulers: sequences against their formulas, plateau logic, state round trip."""

from __future__ import annotations

import math

import numpy as np
import pytest

from azuraforge_learner import Parameter
from azuraforge_learner.optim import SGD
from azuraforge_learner.schedulers import CosineAnnealingLR, ReduceLROnPlateau, StepLR


def opt(lr: float = 0.1) -> SGD:
    return SGD([Parameter(np.zeros(2))], lr=lr)


def test_step_lr_sequence() -> None:
    o = opt(0.1)
    s = StepLR(o, step_size=3, gamma=0.5)
    lrs = [s.step() for _ in range(10)]
    expected = [0.1 * 0.5 ** ((e + 1) // 3) for e in range(10)]
    np.testing.assert_allclose(lrs, expected)
    assert o.lr == pytest.approx(expected[-1])


def test_cosine_sequence_and_hold_at_min() -> None:
    o = opt(0.2)
    s = CosineAnnealingLR(o, T_max=8, eta_min=0.01)
    lrs = [s.step() for _ in range(12)]
    expected = [
        0.01 + (0.2 - 0.01) * (1 + math.cos(math.pi * min(t, 8) / 8)) / 2 for t in range(1, 13)
    ]
    np.testing.assert_allclose(lrs, expected)
    assert lrs[7] == pytest.approx(0.01) and lrs[-1] == pytest.approx(0.01)


def test_reduce_on_plateau_min_mode() -> None:
    o = opt(1.0)
    s = ReduceLROnPlateau(o, factor=0.5, patience=2, threshold=0.0, min_lr=0.2)
    values = [5, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3]
    lrs = [s.step(v) for v in values]
    # improvements at 5, 4, 3; three non-improving epochs in a row (> patience 2) halve lr
    assert lrs == [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2]


def test_reduce_on_plateau_max_mode_cooldown_and_errors() -> None:
    o = opt(1.0)
    s = ReduceLROnPlateau(o, mode="max", factor=0.1, patience=0, cooldown=1, threshold=0.0)
    lrs = [s.step(v) for v in [0.5, 0.5, 0.5, 0.5]]
    # a bad epoch with patience 0 cuts; the next epoch is in cooldown; then cut again
    assert lrs == pytest.approx([1.0, 0.1, 0.1, 0.01])
    with pytest.raises(ValueError, match="monitored value"):
        s.step()
    with pytest.raises(ValueError, match="mode"):
        ReduceLROnPlateau(o, mode="up")


def test_scheduler_state_round_trip() -> None:
    o1 = opt(0.1)
    s1 = CosineAnnealingLR(o1, T_max=10)
    for _ in range(4):
        s1.step()
    o2 = opt(0.1)
    s2 = CosineAnnealingLR(o2, T_max=10)
    s2.load_state_dict(s1.state_dict())
    o2.lr = o1.lr
    assert [s1.step() for _ in range(3)] == [s2.step() for _ in range(3)]
    p1 = ReduceLROnPlateau(opt(), patience=1)
    p1.step(1.0)
    p1.step(2.0)
    p2 = ReduceLROnPlateau(opt(), patience=1)
    p2.load_state_dict(p1.state_dict())
    assert p2.best == 1.0 and p2.num_bad_epochs == 1
    with pytest.raises(ValueError, match="ReduceLROnPlateau scheduler state into StepLR"):
        StepLR(opt(), step_size=2).load_state_dict(p1.state_dict())
