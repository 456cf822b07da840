"""Elementwise ops: arithmetic with full broadcasting, unary math, activations."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend
from ..tensor import Function, Tensor


def as_tensor(value: Any, like: Tensor | None = None) -> Tensor:
    """Tensors pass through; numbers and arrays become constants in `like`'s dtype and device."""
    if isinstance(value, Tensor):
        return value
    if like is None:
        return Tensor(value)
    arr = value
    if not (isinstance(arr, np.ndarray) or backend.is_device_array(arr)):
        arr = np.asarray(arr)
    # Constants follow the tensor's dtype, except that a float never gets truncated to an int.
    truncates = arr.dtype.kind == "f" and like.data.dtype.kind != "f"
    if arr.dtype != like.data.dtype and arr.dtype.kind in "iubf" and not truncates:
        arr = arr.astype(like.data.dtype)
    if backend.is_device_array(like.data) and not backend.is_device_array(arr):
        arr = backend.to_device(arr, like.device)
    return Tensor._make(arr)


def pair(a: Any, b: Any) -> tuple[Tensor, Tensor]:
    if isinstance(a, Tensor):
        return a, as_tensor(b, a)
    if isinstance(b, Tensor):
        return as_tensor(a, b), b
    return Tensor(a), Tensor(b)


def unbroadcast(grad: Any, shape: tuple[int, ...]) -> Any:
    """Sum a broadcast gradient back down to an input's shape."""
    if grad.shape == shape:
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and grad.shape[i + lead] != 1
    )
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    if lead:
        grad = grad.reshape(shape)
    return grad


