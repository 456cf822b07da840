"""Reductions over axes: sum, mean, max, min, var."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .. import backend
from ..tensor import Function, Tensor

Axis = int | Sequence[int] | None


def normalize_axes(axis: Axis, ndim: int, op: str) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < (ndim or 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim if ndim else 0)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: repeated axis in {axis}")
    return tuple(sorted(out))


def expand_to(g: Any, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> Any:
    """Reshape a reduced gradient so it broadcasts against the input's shape."""
    if not keepdims:
        kept = list(shape)
        for a in axes:
            kept[a] = 1
        g = g.reshape(kept)
    return g


class Sum(Function):
    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes, self.keepdims = axes, keepdims

    def forward(self, a: Any) -> Any:
        self.shape = a.shape
        return a.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        return xp.broadcast_to(expand_to(g, self.shape, self.axes, self.keepdims), self.shape)


class Mean(Function):
    def __init__(self, axes: tuple[int, ...], keepdims: bool) -> None:
        self.axes, self.keepdims = axes, keepdims

    def forward(self, a: Any) -> Any:
        self.shape = a.shape
        count = 1
        for ax in self.axes:
            count *= a.shape[ax]
        self.count = count
        return a.mean(axis=self.axes, keepdims=self.keepdims)

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        g = expand_to(g, self.shape, self.axes, self.keepdims) / self.count
        return xp.broadcast_to(g, self.shape)


class _Extreme(Function):
    """max / min: the gradient is shared equally among tied extremes."""

    def __init__(self, axes: tuple[int, ...], keepdims: bool, is_max: bool) -> None:
        self.axes, self.keepdims, self.is_max = axes, keepdims, is_max

    def forward(self, a: Any) -> Any:
        self.a = a
        y = (
            a.max(axis=self.axes, keepdims=True)
            if self.is_max
            else a.min(axis=self.axes, keepdims=True)
        )
        self.y = y
        return (
            y
            if self.keepdims
            else y.reshape([n for i, n in enumerate(a.shape) if i not in self.axes])
        )

    def backward(self, g: Any) -> Any:
        mask = self.a == self.y
        count = mask.sum(axis=self.axes, keepdims=True)
        g = expand_to(g, self.a.shape, self.axes, self.keepdims)
        return mask * (g / count)


def _check_nonempty(t: Tensor, axes: tuple[int, ...], op: str) -> None:
    for ax in axes:
        if t.shape[ax] == 0:
            raise ValueError(f"{op}: cannot reduce over axis {ax} of size 0 (shape {t.shape})")


def sum(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    return Sum(normalize_axes(axis, a.ndim, "sum"), keepdims)(a)


def mean(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    axes = normalize_axes(axis, a.ndim, "mean")
    _check_nonempty(a, axes, "mean")
    return Mean(axes, keepdims)(a)


def max(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    axes = normalize_axes(axis, a.ndim, "max")
    _check_nonempty(a, axes, "max")
    return _Extreme(axes, keepdims, True)(a)


def min(a: Tensor, axis: Axis = None, keepdims: bool = False) -> Tensor:
    axes = normalize_axes(axis, a.ndim, "min")
    _check_nonempty(a, axes, "min")
    return _Extreme(axes, keepdims, False)(a)


class Var(Function):
    def __init__(self, axes: tuple[int, ...], keepdims: bool, ddof: int) -> None:
        self.axes, self.keepdims, self.ddof = axes, keepdims, ddof

    def forward(self, a: Any) -> Any:
        count = 1
        for ax in self.axes:
            count *= a.shape[ax]
        if count - self.ddof <= 0:
            raise ValueError(
                f"var: ddof={self.ddof} leaves no degrees of freedom for {count} values"
            )
        self.centered = a - a.mean(axis=self.axes, keepdims=True)
        self.denom = count - self.ddof
        self.shape = a.shape
        return (self.centered**2).sum(axis=self.axes, keepdims=self.keepdims) / self.denom

    def backward(self, g: Any) -> Any:
        g = expand_to(g, self.shape, self.axes, self.keepdims)
        return g * (2.0 / self.denom) * self.centered


def var(a: Tensor, axis: Axis = None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance; `ddof=0` (the population variance, as numpy and batch norm use) by default."""
    return Var(normalize_axes(axis, a.ndim, "var"), keepdims, ddof)(a)
