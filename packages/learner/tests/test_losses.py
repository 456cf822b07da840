"""Losses: values against numpy formulas, gradients against central finite differences."""

from __future__ import annotations

import numpy as np
import pytest

from azuraforge_core import ShapeError, Tensor
from azuraforge_learner.losses import (
    BCEWithLogitsLoss,
    CrossEntropyLoss,
    HuberLoss,
    L1Loss,
    MSELoss,
    get_loss,
)

RNG = np.random.default_rng(0)


def numeric_grad(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    g = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        hi = f(x)
        x[i] = old - eps
        lo = f(x)
        x[i] = old
        g[i] = (hi - lo) / (2 * eps)
    return g


def check_grads(loss, pred: np.ndarray, target: np.ndarray, wrt_target: bool = True) -> None:
    p = Tensor(pred, requires_grad=True, dtype=np.float64)
    t = Tensor(target, requires_grad=wrt_target, dtype=np.float64)
    loss(p, t).backward()
    num_p = numeric_grad(
        lambda a: loss(Tensor(a, dtype=np.float64), Tensor(target, dtype=np.float64)).item(),
        pred.copy(),
    )
    np.testing.assert_allclose(p.grad.numpy(), num_p, rtol=1e-5, atol=1e-8)
    if wrt_target:
        num_t = numeric_grad(
            lambda a: loss(Tensor(pred, dtype=np.float64), Tensor(a, dtype=np.float64)).item(),
            target.copy(),
        )
        np.testing.assert_allclose(t.grad.numpy(), num_t, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_mse_value_and_grad(reduction: str) -> None:
    p, t = RNG.normal(size=(5, 3)), RNG.normal(size=(5, 3))
    loss = MSELoss(reduction=reduction)
    expected = ((p - t) ** 2).mean() if reduction == "mean" else ((p - t) ** 2).sum()
    assert loss(Tensor(p, dtype=np.float64), t).item() == pytest.approx(expected)
    check_grads(loss, p, t)


def test_l1_value_and_grad() -> None:
    p, t = RNG.normal(size=(4, 2)), RNG.normal(size=(4, 2))
    assert L1Loss()(Tensor(p, dtype=np.float64), t).item() == pytest.approx(np.abs(p - t).mean())
    check_grads(L1Loss(), p, t)


def test_huber_matches_piecewise_formula_and_grad() -> None:
    delta = 0.7
    p = np.array([[-2.0, -0.5, 0.1], [0.69, 1.3, 3.0]])
    t = np.zeros_like(p)
    d = np.abs(p - t)
    expected = np.where(d <= delta, 0.5 * d**2, delta * (d - 0.5 * delta)).mean()
    loss = HuberLoss(delta=delta)
    assert loss(Tensor(p, dtype=np.float64), t).item() == pytest.approx(expected)
    check_grads(loss, p, RNG.normal(size=p.shape) * 0.1)
    with pytest.raises(ValueError, match="delta"):
        HuberLoss(delta=0)


def test_huber_per_element_reduction_none() -> None:
    out = HuberLoss(delta=1.0, reduction="none")(Tensor([0.5, 3.0]), np.array([0.0, 0.0]))
    np.testing.assert_allclose(out.numpy(), [0.125, 2.5])


def test_bce_with_logits_value_grad_and_stability() -> None:
    x = RNG.normal(size=(6, 1)) * 3
    y = (RNG.random((6, 1)) > 0.5).astype(np.float64)
    sig = 1 / (1 + np.exp(-x))
    expected = -(y * np.log(sig) + (1 - y) * np.log(1 - sig)).mean()
    loss = BCEWithLogitsLoss()
    assert loss(Tensor(x, dtype=np.float64), y).item() == pytest.approx(expected)
    check_grads(loss, x, y * 0.8 + 0.1)  # soft labels, gradient w.r.t. both
    # huge logits: finite values and gradients, and the right limits
    big = Tensor(np.array([[1000.0], [-1000.0], [1000.0], [-1000.0]]), requires_grad=True)
    out = BCEWithLogitsLoss(reduction="none")(big, np.array([[1.0], [0.0], [0.0], [1.0]]))
    np.testing.assert_allclose(out.numpy().ravel(), [0.0, 0.0, 1000.0, 1000.0], rtol=1e-6)
    out.sum().backward()
    assert np.all(np.isfinite(big.grad.numpy()))
    np.testing.assert_allclose(big.grad.numpy().ravel(), [0.0, 0.0, 1.0, -1.0], atol=1e-6)


def test_cross_entropy_with_and_without_smoothing() -> None:
    logits = RNG.normal(size=(5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    nll = -logp[np.arange(5), labels]
    assert CrossEntropyLoss()(Tensor(logits, dtype=np.float64), labels).item() == pytest.approx(
        nll.mean()
    )
    eps = 0.1
    smooth = ((1 - eps) * nll - eps * logp.mean(1)).mean()
    ce = CrossEntropyLoss(label_smoothing=eps)
    assert ce(Tensor(logits, dtype=np.float64), labels).item() == pytest.approx(smooth)
    # (N, 1) labels and float labels that are whole numbers are accepted
    assert ce(
        Tensor(logits, dtype=np.float64), labels.reshape(-1, 1).astype(float)
    ).item() == pytest.approx(smooth)
    p = Tensor(logits, requires_grad=True, dtype=np.float64)
    ce(p, labels).backward()
    num = numeric_grad(lambda a: ce(Tensor(a, dtype=np.float64), labels).item(), logits.copy())
    np.testing.assert_allclose(p.grad.numpy(), num, rtol=1e-5, atol=1e-8)


def test_shape_mismatch_is_a_clear_error() -> None:
    with pytest.raises(ShapeError, match=r"reshape the target to \(4, 1\)"):
        MSELoss()(Tensor(np.zeros((4, 1))), np.zeros(4))
    with pytest.raises(ShapeError, match="does not match"):
        BCEWithLogitsLoss()(Tensor(np.zeros((4, 2))), np.zeros((4, 3)))


def test_bad_reduction_and_loss_lookup() -> None:
    with pytest.raises(ValueError, match="reduction"):
        MSELoss(reduction="avg")
    assert isinstance(get_loss("mse"), MSELoss)
    assert isinstance(get_loss("cross_entropy"), CrossEntropyLoss)
    with pytest.raises(ValueError, match="known"):
        get_loss("hinge")


def test_losses_describe_round_trip() -> None:
    from azuraforge_learner import build

    loss = HuberLoss(delta=2.5, reduction="sum")
    rebuilt = build(loss.describe())
    assert isinstance(rebuilt, HuberLoss) and rebuilt.delta == 2.5 and rebuilt.reduction == "sum"


def test_float32_target_keeps_dtype() -> None:
    out = MSELoss()(Tensor(np.ones((2, 2), np.float32)), np.zeros((2, 2), np.float64))
    assert out.dtype == np.float32
