"""Ops that move data without arithmetic: reshape, transpose, indexing, concat, stack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import backend
from ..tensor import Function, ShapeError, Tensor


class Reshape(Function):
    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape

    def forward(self, a: Any) -> Any:
        self.in_shape = a.shape
        try:
            return a.reshape(self.shape)
        except ValueError:
            raise ShapeError(
                f"reshape: cannot reshape a tensor of shape {tuple(a.shape)} ({a.size} elements) "
                f"into {self.shape}"
            ) from None

    def backward(self, g: Any) -> Any:
        return g.reshape(self.in_shape)


class Transpose(Function):
    def __init__(self, axes: tuple[int, ...] | None) -> None:
        self.axes = axes

    def forward(self, a: Any) -> Any:
        axes = self.axes
        if axes is None:
            axes = tuple(reversed(range(a.ndim)))
        elif sorted(x % a.ndim if a.ndim else x for x in axes) != list(range(a.ndim)):
            raise ShapeError(
                f"transpose: axes {axes} are not a permutation for shape {tuple(a.shape)}"
            )
        self.perm = tuple(x % a.ndim for x in axes) if a.ndim else ()
        return a.transpose(self.perm)

    def backward(self, g: Any) -> Any:
        inverse = [0] * len(self.perm)
        for i, p in enumerate(self.perm):
            inverse[p] = i
        return g.transpose(inverse)


def _is_advanced(index: Any) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(p, (list, np.ndarray)) or backend.is_device_array(p) for p in parts)


class GetItem(Function):
    def __init__(self, index: Any) -> None:
        self.index = index

    def forward(self, a: Any) -> Any:
        self.in_shape, self.dtype = a.shape, a.dtype
        try:
            return a[self.index]
        except IndexError as exc:
            raise IndexError(f"indexing a tensor of shape {tuple(a.shape)}: {exc}") from None

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        out = xp.zeros(self.in_shape, dtype=self.dtype)
        if _is_advanced(self.index):
            # Integer arrays may repeat an index: the gradients must add up (scatter-add).
            backend.scatter_add(out, self.index, g)
        else:
            out[self.index] = g
        return out


def _plain_index(index: Any) -> Any:
    """Turn Tensor indices into raw arrays; reject float indices with a clear message."""

    def conv(p: Any) -> Any:
        if isinstance(p, Tensor):
            p = p.data
        if (isinstance(p, np.ndarray) or backend.is_device_array(p)) and p.dtype.kind == "f":
            raise IndexError("tensors used as indices must be integers or booleans, got floats")
        return p

    if isinstance(index, tuple):
        return tuple(conv(p) for p in index)
    return conv(index)


class Concat(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *arrays: Any) -> Any:
        xp = backend.get_array_module(arrays[0])
        self.sizes = [a.shape[self.axis] for a in arrays]
        return xp.concatenate(arrays, axis=self.axis)

    def backward(self, g: Any) -> Any:
        grads = []
        start = 0
        for size, need in zip(self.sizes, self.needs_input_grad, strict=True):
            if need:
                sl = [slice(None)] * g.ndim
                sl[self.axis] = slice(start, start + size)
                grads.append(g[tuple(sl)])
            else:
                grads.append(None)
            start += size
        return tuple(grads)


class Stack(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, *arrays: Any) -> Any:
        return backend.get_array_module(arrays[0]).stack(arrays, axis=self.axis)

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        return tuple(
            xp.take(g, i, axis=self.axis) if need else None
            for i, need in enumerate(self.needs_input_grad)
        )


def reshape(a: Tensor, shape: Sequence[int]) -> Tensor:
    return Reshape(tuple(int(s) for s in shape))(a)


def transpose(a: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    return Transpose(None if axes is None else tuple(int(x) for x in axes))(a)


def getitem(a: Tensor, index: Any) -> Tensor:
    return GetItem(_plain_index(index))(a)


def _check_same(tensors: Sequence[Tensor], axis: int, op: str, skip_axis: bool) -> int:
    if len(tensors) == 0:
        raise ValueError(f"{op}: needs at least one tensor")
    ref = tensors[0].shape
    ndim = len(ref) + (0 if skip_axis else 1)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for {ndim} dimensions")
    axis %= ndim
    for t in tensors[1:]:
        s = t.shape
        same = len(s) == len(ref) and all(
            x == y
            for i, (x, y) in enumerate(zip(s, ref, strict=True))
            if not (skip_axis and i == axis)
        )
        if not same:
            shapes = ", ".join(str(t.shape) for t in tensors)
            what = f"all but axis {axis}" if skip_axis else "all dimensions"
            raise ShapeError(f"{op}: shapes must match in {what}, got {shapes}")
    return axis


def concat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    ts = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    axis = _check_same(ts, axis, "concat", skip_axis=True)
    return Concat(axis)(*ts)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    ts = [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]
    axis = _check_same(ts, axis, "stack", skip_axis=False)
    return Stack(axis)(*ts)
