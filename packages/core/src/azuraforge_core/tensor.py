"""The Tensor, the Function base class, and reverse-mode differentiation.

A Function computes on raw backend arrays: `forward(*arrays)` returns an array and
saves whatever `backward(grad)` needs on `self`. Calling a Function on tensors records
it as the creator of the output when any input requires a gradient and grad mode is on.
`Tensor.backward()` walks that graph once in reverse topological order (iteratively, so
graphs of any depth work) and frees it as it goes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import numpy as np

from . import backend

DEFAULT_DTYPE = np.float32
_FLOAT_KINDS = "f"


class ShapeError(ValueError):
    """Operands whose shapes do not fit the op; the message names the op and the shapes."""


class _GradMode(threading.local):
    enabled = True


_grad_mode = _GradMode()


def is_grad_enabled() -> bool:
    return _grad_mode.enabled


F = TypeVar("F", bound=Callable[..., Any])


class no_grad:
    """Context manager (and decorator) under which no graph is recorded."""

    def __enter__(self) -> None:
        self._prev = _grad_mode.enabled
        _grad_mode.enabled = False

    def __exit__(self, *exc: object) -> None:
        _grad_mode.enabled = self._prev

    def __call__(self, fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


@contextmanager
def enable_grad() -> Iterator[None]:
    prev = _grad_mode.enabled
    _grad_mode.enabled = True
    try:
        yield
    finally:
        _grad_mode.enabled = prev


class Function:
    """One differentiable op. Subclasses implement `forward` and `backward` on raw arrays.

    `backward(grad_output)` returns one gradient per input (a tuple, or a single array
    for one input); `None` for inputs that need none. `self.needs_input_grad[i]` tells
    whether input i wants one, so work for constants can be skipped.
    `self.graph_retained` is False while `backward` runs for the last time (the graph is
    freed right after, no `retain_graph`): backward may then overwrite its saved arrays.
    """

    inputs: tuple[Tensor, ...] | None
    needs_input_grad: tuple[bool, ...]
    graph_retained = True  # unless Tensor.backward says otherwise, saved arrays stay intact

    def __call__(self, *inputs: Tensor) -> Tensor:
        arrays = [t.data for t in inputs]
        if len(arrays) > 1:
            first = type(arrays[0])
            for a in arrays[1:]:
                if type(a) is not first:
                    devices = [backend.device_of(x) for x in arrays]
                    if len(set(devices)) > 1:
                        raise RuntimeError(
                            f"{type(self).__name__}: tensors are on different devices "
                            f"({', '.join(devices)}); move them with .to(device) first"
                        )
        record = _grad_mode.enabled and any(t.requires_grad for t in inputs)
        if record:
            self.needs_input_grad = tuple(t.requires_grad for t in inputs)
        else:
            self.needs_input_grad = (False,) * len(inputs)
        try:
            out = self.forward(*arrays)
        except ValueError as exc:
            if isinstance(exc, ShapeError):
                raise
            shapes = " and ".join(str(tuple(a.shape)) for a in arrays)
            raise ShapeError(
                f"{type(self).__name__}: cannot apply to shapes {shapes}: {exc}"
            ) from None
        if not (isinstance(out, np.ndarray) or backend.is_device_array(out)):
            out = np.asarray(out)  # full reductions give numpy scalars; keep .data an ndarray
        result = Tensor._make(out, record)
        if record:
            self.inputs = inputs
            result._ctx = self
        return result

    def forward(self, *xs: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad_output: Any) -> Any:
        raise NotImplementedError

    def release(self) -> None:
        """Drop inputs and saved arrays once the gradient has flowed through."""
        self.__dict__.clear()
        self.inputs = None


def _as_array(value: Any, dtype: Any) -> Any:
    if isinstance(value, Tensor):
        value = value.data
    arr = value if backend.is_device_array(value) else np.asarray(value)
    if dtype is not None:
        dt = np.dtype(dtype)
        if arr.dtype != dt:
            arr = arr.astype(dt)
    elif arr.dtype.kind in _FLOAT_KINDS and arr.dtype != DEFAULT_DTYPE:
        # Floats default to float32, like the frameworks users know; ints and bools keep theirs.
        arr = arr.astype(DEFAULT_DTYPE)
    return arr


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    Floating data defaults to float32 (pass `dtype=np.float64` for double precision);
    integer and boolean arrays keep their dtype and cannot require gradients.
    """

    __slots__ = ("__weakref__", "_ctx", "data", "grad", "name", "requires_grad")
    # numpy hands `ndarray + Tensor` to Tensor.__radd__ instead of looping over elements.
    __array_ufunc__ = None
    __array_priority__ = 1000

    data: Any
    grad: Tensor | None
    requires_grad: bool
    _ctx: Function | None
    name: str | None

    def __init__(
        self,
        data: Any,
        requires_grad: bool = False,
        dtype: Any = None,
        name: str | None = None,
    ) -> None:
        arr = _as_array(data, dtype)
        if requires_grad and arr.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {arr.dtype}"
            )
        self.data = arr
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self._ctx = None
        self.name = name

    @classmethod
    def _make(cls, data: Any, requires_grad: bool = False) -> Tensor:
        """Wrap an op's output array without any conversion (the hot path)."""
        t = cls.__new__(cls)
        t.data = data
        t.grad = None
        t.requires_grad = requires_grad
        t._ctx = None
        t.name = None
        return t

    # ----------------------------------------------------------------- properties
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape)

    @property
    def ndim(self) -> int:
        return int(self.data.ndim)

    @property
    def size(self) -> int:
        return int(self.data.size)

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.data.dtype

    @property
    def device(self) -> str:
        return backend.device_of(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        dev = "" if self.device == "cpu" else f", device='{self.device}'"
        body = np.array2string(backend.to_numpy(self.data), precision=4, separator=", ")
        return f"Tensor({body}, dtype={self.dtype}{dev}{grad})"

    # ---------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The values as a numpy array on the host (a copy when the tensor is on a GPU)."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(
                f"item() needs a tensor with one element, this one has shape {self.shape}"
            )
        return self.data.reshape(()).item()

    def tolist(self) -> Any:
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """The same values, cut off from the graph (shares memory)."""
        return Tensor._make(self.data, False)

    def to(self, device: str) -> Tensor:
        """A copy on `device` ('cpu', 'cuda', 'cuda:N'); self when already there.

        The copy is a new leaf that keeps `requires_grad` (like moving a parameter).
        """
        arr = backend.to_device(self.data, device)
        if arr is self.data:
            return self
        return Tensor._make(arr, self.requires_grad)

    def to_cpu(self) -> Tensor:
        return self.to("cpu")

    def astype(self, dtype: Any) -> Tensor:
        from .ops import elementwise

        return elementwise.Cast(np.dtype(dtype))(self)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag and self.dtype.kind not in _FLOAT_KINDS:
            raise TypeError(
                f"only floating-point tensors can require gradients, got dtype {self.dtype}"
            )
        self.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # ----------------------------------------------------------------- autograd
    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad` that requires one.

        `grad` is the gradient of some scalar with respect to self; it may be omitted
        only when self holds a single element. The graph is freed afterwards unless
        `retain_graph=True`.
        """
        backend.keep_freed_memory_once()  # training from here on: reuse freed arrays
        if not self.requires_grad:
            raise RuntimeError(
                "backward() called on a tensor that does not require grad: no input of the "
                "computation had requires_grad=True, or it ran under no_grad()"
            )
        xp = backend.get_array_module(self.data)
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(
                    f"backward() on a non-scalar tensor of shape {self.shape} needs a gradient "
                    "argument of the same shape (or reduce it first, e.g. with .sum() or .mean())"
                )
            seed = xp.ones_like(self.data)
        else:
            seed = _as_array(grad, self.dtype)
            if backend.is_device_array(self.data):
                seed = backend.to_device(seed, self.device)
            if seed.shape != self.data.shape:
                raise ShapeError(
                    f"backward(): gradient of shape {tuple(seed.shape)} does not match the "
                    f"tensor's shape {self.shape}"
                )

        if self._ctx is None:  # a leaf: d(self)/d(self) = 1
            _accumulate(self, seed)
            return

        order = _topological_order(self)
        grads: dict[int, Any] = {id(self): seed}
        for node in reversed(order):
            g = grads.pop(id(node), None)
            ctx = node._ctx
            if g is None or ctx is None:
                continue
            inputs = ctx.inputs
            if inputs is None:
                raise RuntimeError(
                    "backward() through a graph that was already freed: call the first "
                    "backward(retain_graph=True) to go through it twice"
                )
            ctx.graph_retained = retain_graph
            in_grads = ctx.backward(g)
            if not isinstance(in_grads, tuple):
                in_grads = (in_grads,)
            for inp, gi in zip(inputs, in_grads, strict=True):
                if gi is None or not inp.requires_grad:
                    continue
                if inp._ctx is None:
                    _accumulate(inp, gi)
                else:
                    key = id(inp)
                    prev = grads.get(key)
                    grads[key] = gi if prev is None else prev + gi
            if not retain_graph:
                ctx.release()

    # ---------------------------------------------------------- operator sugar
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return ops.pow(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return ops.pow(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    # Comparisons give boolean tensors (no gradient); == stays identity so tensors hash.
    def __lt__(self, other: Any) -> Tensor:
        return Tensor._make(self.data < _raw(other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor._make(self.data <= _raw(other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor._make(self.data > _raw(other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor._make(self.data >= _raw(other))

    # ------------------------------------------------------------------ methods
    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def sqrt(self) -> Tensor:
        return ops.sqrt(self)

    def abs(self) -> Tensor:
        return ops.abs(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def leaky_relu(self, negative_slope: float = 0.01) -> Tensor:
        return ops.leaky_relu(self, negative_slope)

    def softmax(self, axis: int = -1) -> Tensor:
        return ops.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return ops.log_softmax(self, axis)

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.sum(self, axis, keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axis, keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axis, keepdims)

    def min(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.min(self, axis, keepdims)

    def var(
        self, axis: int | Sequence[int] | None = None, keepdims: bool = False, ddof: int = 0
    ) -> Tensor:
        return ops.var(self, axis, keepdims, ddof)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        return ops.reshape(self, shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        return ops.transpose(self, axes or None)

    @property
    def T(self) -> Tensor:
        return ops.transpose(self, None)

    def flatten(self, start_axis: int = 1) -> Tensor:
        return ops.reshape(self, (*self.shape[:start_axis], -1))

    def clip(self, lo: float | None = None, hi: float | None = None) -> Tensor:
        return ops.clip(self, lo, hi)


def _raw(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def _accumulate(leaf: Tensor, g: Any) -> None:
    # Gradients accumulate across backward() calls until cleared, as in PyTorch. The sum
    # is out of place: `g` may be shared with another leaf's gradient.
    if g.dtype != leaf.data.dtype:
        g = g.astype(leaf.data.dtype)
    if leaf.grad is None:
        # A broadcast view (read-only in numpy, zero strides in CuPy) aliases its elements,
        # so an in-place update of .grad would corrupt it: give the leaf its own buffer.
        if not getattr(g.flags, "writeable", True) or (g.size > 1 and 0 in g.strides):
            g = g.copy()
    else:
        g = leaf.grad.data + g
    if not (isinstance(g, np.ndarray) or backend.is_device_array(g)):
        g = np.array(g)  # 0-d arithmetic gives numpy scalars; a gradient is always an array
    leaf.grad = Tensor._make(g)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Non-leaf tensors reachable from root, each after all tensors it depends on."""
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        ctx = node._ctx
        if ctx is None or ctx.inputs is None:
            continue
        for inp in ctx.inputs:
            if inp._ctx is not None and inp.requires_grad and id(inp) not in visited:
                stack.append((inp, False))
    return order


from . import ops  # noqa: E402  (ops need Tensor and Function defined first)
