"""Loss functions as Modules: `loss(pred, target)` returns a scalar Tensor (or per-element
values with `reduction="none"`).

The pointwise losses are fused ops: one graph node computes the value and keeps the
derivative, instead of a chain of a dozen elementwise nodes.
"""

from __future__ import annotations

from typing import Any

import azuraforge_core as af
from azuraforge_core import Function, ShapeError, Tensor
from azuraforge_core.backend import get_array_module
from azuraforge_core.ops.elementwise import as_tensor

from .module import Module

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str, name: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    return reduction


class _Pointwise(Function):
    """A per-element loss l(p, t), reduced. Subclasses implement `values(xp, p, t, need)`
    returning (l, dl/dp, dl/dt); the derivatives may be None when not needed."""

    def __init__(self, reduction: str) -> None:
        self.reduction = reduction

    def values(self, xp: Any, p: Any, t: Any, need: tuple[bool, ...]) -> tuple[Any, Any, Any]:
        raise NotImplementedError

    def forward(self, p: Any, t: Any) -> Any:
        xp = get_array_module(p)
        val, self.dp, self.dt = self.values(xp, p, t, self.needs_input_grad)
        self.n = val.size
        if self.reduction == "mean":
            return val.mean()
        if self.reduction == "sum":
            return val.sum()
        return val

    def backward(self, g: Any) -> Any:
        scale = g / self.n if self.reduction == "mean" else g
        gp = self.dp * scale if self.needs_input_grad[0] else None
        gt = self.dt * scale if self.needs_input_grad[1] else None
        return gp, gt


class _MSE(_Pointwise):
    def values(self, xp: Any, p: Any, t: Any, need: tuple[bool, ...]) -> tuple[Any, Any, Any]:
        d = p - t
        if not any(need):
            return d * d, None, None
        dp = 2 * d
        return d * d, dp, (-dp if need[1] else None)


class _L1(_Pointwise):
    def values(self, xp: Any, p: Any, t: Any, need: tuple[bool, ...]) -> tuple[Any, Any, Any]:
        d = p - t
        if not any(need):
            return xp.abs(d), None, None
        dp = xp.sign(d)
        return xp.abs(d), dp, (-dp if need[1] else None)


class _Huber(_Pointwise):
    def __init__(self, reduction: str, delta: float) -> None:
        super().__init__(reduction)
        self.delta = delta

    def values(self, xp: Any, p: Any, t: Any, need: tuple[bool, ...]) -> tuple[Any, Any, Any]:
        d = p - t
        a = xp.abs(d)
        delta = self.delta
        quad = xp.minimum(a, delta)  # |d| up to delta is quadratic, the rest linear
        val = 0.5 * quad * quad + delta * (a - quad)
        if not any(need):
            return val, None, None
        dp = xp.clip(d, -delta, delta)
        return val, dp, (-dp if need[1] else None)


class _BCEWithLogits(_Pointwise):
    def values(self, xp: Any, x: Any, y: Any, need: tuple[bool, ...]) -> tuple[Any, Any, Any]:
        # max(x, 0) - x*y + log(1 + exp(-|x|)): never overflows, for any logit.
        val = xp.maximum(x, 0) - x * y + xp.log1p(xp.exp(-xp.abs(x)))
        dp = (0.5 + 0.5 * xp.tanh(0.5 * x)) - y if need[0] else None
        dt = -x if need[1] else None
        return val, dp, dt


def _pair_same_shape(pred: Tensor, target: Any, name: str) -> tuple[Tensor, Tensor]:
    if not isinstance(pred, Tensor):
        raise TypeError(f"{name}: the prediction must be a Tensor, got {type(pred).__name__}")
    t = as_tensor(target, pred)
    if t.dtype != pred.dtype and not t.requires_grad:  # e.g. a float64 or int target tensor
        t = Tensor._make(t.data.astype(pred.dtype))
    if t.shape != pred.shape:
        hint = ""
        if t.size == pred.size:
            hint = f" (same number of elements: reshape the target to {pred.shape})"
        raise ShapeError(
            f"{name}: prediction shape {pred.shape} does not match target shape {t.shape}{hint}"
        )
    return pred, t


