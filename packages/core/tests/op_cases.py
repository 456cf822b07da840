"""Every op of the Tensor contract as a list of gradient-check cases.

Shared by test_ops.py (CPU) and test_gpu.py (the same cases on CuPy). Each case names the
op call, how to make its inputs from a seeded generator, and a plain numpy reference for
the forward value (explicit loops for convolution and pooling).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from gradcheck import away_from_zero, distinct, positive, randn

import azuraforge_core as af
from azuraforge_core import Tensor

Rng = np.random.Generator


@dataclass(frozen=True)
class OpCase:
    id: str
    fn: Callable[..., Tensor]
    inputs: Callable[[Rng], list[Any]]
    reference: Callable[..., Any] | None
    wrt: tuple[int, ...] | None = None
    atol: float = 1e-6
    rtol: float = 1e-5


CASES: list[OpCase] = []


def case(
    id: str,
    fn: Callable[..., Tensor],
    inputs: Callable[[Rng], list[Any]],
    reference: Callable[..., Any] | None,
    **kw: Any,
) -> None:
    CASES.append(OpCase(id, fn, inputs, reference, **kw))


def params(prefix: str = "") -> list[Any]:
    """The cases as pytest params (optionally only those whose id starts with prefix)."""
    return [pytest.param(c, id=c.id) for c in CASES if c.id.startswith(prefix)]


# Constants captured by closures: numpy operands on the left of a tensor.
_C = np.random.default_rng(1234)
C34 = _C.standard_normal((3, 4))
C4 = _C.standard_normal(4)
C34_POS = _C.uniform(0.5, 2.0, (3, 4))
COND34 = _C.random((3, 4)) < 0.5
LABELS5 = np.array([0, 3, 1, 1, 2])


def _shape_inputs(*shapes: tuple[int, ...], maker: Callable[..., np.ndarray] = randn):
    return lambda r: [maker(r, *s) for s in shapes]


# ---------------------------------------------------------------- arithmetic
BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((3, 1), (1, 4)),
    ((1, 4), (3, 1)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 3, 4)),
    ((), (3, 4)),
    ((3, 4), ()),
    ((2, 1, 4), (3, 1)),
    ((1,), (5,)),
]


def _shape_id(s: tuple[int, ...]) -> str:
    return "x".join(map(str, s)) if s else "scalar"


def _binary(name: str, fn: Callable[..., Any], ref: Callable[..., Any], denom: bool = False):
    for sa, sb in BROADCAST_PAIRS:
        make_b = (
            (lambda r, s: away_from_zero(r, *s, margin=0.5))
            if denom
            else (lambda r, s: randn(r, *s))
        )
        case(
            f"{name}-{_shape_id(sa)}-{_shape_id(sb)}",
            fn,
            lambda r, sa=sa, sb=sb, make_b=make_b: [randn(r, *sa), make_b(r, sb)],
            ref,
        )


_binary("add", lambda a, b: a + b, np.add)
_binary("sub", lambda a, b: a - b, np.subtract)
_binary("mul", lambda a, b: a * b, np.multiply)
_binary("div", lambda a, b: a / b, np.divide, denom=True)

x34 = _shape_inputs((3, 4))
nz34 = _shape_inputs((3, 4), maker=lambda r, *s: away_from_zero(r, *s, margin=0.5))
pos34 = _shape_inputs((3, 4), maker=positive)

case("scalar-add-right", lambda x: x + 2.5, x34, lambda x: x + 2.5)
case("scalar-add-left", lambda x: 2.5 + x, x34, lambda x: 2.5 + x)
case("scalar-int-add", lambda x: x + 2, x34, lambda x: x + 2)
case("scalar-sub-right", lambda x: x - 1.5, x34, lambda x: x - 1.5)
case("scalar-sub-left", lambda x: 1.5 - x, x34, lambda x: 1.5 - x)
case("scalar-mul-right", lambda x: x * -3.0, x34, lambda x: x * -3.0)
case("scalar-mul-left", lambda x: -3.0 * x, x34, lambda x: -3.0 * x)
case("scalar-div-right", lambda x: x / 4.0, x34, lambda x: x / 4.0)
case("scalar-div-left", lambda x: 2.0 / x, nz34, lambda x: 2.0 / x)
case("numpy-scalar-mul-left", lambda x: np.float64(2.0) * x, x34, lambda x: 2.0 * x)
case("numpy-add-left", lambda x: C34 + x, x34, lambda x: C34 + x)
case("numpy-sub-left", lambda x: C34 - x, x34, lambda x: C34 - x)
case("numpy-mul-left", lambda x: C34 * x, x34, lambda x: C34 * x)
case("numpy-div-left", lambda x: C34 / x, nz34, lambda x: C34 / x)
case("numpy-add-left-bcast-tensor", lambda x: C34 + x, _shape_inputs((4,)), lambda x: C34 + x)
case("numpy-add-left-bcast-array", lambda x: C4 + x, x34, lambda x: C4 + x)
case("numpy-matmul-left", lambda x: C34 @ x, _shape_inputs((4, 5)), lambda x: C34 @ x)
case("numpy-pow-left", lambda x: C34_POS**x, x34, lambda x: C34_POS**x)
case("neg", lambda x: -x, x34, np.negative)
case("neg-scalar", lambda x: -x, _shape_inputs(()), np.negative)

# ---------------------------------------------------------------------- pow
case("pow-2", lambda x: x**2, x34, lambda x: x**2)
case("pow-3", lambda x: x**3, x34, lambda x: x**3)
case("pow-0.5", lambda x: x**0.5, pos34, np.sqrt)
case("pow-1.5", lambda x: x**1.5, pos34, lambda x: x**1.5)
case("pow-neg1", lambda x: x**-1, nz34, lambda x: 1.0 / x)
case("pow-numpy-float", lambda x: x ** np.float64(2.5), pos34, lambda x: x**2.5)
case(
    "pow-tensor-tensor",
    lambda a, b: a**b,
    lambda r: [positive(r, 3, 4), randn(r, 3, 4)],
    np.power,
)
case(
    "pow-tensor-tensor-3x1-1x4",
    lambda a, b: a**b,
    lambda r: [positive(r, 3, 1), randn(r, 1, 4)],
    np.power,
)
case(
    "pow-tensor-tensor-3x4-4",
    lambda a, b: a**b,
    lambda r: [positive(r, 3, 4), randn(r, 4)],
    np.power,
)
case(
    "pow-tensor-scalar-tensor",
    lambda a, b: a**b,
    lambda r: [positive(r, 3, 4), randn(r)],
    np.power,
)
case("pow-scalar-tensor", lambda x: 2.0**x, x34, lambda x: 2.0**x)
case("pow-scalar-tensor-e", lambda x: 0.7**x, x34, lambda x: 0.7**x)

# ------------------------------------------------------------------- matmul
MATMUL_SHAPES = [
    ((3, 4), (4, 5)),
    ((1, 4), (4, 1)),
    ((2, 3, 4), (2, 4, 5)),
    ((2, 3, 4), (4, 5)),
    ((3, 4), (2, 4, 5)),
    ((2, 1, 3, 4), (5, 4, 2)),
    ((4,), (4, 5)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4,)),
    ((4,), (2, 4, 5)),
]
for sa, sb in MATMUL_SHAPES:
    case(
        f"matmul-{_shape_id(sa)}-{_shape_id(sb)}",
        lambda a, b: a @ b,
        _shape_inputs(sa, sb),
        np.matmul,
    )
case("matmul-function", af.matmul, _shape_inputs((3, 4), (4, 2)), np.matmul)

# -------------------------------------------------------------------- unary


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x**3)))


def _softmax(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, axis: int) -> np.ndarray:
    return np.log(_softmax(x, axis))


x234 = _shape_inputs((2, 3, 4))
nz234 = _shape_inputs((2, 3, 4), maker=lambda r, *s: away_from_zero(r, *s, margin=0.1))

case("exp", lambda x: x.exp(), x234, np.exp)
case("exp-function", af.exp, x34, np.exp)
case("log", lambda x: x.log(), _shape_inputs((2, 3, 4), maker=positive), np.log)
case("log-function", af.log, pos34, np.log)
case("sqrt", lambda x: x.sqrt(), _shape_inputs((2, 3, 4), maker=positive), np.sqrt)
case("sqrt-function", af.sqrt, pos34, np.sqrt)
case("abs", lambda x: x.abs(), nz234, np.abs)
case("abs-function", af.abs, nz34, np.abs)
case("tanh", lambda x: x.tanh(), x234, np.tanh)
case("tanh-function", af.tanh, x34, np.tanh)
case("sigmoid", lambda x: x.sigmoid(), x234, _sigmoid)
case("sigmoid-function", af.sigmoid, x34, _sigmoid)
case("sigmoid-wide", af.sigmoid, lambda r: [randn(r, 3, 4) * 8], _sigmoid)
case("relu", lambda x: x.relu(), nz234, lambda x: np.maximum(x, 0))
case("relu-function", af.relu, nz34, lambda x: np.maximum(x, 0))
case("leaky_relu", lambda x: x.leaky_relu(), nz234, lambda x: np.where(x > 0, x, 0.01 * x))
case(
    "leaky_relu-slope0.2",
    lambda x: af.leaky_relu(x, 0.2),
    nz34,
    lambda x: np.where(x > 0, x, 0.2 * x),
)
case("gelu", af.gelu, lambda r: [randn(r, 2, 3, 4) * 2], _gelu)
for ax in (-1, 0, 1, 2):
    case(
        f"softmax-axis{ax}", lambda x, ax=ax: x.softmax(ax), x234, lambda x, ax=ax: _softmax(x, ax)
    )
    case(
        f"log_softmax-axis{ax}",
        lambda x, ax=ax: x.log_softmax(ax),
        x234,
        lambda x, ax=ax: _log_softmax(x, ax),
    )
case("softmax-function-default", af.softmax, x34, lambda x: _softmax(x, -1))
case(
    "log_softmax-function-axis0", lambda x: af.log_softmax(x, 0), x34, lambda x: _log_softmax(x, 0)
)
case("softmax-1d", af.softmax, _shape_inputs((5,)), lambda x: _softmax(x, -1))

# --------------------------------------------------------------- reductions
AXES: list[Any] = [None, 0, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]
for ax in AXES:
    for keep in (False, True):
        tag = f"axis{ax}-keep{keep}".replace(" ", "")
        case(
            f"sum-{tag}",
            lambda x, ax=ax, keep=keep: x.sum(axis=ax, keepdims=keep),
            x234,
            lambda x, ax=ax, keep=keep: np.sum(x, axis=ax, keepdims=keep),
        )
        case(
            f"mean-{tag}",
            lambda x, ax=ax, keep=keep: x.mean(axis=ax, keepdims=keep),
            x234,
            lambda x, ax=ax, keep=keep: np.mean(x, axis=ax, keepdims=keep),
        )
        case(
            f"var-{tag}",
            lambda x, ax=ax, keep=keep: x.var(axis=ax, keepdims=keep),
            x234,
            lambda x, ax=ax, keep=keep: np.var(x, axis=ax, keepdims=keep),
        )
        case(
            f"max-{tag}",
            lambda x, ax=ax, keep=keep: x.max(axis=ax, keepdims=keep),
            lambda r: [distinct(r, 2, 3, 4)],
            lambda x, ax=ax, keep=keep: np.max(x, axis=ax, keepdims=keep),
        )
        case(
            f"min-{tag}",
            lambda x, ax=ax, keep=keep: x.min(axis=ax, keepdims=keep),
            lambda r: [distinct(r, 2, 3, 4)],
            lambda x, ax=ax, keep=keep: np.min(x, axis=ax, keepdims=keep),
        )
case("var-ddof1", lambda x: x.var(axis=1, ddof=1), x234, lambda x: np.var(x, axis=1, ddof=1))
case("sum-function", lambda x: af.sum(x, 1), x34, lambda x: np.sum(x, 1))
case(
    "mean-function",
    lambda x: af.mean(x, (0, 1), True),
    x34,
    lambda x: np.mean(x, (0, 1), keepdims=True),
)
case("max-function", lambda x: af.max(x, 0), lambda r: [distinct(r, 3, 4)], lambda x: np.max(x, 0))
case("min-function", lambda x: af.min(x), lambda r: [distinct(r, 3, 4)], np.min)
case("var-function", lambda x: af.var(x, -1), x34, lambda x: np.var(x, -1))
case("sum-0d", lambda x: x.sum(), _shape_inputs(()), np.sum)
case(
    "mean-then-broadcast",
    lambda x: x - x.mean(axis=1, keepdims=True),
    x34,
    lambda x: x - x.mean(1, keepdims=True),
)
case("sum-scalar-plus-tensor", lambda x: x.sum() + x, x34, lambda x: x.sum() + x)

# ----------------------------------------------------------------- movement
case("reshape-6x4", lambda x: x.reshape(6, 4), x234, lambda x: x.reshape(6, 4))
case("reshape-tuple", lambda x: x.reshape((3, 8)), x234, lambda x: x.reshape(3, 8))
case("reshape-infer", lambda x: x.reshape(4, -1), x234, lambda x: x.reshape(4, -1))
case("reshape-flat", lambda x: x.reshape(-1), x234, lambda x: x.reshape(-1))
case("reshape-function", lambda x: af.reshape(x, (2, 12)), x234, lambda x: x.reshape(2, 12))
case("transpose-none", lambda x: x.transpose(), x234, np.transpose)
case("transpose-args", lambda x: x.transpose(1, 0, 2), x234, lambda x: x.transpose(1, 0, 2))
case("transpose-tuple", lambda x: x.transpose((2, 0, 1)), x234, lambda x: x.transpose(2, 0, 1))
case("transpose-negative", lambda x: x.transpose(-1, 0, 1), x234, lambda x: x.transpose(2, 0, 1))
case(
    "transpose-function", lambda x: af.transpose(x, (0, 2, 1)), x234, lambda x: x.transpose(0, 2, 1)
)
case("T-2d", lambda x: x.T, x34, lambda x: x.T)
case("T-3d", lambda x: x.T, x234, lambda x: x.T)

IDX_REPEAT = np.array([0, 2, 0, 1, 0])
MASK34 = np.array(
    [[True, False, True, False], [False, False, True, True], [True, True, False, False]]
)
MASK_ROWS = np.array([True, False, True])
GETITEM: list[tuple[str, Any]] = [
    ("int", 1),
    ("negative-int", -1),
    ("int-int", (1, 2)),
    ("slice", slice(1, 3)),
    ("reverse", slice(None, None, -1)),
    ("negative-step-2d", (slice(None, None, -2), slice(3, 0, -1))),
    ("slice-int", (slice(None), 1)),
    ("ellipsis", (Ellipsis, 1)),
    ("newaxis", (None, slice(None), 2)),
    ("int-array-repeated", IDX_REPEAT),
    ("list-repeated", [0, 0, 2]),
    ("int-arrays-pairs-repeated", (np.array([0, 0, 2, 0]), np.array([1, 1, 3, 1]))),
    ("bool-mask", MASK34),
    ("bool-mask-rows", MASK_ROWS),
    ("int-and-array", (1, np.array([0, 0, 2]))),
    ("slice-and-array", (slice(None), np.array([3, 3, 0]))),
    ("array-and-reverse", (np.array([2, 2]), slice(None, None, -1))),
    ("mask-rows-and-slice", (MASK_ROWS, slice(1, None))),
]
for name, index in GETITEM:
    case(f"getitem-{name}", lambda x, index=index: x[index], x34, lambda x, index=index: x[index])
case(
    "getitem-3d-mixed",
    lambda x: x[np.array([1, 1, 0]), :, np.array([3, 3, 0])],
    x234,
    lambda x: x[np.array([1, 1, 0]), :, np.array([3, 3, 0])],
)
case(
    "getitem-tensor-index",
    lambda x: x[Tensor(np.array([2, 2, 1]))],
    x34,
    lambda x: x[np.array([2, 2, 1])],
)

# ---------------------------------------------------------------- selection
# Grid values k * 0.1 + 0.05: never within eps of the clip bounds used below or of 0.1.
grid34 = lambda r: [distinct(r, 3, 4, spacing=0.1, offset=0.05)]  # noqa: E731
case("clip-both", lambda x: x.clip(-0.5, 0.5), grid34, lambda x: np.clip(x, -0.5, 0.5))
case("clip-lo", lambda x: x.clip(-0.2, None), grid34, lambda x: np.maximum(x, -0.2))
case("clip-hi", lambda x: x.clip(hi=0.3), grid34, lambda x: np.minimum(x, 0.3))
case("clip-function", lambda x: af.clip(x, -0.1, 0.2), grid34, lambda x: np.clip(x, -0.1, 0.2))

for ax in (0, 1, -1):
    case(
        f"concat-axis{ax}",
        lambda a, b, c, ax=ax: af.concat([a, b, c], axis=ax),
        (lambda r: [randn(r, 2, 3), randn(r, 2, 3), randn(r, 2, 3)])
        if ax == 0
        else (lambda r: [randn(r, 2, 1), randn(r, 2, 3), randn(r, 2, 2)]),
        lambda a, b, c, ax=ax: np.concatenate([a, b, c], axis=ax),
    )
case(
    "concat-rows-different",
    lambda a, b: af.concat([a, b]),
    _shape_inputs((1, 3), (4, 3)),
    lambda a, b: np.concatenate([a, b]),
)
for ax in (0, 1, 2, -1):
    case(
        f"stack-axis{ax}",
        lambda a, b, c, ax=ax: af.stack([a, b, c], axis=ax),
        _shape_inputs((2, 3), (2, 3), (2, 3)),
        lambda a, b, c, ax=ax: np.stack([a, b, c], axis=ax),
    )
case(
    "concat-one-constant",
    lambda a, b: af.concat([a, b], axis=1),
    _shape_inputs((2, 3), (2, 2)),
    lambda a, b: np.concatenate([a, b], axis=1),
    wrt=(1,),
)

case(
    "where",
    lambda a, b: af.where(COND34, a, b),
    _shape_inputs((3, 4), (3, 4)),
    lambda a, b: np.where(COND34, a, b),
)
case(
    "where-bcast",
    lambda a, b: af.where(COND34, a, b),
    _shape_inputs((3, 1), (4,)),
    lambda a, b: np.where(COND34, a, b),
)
case("where-scalar", lambda a: af.where(COND34, a, 0.0), x34, lambda a: np.where(COND34, a, 0.0))
case(
    "where-tensor-cond",
    lambda a, b: af.where(Tensor(COND34), a, b),
    _shape_inputs((3, 4), (1, 4)),
    lambda a, b: np.where(COND34, a, b),
)
case(
    "where-from-comparison",
    lambda a: af.where(a > 0, a, a * 0.1),
    nz34,
    lambda a: np.where(a > 0, a, 0.1 * a),
)


def _sep_pair(sa: tuple[int, ...], sb: tuple[int, ...]) -> Callable[[Rng], list[Any]]:
    # a on the grid k, b on k + 0.5: no pair is closer than 0.5
    return lambda r: [distinct(r, *sa, spacing=1.0), distinct(r, *sb, spacing=1.0, offset=0.5)]


for name, fn, ref in (("maximum", af.maximum, np.maximum), ("minimum", af.minimum, np.minimum)):
    case(f"{name}-same", fn, _sep_pair((3, 4), (3, 4)), ref)
    case(f"{name}-3x1-1x4", fn, _sep_pair((3, 1), (1, 4)), ref)
    case(f"{name}-234-4", fn, _sep_pair((2, 3, 4), (4,)), ref)
    case(
        f"{name}-scalar-right", lambda x, fn=fn: fn(x, 0.1), grid34, lambda x, ref=ref: ref(x, 0.1)
    )
    case(f"{name}-scalar-left", lambda x, fn=fn: fn(0.1, x), grid34, lambda x, ref=ref: ref(0.1, x))

# ------------------------------------------------------------- convolution


def conv2d_reference(x, w, b=None, stride=1, padding=0):
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    n, c, h, wd = x.shape
    o, _, kh, kw = w.shape
    xpad = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xpad[:, :, ph : ph + h, pw : pw + wd] = x
    oh = (h + 2 * ph - kh) // sh + 1
    ow = (wd + 2 * pw - kw) // sw + 1
    out = np.zeros((n, o, oh, ow))
    for ni in range(n):
        for oi in range(o):
            for i in range(oh):
                for j in range(ow):
                    patch = xpad[ni, :, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    out[ni, oi, i, j] = np.sum(patch * w[oi]) + (0.0 if b is None else b[oi])
    return out


def pool2d_reference(x, kernel, stride=None, reduce=np.max):
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    if stride is None:
        sh, sw = kh, kw
    else:
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
    n, c, h, w = x.shape
    oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
    out = np.zeros((n, c, oh, ow))
    for ni in range(n):
        for ci in range(c):
            for i in range(oh):
                for j in range(ow):
                    out[ni, ci, i, j] = reduce(
                        x[ni, ci, i * sh : i * sh + kh, j * sw : j * sw + kw]
                    )
    return out


CONV: list[tuple[str, tuple[int, ...], tuple[int, ...], bool, Any, Any]] = [
    # id, x shape, w shape, bias?, stride, padding
    ("s1-p0-bias", (2, 3, 5, 5), (4, 3, 3, 3), True, 1, 0),
    ("s2-p1-bias", (2, 3, 5, 5), (4, 3, 3, 3), True, 2, 1),
    ("s1-p1-nobias", (2, 3, 5, 5), (4, 3, 3, 3), False, 1, 1),
    ("s2-p0-nobias", (2, 2, 7, 6), (3, 2, 3, 3), False, 2, 0),
    ("nonsquare-kernel-input", (1, 2, 6, 5), (3, 2, 2, 3), True, 1, 0),
    ("nonsquare-stride-padding", (1, 2, 6, 5), (3, 2, 2, 3), True, (2, 1), (1, 0)),
    ("1x1", (2, 3, 4, 4), (5, 3, 1, 1), True, 1, 0),
    ("single-channel", (3, 1, 5, 4), (2, 1, 3, 2), False, (1, 2), 1),
]
for name, xs, ws, bias, st, pd in CONV:
    if bias:
        case(
            f"conv2d-{name}",
            lambda x, w, b, st=st, pd=pd: af.conv2d(x, w, b, stride=st, padding=pd),
            _shape_inputs(xs, ws, (ws[0],)),
            lambda x, w, b, st=st, pd=pd: conv2d_reference(x, w, b, st, pd),
        )
    else:
        case(
            f"conv2d-{name}",
            lambda x, w, st=st, pd=pd: af.conv2d(x, w, stride=st, padding=pd),
            _shape_inputs(xs, ws),
            lambda x, w, st=st, pd=pd: conv2d_reference(x, w, None, st, pd),
        )

case(
    "conv2d-noncontiguous-input",
    lambda x, w: af.conv2d(x.transpose(0, 1, 3, 2), w, stride=2, padding=1),
    _shape_inputs((2, 2, 5, 6), (3, 2, 3, 3)),
    lambda x, w: conv2d_reference(x.transpose(0, 1, 3, 2), w, None, 2, 1),
)

case(
    "conv2d-relu-bias-padded",
    lambda x, w, b: af.conv2d(x, w, b, padding=1, relu=True),
    _shape_inputs((2, 3, 6, 5), (4, 3, 3, 3), (4,)),
    lambda x, w, b: np.maximum(conv2d_reference(x, w, b, 1, 1), 0),
)
case(
    "conv2d-relu-nobias-stride2",
    lambda x, w: af.conv2d(x, w, stride=2, relu=True),
    _shape_inputs((2, 2, 7, 7), (3, 2, 3, 3)),
    lambda x, w: np.maximum(conv2d_reference(x, w, None, 2, 0), 0),
)
case(
    "conv2d-relu-then-pool",  # the layout a fused conv hands to max pooling
    lambda x, w, b: af.max_pool2d(af.conv2d(x, w, b, relu=True), 2),
    _shape_inputs((2, 2, 7, 6), (3, 2, 2, 2), (3,)),
    lambda x, w, b: pool2d_reference(np.maximum(conv2d_reference(x, w, b, 1, 0), 0), 2, 2, np.max),
)

# Convolution, ReLU and a p x p pool of stride p as one op (Conv2dMaxPool).
CONV_POOL: list[tuple[str, tuple[int, ...], tuple[int, ...], bool, Any, bool, int]] = [
    # id, x shape, w shape, bias?, padding, relu?, pool
    ("relu-p2-bias", (2, 3, 7, 6), (4, 3, 3, 3), True, 0, True, 2),
    ("p2-padded-nobias", (2, 2, 7, 5), (3, 2, 3, 3), False, 1, False, 2),
    ("relu-p3-nonsquare", (1, 2, 9, 10), (3, 2, 2, 3), True, (1, 0), True, 3),
    ("relu-p2-1x1-padded", (2, 3, 5, 4), (2, 3, 1, 1), True, 2, True, 2),
]
for name, xs, ws, bias, pd, relu, pool in CONV_POOL:

    def _conv_pool_ref(x, w, b=None, pd=pd, relu=relu, pool=pool):
        out = conv2d_reference(x, w, b, 1, pd)
        return pool2d_reference(np.maximum(out, 0) if relu else out, pool, pool, np.max)

    if bias:
        case(
            f"conv2d-maxpool-{name}",
            lambda x, w, b, pd=pd, relu=relu, pool=pool: af.conv2d(
                x, w, b, padding=pd, relu=relu, max_pool=pool
            ),
            _shape_inputs(xs, ws, (ws[0],)),
            _conv_pool_ref,
        )
    else:
        case(
            f"conv2d-maxpool-{name}",
            lambda x, w, pd=pd, relu=relu, pool=pool: af.conv2d(
                x, w, padding=pd, relu=relu, max_pool=pool
            ),
            _shape_inputs(xs, ws),
            _conv_pool_ref,
        )
case(
    "conv2d-maxpool-stride2-composed",  # a strided conv is not fused: conv, then the pool
    lambda x, w: af.conv2d(x, w, stride=2, relu=True, max_pool=2),
    _shape_inputs((2, 2, 9, 9), (3, 2, 3, 3)),
    lambda x, w: pool2d_reference(np.maximum(conv2d_reference(x, w, None, 2, 0), 0), 2, 2),
)

POOL: list[tuple[str, tuple[int, ...], Any, Any]] = [
    ("k2", (2, 3, 6, 6), 2, None),
    ("k2-odd-input", (1, 2, 5, 7), 2, None),
    ("k3", (2, 2, 7, 8), 3, None),
    ("k2-s2-explicit", (1, 2, 6, 6), 2, 2),
    ("k2-s1-overlap", (1, 2, 5, 5), 2, 1),
    ("k3-s2-overlap", (1, 2, 7, 7), 3, 2),
    ("k3-s1", (1, 1, 5, 6), 3, 1),
    ("k2x3", (1, 2, 6, 6), (2, 3), None),
    ("k1x2", (1, 2, 4, 7), (1, 2), None),
    ("k3x1", (2, 1, 7, 4), (3, 1), None),
    ("k1", (1, 2, 3, 3), 1, None),
    ("k3-s3-odd-input", (1, 2, 8, 10), 3, 3),
]
for name, xs, k, s in POOL:
    case(
        f"max_pool2d-{name}",
        lambda x, k=k, s=s: af.max_pool2d(x, k, s),
        lambda r, xs=xs: [distinct(r, *xs, spacing=0.05)],
        lambda x, k=k, s=s: pool2d_reference(x, k, s, np.max),
    )
    case(
        f"avg_pool2d-{name}",
        lambda x, k=k, s=s: af.avg_pool2d(x, k, s),
        _shape_inputs(xs),
        lambda x, k=k, s=s: pool2d_reference(x, k, s, np.mean),
    )
case(
    "max_pool2d-noncontiguous-input",
    lambda x: af.max_pool2d(x.transpose(0, 1, 3, 2), 2, 1),
    lambda r: [distinct(r, 1, 2, 4, 5, spacing=0.05)],
    lambda x: pool2d_reference(x.transpose(0, 1, 3, 2), 2, 1, np.max),
)
case(
    "avg_pool2d-noncontiguous-input",
    lambda x: af.avg_pool2d(x[:, :, ::-1], 3, 2),
    _shape_inputs((1, 2, 7, 5)),
    lambda x: pool2d_reference(x[:, :, ::-1], 3, 2, np.mean),
)
case(
    "max_pool2d-channel-major-input",  # the layout a conv2d output has
    lambda x: af.max_pool2d(x.transpose(1, 0, 2, 3), 2),
    lambda r: [distinct(r, 3, 2, 6, 5, spacing=0.05)],
    lambda x: pool2d_reference(x.transpose(1, 0, 2, 3), 2, 2, np.max),
)
case(
    "max_pool2d-keyword-stride",
    lambda x: af.max_pool2d(x, kernel_size=2, stride=1),
    lambda r: [distinct(r, 1, 1, 4, 4, spacing=0.05)],
    lambda x: pool2d_reference(x, 2, 1, np.max),
)

# ------------------------------------------------------------ nn functions
case(
    "dropout-fixed-mask",
    lambda x: af.dropout(x, 0.3, True, rng=np.random.default_rng(7)),
    x234,
    None,
)
case("dropout-eval-identity", lambda x: af.dropout(x, 0.5, training=False), x34, lambda x: x)


def ce_reference(z, y, eps=0.0, reduction="mean"):
    # cross-entropy against the smoothed target distribution q, from log-softmax
    n, c = z.shape
    q = np.full((n, c), eps / c)
    q[np.arange(n), y] += 1.0 - eps
    per = -(q * _log_softmax(z, 1)).sum(axis=1)
    return {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]


for red in ("mean", "sum", "none"):
    case(
        f"cross_entropy-{red}",
        lambda z, y, red=red: af.cross_entropy(z, y, reduction=red),
        lambda r: [randn(r, 5, 4) * 2, LABELS5],
        lambda z, y, red=red: ce_reference(z, y, 0.0, red),
    )
    case(
        f"cross_entropy-smooth0.1-{red}",
        lambda z, y, red=red: af.cross_entropy(z, y, label_smoothing=0.1, reduction=red),
        lambda r: [randn(r, 5, 4) * 2, LABELS5],
        lambda z, y, red=red: ce_reference(z, y, 0.1, red),
    )
case(
    "cross_entropy-tensor-labels",
    lambda z: af.cross_entropy(z, Tensor(LABELS5)),
    lambda r: [randn(r, 5, 4)],
    lambda z: ce_reference(z, LABELS5),
)
case(
    "cross_entropy-float-labels",
    lambda z: af.cross_entropy(z, LABELS5.astype(np.float32)),
    lambda r: [randn(r, 5, 4)],
    lambda z: ce_reference(z, LABELS5),
)

case("mse_loss", af.mse_loss, _shape_inputs((4, 3), (4, 3)), lambda p, t: np.mean((p - t) ** 2))
case(
    "mse_loss-constant-target",
    af.mse_loss,
    _shape_inputs((4, 3), (4, 3)),
    lambda p, t: np.mean((p - t) ** 2),
    wrt=(0,),
)
case("mse_loss-numpy-target", lambda p: af.mse_loss(p, C34), x34, lambda p: np.mean((p - C34) ** 2))

LINEAR = [
    ("2d-bias", (5, 3), True),
    ("2d-nobias", (5, 3), False),
    ("3d-bias", (2, 5, 3), True),
    ("1d-bias", (3,), True),
]
for name, xs, bias in LINEAR:
    if bias:
        case(
            f"linear-{name}",
            af.linear,
            _shape_inputs(xs, (3, 4), (4,)),
            lambda x, w, b: x @ w + b,
        )
    else:
        case(f"linear-{name}", af.linear, _shape_inputs(xs, (3, 4)), lambda x, w: x @ w)

# The fused ReLU variants (fixed seeds keep every output clear of the kink at 0).
case(
    "linear-relu-bias",
    lambda x, w, b: af.linear(x, w, b, relu=True),
    _shape_inputs((5, 3), (3, 4), (4,)),
    lambda x, w, b: np.maximum(x @ w + b, 0),
)
case(
    "linear-relu-3d-nobias",
    lambda x, w: af.linear(x, w, relu=True),
    _shape_inputs((2, 5, 3), (3, 4)),
    lambda x, w: np.maximum(x @ w, 0),
)

# A composite expression: gradients must add up where a tensor is used several times.
case(
    "composite-mlp-layer",
    lambda x, w, b: ((x @ w + b).tanh() * x.sum(axis=1, keepdims=True)).mean(axis=0),
    _shape_inputs((4, 3), (3, 2), (2,)),
    lambda x, w, b: (np.tanh(x @ w + b) * x.sum(axis=1, keepdims=True)).mean(axis=0),
)