# --------------------------------------------------------------------- binary
class Add(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = (a.shape, b.shape)
        return a + b

    def backward(self, g: Any) -> Any:
        sa, sb = self.shapes
        ga = unbroadcast(g, sa) if self.needs_input_grad[0] else None
        gb = unbroadcast(g, sb) if self.needs_input_grad[1] else None
        return ga, gb


class Sub(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = (a.shape, b.shape)
        return a - b

    def backward(self, g: Any) -> Any:
        sa, sb = self.shapes
        ga = unbroadcast(g, sa) if self.needs_input_grad[0] else None
        gb = -unbroadcast(g, sb) if self.needs_input_grad[1] else None
        return ga, gb


class Mul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a * b

    def backward(self, g: Any) -> Any:
        a, b = self.a, self.b
        ga = unbroadcast(g * b, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return a / b

    def backward(self, g: Any) -> Any:
        a, b = self.a, self.b
        gb_ = g / b
        ga = unbroadcast(gb_, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(-gb_ * a / b, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Pow(Function):
    """a ** b with both sides tensors (the exponent's gradient needs a > 0)."""

    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        self.y = a**b
        return self.y

    def backward(self, g: Any) -> Any:
        a, b, y = self.a, self.b, self.y
        xp = backend.get_array_module(a)
        ga = unbroadcast(g * b * a ** (b - 1), a.shape) if self.needs_input_grad[0] else None
        gb = None
        if self.needs_input_grad[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                loga = xp.where(a > 0, xp.log(xp.where(a > 0, a, 1)), 0)
            gb = unbroadcast(g * y * loga, b.shape)
        return ga, gb


class PowScalar(Function):
    """a ** c for a constant exponent c (the common case: squares, roots, reciprocals)."""

    def __init__(self, exponent: float) -> None:
        self.c = exponent

    def forward(self, a: Any) -> Any:
        self.a = a
        return a**self.c

    def backward(self, g: Any) -> Any:
        c = self.c
        if c == 0:  # d/dx x**0 = 0 everywhere, also at x = 0 where the formula gives 0 * inf
            return g * 0
        if c == 2:
            return g * 2 * self.a
        return g * c * self.a ** (c - 1)


class Maximum(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return backend.get_array_module(a).maximum(a, b)

    def backward(self, g: Any) -> Any:
        a, b = self.a, self.b
        pick_a = a >= b  # ties go to the first operand, so the gradient is not counted twice
        ga = unbroadcast(g * pick_a, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * ~pick_a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Minimum(Function):
    def forward(self, a: Any, b: Any) -> Any:
        self.a, self.b = a, b
        return backend.get_array_module(a).minimum(a, b)

    def backward(self, g: Any) -> Any:
        a, b = self.a, self.b
        pick_a = a <= b
        ga = unbroadcast(g * pick_a, a.shape) if self.needs_input_grad[0] else None
        gb = unbroadcast(g * ~pick_a, b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Where(Function):
    def __init__(self, cond: Any) -> None:
        self.cond = cond

    def forward(self, a: Any, b: Any) -> Any:
        self.shapes = (a.shape, b.shape)
        return backend.get_array_module(a).where(self.cond, a, b)

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        sa, sb = self.shapes
        zero = xp.zeros((), dtype=g.dtype)
        ga = unbroadcast(xp.where(self.cond, g, zero), sa) if self.needs_input_grad[0] else None
        gb = unbroadcast(xp.where(self.cond, zero, g), sb) if self.needs_input_grad[1] else None
        return ga, gb


# ---------------------------------------------------------------------- unary
class Neg(Function):
    def forward(self, a: Any) -> Any:
        return -a

    def backward(self, g: Any) -> Any:
        return -g


class Cast(Function):
    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype

    def forward(self, a: Any) -> Any:
        self.src = a.dtype
        return a.astype(self.dtype)

    def backward(self, g: Any) -> Any:
        return g.astype(self.src)


class Exp(Function):
    def forward(self, a: Any) -> Any:
        self.y = backend.get_array_module(a).exp(a)
        return self.y

    def backward(self, g: Any) -> Any:
        return g * self.y


class Log(Function):
    def forward(self, a: Any) -> Any:
        self.a = a
        return backend.get_array_module(a).log(a)

    def backward(self, g: Any) -> Any:
        return g / self.a


class Sqrt(Function):
    def forward(self, a: Any) -> Any:
        self.y = backend.get_array_module(a).sqrt(a)
        return self.y

    def backward(self, g: Any) -> Any:
        return g / (2 * self.y)


class Abs(Function):
    def forward(self, a: Any) -> Any:
        self.a = a
        return backend.get_array_module(a).abs(a)

    def backward(self, g: Any) -> Any:
        return g * backend.get_array_module(g).sign(self.a)


class Tanh(Function):
    def forward(self, a: Any) -> Any:
        self.y = backend.get_array_module(a).tanh(a)
        return self.y

    def backward(self, g: Any) -> Any:
        y = self.y
        return g * (1 - y * y)


def stable_sigmoid(xp: Any, a: Any) -> Any:
    # 0.5 * (1 + tanh(x/2)) never overflows, unlike 1 / (1 + exp(-x)) for very negative x.
    return 0.5 + 0.5 * xp.tanh(0.5 * a)


class Sigmoid(Function):
    def forward(self, a: Any) -> Any:
        self.y = stable_sigmoid(backend.get_array_module(a), a)
        return self.y

    def backward(self, g: Any) -> Any:
        y = self.y
        return g * y * (1 - y)


class ReLU(Function):
    def forward(self, a: Any) -> Any:
        xp = backend.get_array_module(a)
        self.y = xp.maximum(a, 0)
        return self.y

    def backward(self, g: Any) -> Any:
        return g * (self.y > 0)


class LeakyReLU(Function):
    def __init__(self, slope: float) -> None:
        self.slope = slope

    def forward(self, a: Any) -> Any:
        self.pos = a > 0
        return backend.get_array_module(a).where(self.pos, a, a * self.slope)

    def backward(self, g: Any) -> Any:
        return backend.get_array_module(g).where(self.pos, g, g * self.slope)


class GELU(Function):
    """Gaussian error linear unit, tanh approximation (as in GPT-2 and BERT)."""

    _k = float(np.sqrt(2.0 / np.pi))

    def forward(self, a: Any) -> Any:
        xp = backend.get_array_module(a)
        self.a = a
        self.t = xp.tanh(self._k * (a + 0.044715 * a**3))
        return 0.5 * a * (1 + self.t)

    def backward(self, g: Any) -> Any:
        a, t = self.a, self.t
        dinner = self._k * (1 + 3 * 0.044715 * a * a)
        return g * (0.5 * (1 + t) + 0.5 * a * (1 - t * t) * dinner)


class Clip(Function):
    def __init__(self, lo: float | None, hi: float | None) -> None:
        self.lo, self.hi = lo, hi

    def forward(self, a: Any) -> Any:
        self.a = a
        return backend.get_array_module(a).clip(a, self.lo, self.hi)

    def backward(self, g: Any) -> Any:
        a = self.a
        mask = True
        if self.lo is not None:
            mask = a >= self.lo
        if self.hi is not None:
            mask = mask & (a <= self.hi)
        return g * mask


# ------------------------------------------------------------------- wrappers
def add(a: Any, b: Any) -> Tensor:
    return Add()(*pair(a, b))


def sub(a: Any, b: Any) -> Tensor:
    return Sub()(*pair(a, b))


def mul(a: Any, b: Any) -> Tensor:
    return Mul()(*pair(a, b))


def div(a: Any, b: Any) -> Tensor:
    return Div()(*pair(a, b))


def pow(a: Any, b: Any) -> Tensor:
    if isinstance(a, Tensor) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return PowScalar(b)(a)
    return Pow()(*pair(a, b))


def neg(a: Tensor) -> Tensor:
    return Neg()(a)


def maximum(a: Any, b: Any) -> Tensor:
    """Elementwise maximum; where both are equal the gradient goes to `a`."""
    return Maximum()(*pair(a, b))


def minimum(a: Any, b: Any) -> Tensor:
    """Elementwise minimum; where both are equal the gradient goes to `a`."""
    return Minimum()(*pair(a, b))


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elements of `a` where `cond` is true, else of `b` (all three broadcast together)."""
    c = cond.data if isinstance(cond, Tensor) else cond
    ta, tb = pair(a, b)
    xp = backend.get_array_module(ta.data)
    c = xp.asarray(c).astype(bool, copy=False)
    return Where(c)(ta, tb)


def exp(a: Tensor) -> Tensor:
    return Exp()(a)


def log(a: Tensor) -> Tensor:
    return Log()(a)


def sqrt(a: Tensor) -> Tensor:
    return Sqrt()(a)


def abs(a: Tensor) -> Tensor:
    return Abs()(a)


def tanh(a: Tensor) -> Tensor:
    return Tanh()(a)


def sigmoid(a: Tensor) -> Tensor:
    return Sigmoid()(a)


def relu(a: Tensor) -> Tensor:
    return ReLU()(a)


def leaky_relu(a: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU(negative_slope)(a)


def gelu(a: Tensor) -> Tensor:
    return GELU()(a)


def clip(a: Tensor, lo: float | None = None, hi: float | None = None) -> Tensor:
    if lo is None and hi is None:
        raise ValueError("clip() needs at least one of lo and hi")
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"clip(): lo={lo} is greater than hi={hi}")
    return Clip(lo, hi)(a)