class Loss(Module):
    """Base class of the losses: a Module without parameters, called as loss(pred, target)."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = _check_reduction(reduction, type(self).__name__)

    def get_config(self) -> dict[str, Any]:
        return {"reduction": self.reduction}

    def __call__(self, pred: Tensor, target: Any) -> Tensor:
        return self.forward(pred, target)


class MSELoss(Loss):
    """Mean squared error (p - t)^2. Shapes must match exactly."""

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        return _MSE(self.reduction)(*_pair_same_shape(pred, target, "MSELoss"))


class L1Loss(Loss):
    """Mean absolute error |p - t|."""

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        return _L1(self.reduction)(*_pair_same_shape(pred, target, "L1Loss"))


class HuberLoss(Loss):
    """0.5 d^2 where |d| <= delta, else delta * (|d| - 0.5 delta): squared error near the
    target, absolute error for outliers."""

    def __init__(self, delta: float = 1.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"HuberLoss: delta must be > 0, got {delta}")
        self.delta = float(delta)

    def get_config(self) -> dict[str, Any]:
        return {"delta": self.delta, "reduction": self.reduction}

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        p, t = _pair_same_shape(pred, target, "HuberLoss")
        return _Huber(self.reduction, self.delta)(p, t)


class CrossEntropyLoss(Loss):
    """Softmax cross-entropy from raw logits (N, C) and integer class labels (N,) or (N, 1),
    with optional label smoothing."""

    def __init__(self, label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                f"CrossEntropyLoss: label_smoothing must be in [0, 1), got {label_smoothing}"
            )
        self.label_smoothing = float(label_smoothing)

    def get_config(self) -> dict[str, Any]:
        return {"label_smoothing": self.label_smoothing, "reduction": self.reduction}

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        labels = target.data if isinstance(target, Tensor) else target
        if getattr(labels, "ndim", 1) == 2 and labels.shape[1] == 1:
            labels = labels.reshape(-1)
        return af.cross_entropy(pred, labels, self.label_smoothing, self.reduction)


class BCEWithLogitsLoss(Loss):
    """Binary cross-entropy on raw logits (sigmoid folded in, numerically stable);
    targets are 0/1 (or soft labels in [0, 1]) of the same shape as the logits."""

    def forward(self, pred: Tensor, target: Any) -> Tensor:
        p, t = _pair_same_shape(pred, target, "BCEWithLogitsLoss")
        return _BCEWithLogits(self.reduction)(p, t)


_BY_NAME: dict[str, type[Loss]] = {
    "mse": MSELoss,
    "l1": L1Loss,
    "mae": L1Loss,
    "huber": HuberLoss,
    "cross_entropy": CrossEntropyLoss,
    "crossentropy": CrossEntropyLoss,
    "bce_with_logits": BCEWithLogitsLoss,
}


def get_loss(spec: Any) -> Any:
    """A loss from a name ('mse', 'l1', 'huber', 'cross_entropy', 'bce_with_logits'),
    a Loss instance or any callable(pred, target) -> scalar Tensor."""
    if isinstance(spec, str):
        cls = _BY_NAME.get(spec.lower())
        if cls is None:
            raise ValueError(f"unknown loss {spec!r}; known: {', '.join(sorted(_BY_NAME))}")
        return cls()
    if callable(spec):
        return spec
    raise TypeError(f"a loss must be a name or a callable, got {type(spec).__name__}")


__all__ = [
    "BCEWithLogitsLoss",
    "CrossEntropyLoss",
    "HuberLoss",
    "L1Loss",
    "Loss",
    "MSELoss",
    "get_loss",
]
