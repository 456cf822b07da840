"""Neural-network ops: matmul, linear, softmax family, losses, convolution, pooling, dropout."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import backend, random
from ..tensor import Function, ShapeError, Tensor
from .elementwise import as_tensor, pair, unbroadcast
from .movement import reshape


# ---------------------------------------------------------------- matmul family
class MatMul(Function):
    def forward(self, a: Any, b: Any) -> Any:
        if a.shape[-1] != b.shape[-2]:
            raise ShapeError(
                f"matmul: inner dimensions differ: {tuple(a.shape)} @ {tuple(b.shape)} "
                f"({a.shape[-1]} != {b.shape[-2]})"
            )
        self.a, self.b = a, b
        return a @ b

    def backward(self, g: Any) -> Any:
        a, b = self.a, self.b
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = unbroadcast(g @ b.swapaxes(-1, -2), a.shape)
        if self.needs_input_grad[1]:
            gb = unbroadcast(a.swapaxes(-1, -2) @ g, b.shape)
        return ga, gb


def matmul(a: Any, b: Any) -> Tensor:
    """Matrix product; 2-D, or batched over leading dimensions with broadcasting. 1-D operands
    are treated as a row (left) or column (right) vector and that dimension is dropped again."""
    ta, tb = pair(a, b)
    if ta.ndim == 0 or tb.ndim == 0:
        raise ShapeError(
            f"matmul: operands must have at least one dimension, got {ta.shape} @ {tb.shape}"
        )
    squeeze_left = ta.ndim == 1
    squeeze_right = tb.ndim == 1
    if squeeze_left:
        ta = reshape(ta, (1, ta.shape[0]))
    if squeeze_right:
        tb = reshape(tb, (tb.shape[0], 1))
    out = MatMul()(ta, tb)
    if squeeze_left or squeeze_right:
        shape = list(out.shape)
        if squeeze_right:
            shape.pop(-1)
        if squeeze_left:
            shape.pop(-1 if squeeze_right else -2)
        out = reshape(out, tuple(shape))
    return out


class Linear(Function):
    """x @ w (+ b) in one op: x (..., in), w (in, out), b (out,). With `relu`, the ReLU is
    applied in place on the result (one node, no extra array)."""

    def __init__(self, relu: bool = False) -> None:
        self.relu = relu

    def forward(self, x: Any, w: Any, b: Any = None) -> Any:
        if x.shape[-1] != w.shape[0]:
            raise ShapeError(
                f"linear: input has {x.shape[-1]} features but the weight expects {w.shape[0]} "
                f"(input {tuple(x.shape)}, weight {tuple(w.shape)})"
            )
        self.x, self.w = x, w
        y = x @ w
        if b is not None:
            y += b
        if self.relu:
            backend.get_array_module(y).maximum(y, 0, out=y)
            self.y = y
        return y

    def backward(self, g: Any) -> Any:
        x, w = self.x, self.w
        need = self.needs_input_grad
        if self.relu:
            g = g * (self.y > 0)
        g2 = g.reshape(-1, g.shape[-1])
        gx = (g @ w.T) if need[0] else None
        gw = (x.reshape(-1, x.shape[-1]).T @ g2) if need[1] else None
        if len(need) == 3:
            gb = g2.sum(axis=0) if need[2] else None
            return gx, gw, gb
        return gx, gw


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None, relu: bool = False) -> Tensor:
    """x @ weight + bias; `relu=True` gives relu(linear(...)) as one op."""
    if weight.ndim != 2:
        raise ShapeError(
            f"linear: weight must be 2-D (in_features, out_features), got {weight.shape}"
        )
    if bias is None:
        return Linear(bool(relu))(x, weight)
    if bias.shape != (weight.shape[1],):
        raise ShapeError(f"linear: bias must have shape ({weight.shape[1]},), got {bias.shape}")
    return Linear(bool(relu))(x, weight, bias)


# --------------------------------------------------------------- softmax family
class Softmax(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, a: Any) -> Any:
        xp = backend.get_array_module(a)
        e = xp.exp(a - a.max(axis=self.axis, keepdims=True))
        e /= e.sum(axis=self.axis, keepdims=True)
        self.y = e
        return e

    def backward(self, g: Any) -> Any:
        y = self.y
        return y * (g - (g * y).sum(axis=self.axis, keepdims=True))


def _log_softmax(xp: Any, a: Any, axis: int) -> Any:
    shifted = a - a.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    def __init__(self, axis: int) -> None:
        self.axis = axis

    def forward(self, a: Any) -> Any:
        self.y = _log_softmax(backend.get_array_module(a), a, self.axis)
        return self.y

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        return g - xp.exp(self.y) * g.sum(axis=self.axis, keepdims=True)


def _check_axis(t: Tensor, axis: int, op: str) -> int:
    if not -t.ndim <= axis < t.ndim:
        raise ValueError(f"{op}: axis {axis} is out of range for shape {t.shape}")
    return axis % t.ndim


def softmax(a: Tensor, axis: int = -1) -> Tensor:
    return Softmax(_check_axis(a, axis, "softmax"))(a)


def log_softmax(a: Tensor, axis: int = -1) -> Tensor:
    return LogSoftmax(_check_axis(a, axis, "log_softmax"))(a)


# ----------------------------------------------------------------------- losses
_REDUCTIONS = ("mean", "sum", "none")


class CrossEntropy(Function):
    def __init__(self, labels: Any, label_smoothing: float, reduction: str) -> None:
        self.labels, self.eps, self.reduction = labels, label_smoothing, reduction

    def forward(self, logits: Any) -> Any:
        xp = backend.get_array_module(logits)
        n = logits.shape[0]
        logp = _log_softmax(xp, logits, 1)
        rows = xp.arange(n)
        per_sample = -logp[rows, self.labels]
        if self.eps:
            per_sample = (1 - self.eps) * per_sample - self.eps * logp.mean(axis=1)
        self.logp, self.rows = logp, rows
        if self.reduction == "mean":
            return per_sample.mean()
        if self.reduction == "sum":
            return per_sample.sum()
        return per_sample

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        logp = self.logp
        n, c = logp.shape
        grad = xp.exp(logp)  # softmax probabilities; we subtract the target distribution
        if self.eps:
            grad -= self.eps / c
        grad[self.rows, self.labels] -= 1 - self.eps
        if self.reduction == "mean":
            grad *= g / n
        elif self.reduction == "sum":
            grad *= g
        else:
            grad *= g[:, None]
        return grad


def cross_entropy(
    logits: Tensor, labels: Any, label_smoothing: float = 0.0, reduction: str = "mean"
) -> Tensor:
    """Softmax cross-entropy from raw scores (N, C) and integer class labels (N,).

    Computed through log-sum-exp, so huge logits do not overflow.
    """
    if logits.ndim != 2:
        raise ShapeError(
            f"cross_entropy: logits must be (batch, classes), got shape {logits.shape}"
        )
    if reduction not in _REDUCTIONS:
        raise ValueError(
            f"cross_entropy: reduction must be one of {_REDUCTIONS}, got {reduction!r}"
        )
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1), got {label_smoothing}")
    y = labels.data if isinstance(labels, Tensor) else labels
    xp = backend.get_array_module(logits.data)
    y = xp.asarray(y)
    if y.dtype.kind == "f":
        if y.size and not bool(xp.all(y == xp.round(y))):
            raise ValueError(
                "cross_entropy: labels must be integer class indices, got fractional values"
            )
        y = y.astype(np.int64)
    elif y.dtype.kind not in "iu":
        raise ValueError(
            f"cross_entropy: labels must be integer class indices, got dtype {y.dtype}"
        )
    n, c = logits.shape
    if y.shape != (n,):
        raise ShapeError(
            f"cross_entropy: expected {n} labels of shape ({n},), got shape {tuple(y.shape)}"
        )
    if n and (int(y.min()) < 0 or int(y.max()) >= c):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {c - 1}] for {c} classes, "
            f"got values from {int(y.min())} to {int(y.max())}"
        )
    return CrossEntropy(y, float(label_smoothing), reduction)(logits)


class MSE(Function):
    def forward(self, pred: Any, target: Any) -> Any:
        self.diff = pred - target
        return (self.diff * self.diff).mean()

    def backward(self, g: Any) -> Any:
        scaled = self.diff * (2.0 * g / self.diff.size)
        gp = scaled if self.needs_input_grad[0] else None
        gt = -scaled if self.needs_input_grad[1] else None
        return gp, gt


def mse_loss(pred: Tensor, target: Any) -> Tensor:
    """Mean squared error. Shapes must match exactly: silently broadcasting (N, 1) against (N,)
    is a classic bug that trains on the wrong objective."""
    p, t = pair(pred, target)
    if p.shape != t.shape:
        raise ShapeError(
            f"mse_loss: prediction shape {p.shape} does not match target shape {t.shape}"
        )
    return MSE()(p, t)


# ------------------------------------------------------------------ convolution
def _pair2(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {v!r}")
        a, b = int(v[0]), int(v[1])
    else:
        a = b = int(v)
    return a, b


def _offsets(kh: int, kw: int, sh: int, sw: int, oh: int, ow: int) -> list[tuple[int, int, Any]]:
    """For each kernel offset (i, j): the index that picks, from the padded input, the input
    pixel every output position sees at that offset. Loops over the kernel, never pixels."""
    hspan, wspan = sh * (oh - 1) + 1, sw * (ow - 1) + 1
    return [
        (i, j, (slice(None), slice(None), slice(i, i + hspan, sh), slice(j, j + wspan, sw)))
        for i in range(kh)
        for j in range(kw)
    ]


def _out_size(size: int, k: int, s: int, p: int, op: str, what: str) -> int:
    out = (size + 2 * p - k) // s + 1
    if out < 1:
        raise ShapeError(
            f"{op}: the {what} of the input ({size}, padding {p}) is smaller than the kernel ({k})"
        )
    return out


class Conv2d(Function):
    """NCHW convolution by im2col: one big matrix product instead of loops over pixels.

    The column matrix is laid out (C*kh*kw, N*OH*OW) from a channel-major copy of the input, so
    each kernel offset is one long contiguous copy. The output comes back as a (N, O, OH, OW)
    view of channel-major memory; a following conv's channel-major copy is then nearly free.
    A bias is a row of ones under the columns and a column of the weight matrix, so the
    product adds it (and in backward, the same product sums its gradient) with no extra pass.
    With `relu`, the ReLU is applied in place on the product (one node, no extra array).
    """

    def __init__(
        self, stride: tuple[int, int], padding: tuple[int, int], relu: bool = False
    ) -> None:
        self.stride, self.padding, self.relu = stride, padding, relu

    def forward(self, x: Any, w: Any, b: Any = None) -> Any:
        xp = backend.get_array_module(x)
        n, c, h, wd = x.shape
        o, ci, kh, kw = w.shape
        if ci != c:
            raise ShapeError(
                f"conv2d: input has {c} channels but the weight {tuple(w.shape)} expects {ci}"
            )
        (sh, sw), (ph, pw) = self.stride, self.padding
        oh = _out_size(h, kh, sh, ph, "conv2d", "height")
        ow = _out_size(wd, kw, sw, pw, "conv2d", "width")
        xc = x.transpose(1, 0, 2, 3)  # (C, N, H, W)
        if ph or pw:
            xc = xp.pad(xc, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        k = c * kh * kw
        with_bias = b is not None
        cols = xp.empty((k + with_bias, n * oh * ow), dtype=x.dtype)
        patches = cols[:k].reshape(c, kh, kw, n, oh, ow)
        for i, j, idx in _offsets(kh, kw, sh, sw, oh, ow):
            patches[:, i, j] = xc[idx]
        wm = w.reshape(o, k)
        if with_bias:
            cols[k] = 1
            wm = xp.concatenate([wm, b.reshape(o, 1).astype(wm.dtype, copy=False)], axis=1)
        out = wm @ cols  # (O, N*OH*OW)
        if self.relu:
            xp.maximum(out, 0, out=out)
        self.cols, self.w = cols, w
        self.geom = (n, c, h, wd, oh, ow, kh, kw, sh, sw, ph, pw)
        y = out.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)
        if self.relu:
            self.y = y
        return y

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        n, c, h, wd, oh, ow, kh, kw, sh, sw, ph, pw = self.geom
        w = self.w
        o = w.shape[0]
        if self.relu:
            g = g * (self.y > 0)  # keeps g's layout: channel-major when g came from this layer
        g_o = g.transpose(1, 0, 2, 3).reshape(o, n * oh * ow)  # free when g is channel-major
        need = self.needs_input_grad
        k = c * kh * kw
        gw = gb = None
        if need[1] or (len(need) == 3 and need[2]):
            # (O, k [+ 1]), the last column the bias gradient. Computed as (cols @ g_o^T)^T:
            # OpenBLAS is about 30% faster with the long pixel axis as the rows' inner one.
            gwb = (self.cols @ g_o.T).T
            if need[1]:
                gw = xp.ascontiguousarray(gwb[:, :k]).reshape(w.shape)
            if len(need) == 3 and need[2]:
                gb = gwb[:, k].copy()
        gx = None
        if need[0]:
            gcols = (w.reshape(o, k).T @ g_o).reshape(c, kh, kw, n, oh, ow)
            offsets = _offsets(kh, kw, sh, sw, oh, ow)
            if (sh, sw) == (1, 1):  # offset (0, 0) covers all but the last rows and columns
                gxc = xp.empty((c, n, h + 2 * ph, wd + 2 * pw), dtype=g.dtype)
                gxc[:, :, :oh, :ow] = gcols[:, 0, 0]
                gxc[:, :, oh:] = 0
                gxc[:, :, :oh, ow:] = 0
                offsets = offsets[1:]
            else:
                gxc = xp.zeros((c, n, h + 2 * ph, wd + 2 * pw), dtype=g.dtype)
            for i, j, idx in offsets:  # col2im
                gxc[idx] += gcols[:, i, j]
            gx = gxc[:, :, ph : ph + h, pw : pw + wd].transpose(1, 0, 2, 3)
        if len(need) == 3:
            return gx, gw, gb
        return gx, gw


class Conv2dMaxPool(Function):
    """A stride-1 convolution, an optional ReLU and a p x p max pool of stride p, as one op.

    The convolution is computed only where the pool looks (a floor pool drops the last row
    or column of an odd-sized output), and its columns are ordered so that each of the p*p
    positions of a pool window is one contiguous block of the product: the pool is then
    p*p - 1 `maximum`s over long contiguous rows instead of passes over strided views,
    and backward routes the gradient block by block, with no argmax and no scatter.

    The input is split once into its p*p polyphase components (rows r = p*r' + u, columns
    c = p*c' + v); the column of pool phase (dy, dx) and kernel offset (i, j) is then a
    slice of component ((dy+i) % p, (dx+j) % p) shifted by ((dy+i) // p, (dx+j) // p),
    copied as one run per image. Each image's pooled row is computed `wq` wide (a few
    spare columns, zero gradient) so that a whole image is one run. As in the separate
    ops, max(relu(a), relu(b)) = relu(max(a, b)), and ties go to the first position of the
    window in scan order.
    """

    def __init__(self, padding: tuple[int, int], pool: int, relu: bool) -> None:
        self.padding, self.pool, self.relu = padding, pool, relu

    def forward(self, x: Any, w: Any, b: Any = None) -> Any:
        xp = backend.get_array_module(x)
        n, c, h, wd = x.shape
        o, ci, kh, kw = w.shape
        if ci != c:
            raise ShapeError(
                f"conv2d: input has {c} channels but the weight {tuple(w.shape)} expects {ci}"
            )
        (ph, pw), p = self.padding, self.pool
        oh = _out_size(h, kh, 1, ph, "conv2d", "height")
        ow = _out_size(wd, kw, 1, pw, "conv2d", "width")
        qh = _out_size(oh, p, p, 0, "max_pool2d", "height")
        qw = _out_size(ow, p, p, 0, "max_pool2d", "width")
        # component rows/columns read: pooled row + shift up to (p - 1 + kh - 1) // p
        hr = qh + (p + kh - 2) // p
        wq = qw + (p + kw - 2) // p
        lq = qh * wq  # one image's pooled positions, wq wide
        comp = xp.zeros((p, p, c, n, hr * wq + wq), dtype=x.dtype)  # a spare row of zeros
        xc = x.transpose(1, 0, 2, 3)
        for inside, grid in _phase_grids(comp, (c, n, h, wd), ph, pw, p, hr, wq):
            grid[...] = xc[inside]
        k = c * kh * kw
        with_bias = b is not None
        cols = xp.empty((k + with_bias, p * p * n * lq), dtype=x.dtype)
        blocks = cols[:k].reshape(c, kh, kw, p, p, n, lq)
        for i, j, dy, dx, u, v, shift in _phase_offsets(kh, kw, p, wq):
            blocks[:, i, j, dy, dx] = comp[u, v, :, :, shift : shift + lq]
        wm = w.reshape(o, k)
        if with_bias:
            cols[k] = 1
            wm = xp.concatenate([wm, b.reshape(o, 1).astype(wm.dtype, copy=False)], axis=1)
        out = (wm @ cols).reshape(o, p * p, n * lq)  # (O, window position, N*lq)
        best = out[:, 0].copy()
        for q in range(1, p * p):
            xp.maximum(best, out[:, q], out=best)
        if self.relu:
            xp.maximum(best, 0, out=best)
        self.cols, self.w, self.out, self.best = cols, w, out, best
        self.geom = (n, c, h, wd, kh, kw, ph, pw, qh, qw, hr, wq)
        return best.reshape(o, n, qh, wq)[:, :, :, :qw].transpose(1, 0, 2, 3)

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        n, c, h, wd, kh, kw, ph, pw, qh, qw, hr, wq = self.geom
        p, w, out, best = self.pool, self.w, self.out, self.best
        o = w.shape[0]
        lq = qh * wq
        gb4 = xp.empty((o, n, qh, wq), dtype=g.dtype)
        gb4[:, :, :, qw:] = 0  # the spare columns were never output
        if self.relu:  # max > 0 where the ReLU let the gradient through
            passed = best.reshape(o, n, qh, wq)[:, :, :, :qw] > 0
            xp.multiply(g.transpose(1, 0, 2, 3), passed, out=gb4[:, :, :, :qw])
        else:
            gb4[:, :, :, :qw] = g.transpose(1, 0, 2, 3)
        left = gb4.reshape(o, n * lq)  # the gradient not yet given to a window position
        g_out = xp.empty_like(out)
        hit = xp.empty(left.shape, dtype=bool)
        for q in range(p * p - 1):  # the first position (scan order) holding the max wins
            xp.equal(out[:, q], best, out=hit)
            xp.multiply(left, hit, out=g_out[:, q])
            xp.subtract(left, g_out[:, q], out=left)
        g_out[:, p * p - 1] = left
        g_o = g_out.reshape(o, -1)
        need = self.needs_input_grad
        k = c * kh * kw
        gw = gb = None
        if need[1] or (len(need) == 3 and need[2]):
            gwb = (self.cols @ g_o.T).T  # see Conv2d.backward for the orientation
            if need[1]:
                gw = xp.ascontiguousarray(gwb[:, :k]).reshape(w.shape)
            if len(need) == 3 and need[2]:
                gb = gwb[:, k].copy()
        gx = None
        if need[0]:
            gblocks = (w.reshape(o, k).T @ g_o).reshape(c, kh, kw, p, p, n, lq)
            gcomp = xp.zeros((p, p, c, n, hr * wq + wq), dtype=g.dtype)
            for i, j, dy, dx, u, v, shift in _phase_offsets(kh, kw, p, wq):
                gcomp[u, v, :, :, shift : shift + lq] += gblocks[:, i, j, dy, dx]
            gxc = xp.zeros((c, n, h, wd), dtype=g.dtype)  # rows the pool drops stay zero
            for inside, grid in _phase_grids(gcomp, (c, n, h, wd), ph, pw, p, hr, wq):
                gxc[inside] = grid
            gx = gxc.transpose(1, 0, 2, 3)
        if len(need) == 3:
            return gx, gw, gb
        return gx, gw


def _phase_grids(
    comp: Any, shape: tuple[int, int, int, int], ph: int, pw: int, p: int, hr: int, wq: int
) -> list[tuple[Any, Any]]:
    """Pairs each polyphase component's (hr, wq) grid, cut to the part that holds input
    pixels, with the index of those pixels in the (C, N, H, W) input."""
    c, n, h, wd = shape
    out = []
    for u in range(p):
        r0, y0, nr = _phase_span(u, ph, p, h, hr)
        for v in range(p):
            s0, z0, ns = _phase_span(v, pw, p, wd, wq)
            if nr > 0 and ns > 0:
                grid = comp[u, v, :, :, : hr * wq].reshape(c, n, hr, wq)
                inside = (
                    slice(None),
                    slice(None),
                    slice(y0, y0 + p * (nr - 1) + 1, p),
                    slice(z0, z0 + p * (ns - 1) + 1, p),
                )
                out.append((inside, grid[:, :, r0 : r0 + nr, s0 : s0 + ns]))
    return out


def _phase_span(u: int, pad: int, p: int, size: int, count: int) -> tuple[int, int, int]:
    """Component index r0, input index y0 and count of the input rows (or columns) that
    land in polyphase component u: padded position p*r + u = y + pad for y in [0, size)."""
    r0 = max(0, -((u - pad) // p))  # the first r with p*r + u - pad >= 0
    y0 = p * r0 + u - pad
    nr = min(count - r0, -(-(size - y0) // p)) if y0 < size else 0
    return r0, y0, nr


def _phase_offsets(
    kh: int, kw: int, p: int, wq: int
) -> list[tuple[int, int, int, int, int, int, int]]:
    """For kernel offset (i, j) and pool phase (dy, dx): the polyphase component (u, v) and
    the shift within it of the input pixels that output positions of that phase see."""
    out = []
    for i in range(kh):
        for j in range(kw):
            for dy in range(p):
                for dx in range(p):
                    a, bb = dy + i, dx + j
                    out.append((i, j, dy, dx, a % p, bb % p, (a // p) * wq + bb // p))
    return out


def conv2d(
    x: Tensor,
    w: Tensor,
    b: Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    relu: bool = False,
    max_pool: int | None = None,
) -> Tensor:
    """2-D convolution (cross-correlation), NCHW input, weight (out, in, kh, kw), bias (out,).

    `relu=True` gives relu(conv2d(...)) as one op, without the intermediate array.
    `max_pool=p` then max-pools p x p windows with stride p, as `max_pool2d(..., p)` would;
    with stride 1 all of it is one op (`Conv2dMaxPool`)."""
    if x.ndim != 4:
        raise ShapeError(f"conv2d: input must be 4-D (N, C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ShapeError(f"conv2d: weight must be 4-D (out, in, kh, kw), got shape {w.shape}")
    st, pd = _pair2(stride, "stride"), _pair2(padding, "padding")
    if min(st) < 1 or min(pd) < 0:
        raise ValueError(
            f"conv2d: stride must be >= 1 and padding >= 0, got {stride} and {padding}"
        )
    if b is not None and b.shape != (w.shape[0],):
        raise ShapeError(f"conv2d: bias must have shape ({w.shape[0]},), got {b.shape}")
    if max_pool is not None and (isinstance(max_pool, bool) or int(max_pool) < 1):
        raise ValueError(f"conv2d: max_pool must be a positive int, got {max_pool!r}")
    pool = 1 if max_pool is None else int(max_pool)
    op: Function
    if pool > 1 and st == (1, 1):
        op = Conv2dMaxPool(pd, pool, bool(relu))
    else:
        op = Conv2d(st, pd, bool(relu))
    out = op(x, w) if b is None else op(x, w, b)
    if pool > 1 and not isinstance(op, Conv2dMaxPool):
        out = MaxPool2d((pool, pool), (pool, pool))(out)
    return out


def _running_max(xp: Any, parts: list[Any]) -> tuple[Any, Any]:
    """Elementwise max over same-shaped arrays and which one won, the first on ties (as
    PyTorch). Two parts: the winner is a bool (True = the second); more: uint8 indices."""
    if len(parts) == 2:
        first, second = parts
        return xp.maximum(first, second), xp.greater(second, first)
    best = parts[0].copy()
    arg = xp.zeros(best.shape, dtype=np.uint8)
    better = xp.empty(best.shape, dtype=bool)
    for k, part in enumerate(parts[1:], start=1):
        xp.greater(part, best, out=better)
        xp.copyto(best, part, where=better)
        xp.copyto(arg, k, where=better)
    return best, arg


def _route(xp: Any, g: Any, arg: Any, outs: list[Any]) -> None:
    """The backward of `_running_max`: g goes to the winning part, zero to the others."""
    if len(outs) == 2:
        xp.multiply(g, arg, out=outs[1])
        xp.subtract(g, outs[1], out=outs[0])
        return
    for k, out in enumerate(outs):
        xp.multiply(g, arg == k, out=out)


class MaxPool2d(Function):
    """Max over each window; ties go to the first element in scan order, as in PyTorch.

    Non-overlapping windows (stride == kernel, the usual 2x2 pool) view the input as
    (N, C, OH, kh, OW, kw) and reduce the kw axis, then the kh axis, each a running max
    over strided slices that remembers its winner; backward routes the gradient back
    through the same two steps with a multiply per slice (no argmax gathers, no scatter).
    Overlapping windows use a running max over the kernel's offsets with a flat argmax.
    """

    arg_w: Any
    arg_h: Any

    def __init__(self, k: tuple[int, int], s: tuple[int, int]) -> None:
        self.k, self.s = k, s

    def forward(self, x: Any) -> Any:
        xp = backend.get_array_module(x)
        h, w = x.shape[2:]
        (kh, kw), (sh, sw) = self.k, self.s
        oh = _out_size(h, kh, sh, 0, "max_pool2d", "height")
        ow = _out_size(w, kw, sw, 0, "max_pool2d", "width")
        self.x, self.geom = x, (oh, ow)
        if (kh, kw) == (sh, sw):
            return self._forward_tiled(xp, x, oh, ow)
        offsets = _offsets(kh, kw, sh, sw, oh, ow)
        best, self.arg = _running_max(xp, [x[idx] for _, _, idx in offsets])
        return best

    def _tiles(self, a: Any, oh: int, ow: int) -> Any:
        """(N, C, OH, kh, OW, kw) view of a's complete windows (splitting axes never copies)."""
        (kh, kw) = self.k
        n, c = a.shape[:2]
        return a[:, :, : oh * kh, : ow * kw].reshape(n, c, oh, kh, ow, kw)

    def _forward_tiled(self, xp: Any, x: Any, oh: int, ow: int) -> Any:
        kh, kw = self.k
        tiles = self._tiles(x, oh, ow)
        arg_w: Any = None  # which column of each window held the max (None: one column)
        if kw > 1:
            rows, arg_w = _running_max(xp, [tiles[..., j] for j in range(kw)])
        else:
            rows = tiles[..., 0]
        self.arg_w = arg_w
        if kh == 1:
            self.arg_h = None
            return rows[:, :, :, 0].copy() if kw == 1 else rows[:, :, :, 0]
        best, self.arg_h = _running_max(xp, [rows[:, :, :, i] for i in range(kh)])
        return best

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        (kh, kw), (sh, sw) = self.k, self.s
        oh, ow = self.geom
        x = self.x
        if (kh, kw) != (sh, sw):
            gx = xp.zeros_like(x)  # same memory layout as the input
            parts = [xp.empty(g.shape, dtype=g.dtype) for _ in range(kh * kw)]
            _route(xp, g, self.arg, parts)
            for part, (_, _, idx) in zip(parts, _offsets(kh, kw, sh, sw, oh, ow), strict=True):
                gx[idx] += part
            return gx
        h, w = x.shape[2:]
        # Every element of a complete window is written below; only a cropped border needs zeros.
        gx = xp.empty_like(x)  # same memory layout as the input
        if h != oh * kh:
            gx[:, :, oh * kh :] = 0
        if w != ow * kw:
            gx[:, :, :, ow * kw :] = 0
        tiles = self._tiles(gx, oh, ow)
        if kh == 1:
            grows = g[:, :, :, None]
        else:
            grows = xp.empty((*g.shape[:3], kh, g.shape[3]), dtype=g.dtype)
            _route(xp, g, self.arg_h, [grows[:, :, :, i] for i in range(kh)])
        if kw == 1:
            tiles[..., 0] = grows
        else:
            _route(xp, grows, self.arg_w, [tiles[..., j] for j in range(kw)])
        return gx


class AvgPool2d(Function):
    def __init__(self, k: tuple[int, int], s: tuple[int, int]) -> None:
        self.k, self.s = k, s

    def forward(self, x: Any) -> Any:
        h, w = x.shape[2:]
        (kh, kw), (sh, sw) = self.k, self.s
        oh = _out_size(h, kh, sh, 0, "avg_pool2d", "height")
        ow = _out_size(w, kw, sw, 0, "avg_pool2d", "width")
        offsets = _offsets(kh, kw, sh, sw, oh, ow)
        total = x[offsets[0][2]].copy()
        for _, _, idx in offsets[1:]:
            total += x[idx]
        total *= x.dtype.type(1.0 / (kh * kw))
        self.x, self.geom = x, (oh, ow)
        return total

    def backward(self, g: Any) -> Any:
        xp = backend.get_array_module(g)
        (kh, kw), (sh, sw) = self.k, self.s
        oh, ow = self.geom
        gx = xp.zeros_like(self.x)
        share = g / (kh * kw)
        for _, _, idx in _offsets(kh, kw, sh, sw, oh, ow):
            gx[idx] += share
        return gx


def _pool_args(
    x: Tensor, kernel_size: Any, stride: Any, op: str
) -> tuple[tuple[int, int], tuple[int, int]]:
    if x.ndim != 4:
        raise ShapeError(f"{op}: input must be 4-D (N, C, H, W), got shape {x.shape}")
    k = _pair2(kernel_size, "kernel_size")
    s = k if stride is None else _pair2(stride, "stride")
    if min(k) < 1 or min(s) < 1:
        raise ValueError(
            f"{op}: kernel_size and stride must be >= 1, got {kernel_size} and {stride}"
        )
    return k, s


def max_pool2d(
    x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
) -> Tensor:
    """Max over each window; stride defaults to the kernel size; partial windows are dropped."""
    return MaxPool2d(*_pool_args(x, kernel_size, stride, "max_pool2d"))(x)


def avg_pool2d(
    x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None
) -> Tensor:
    """Mean over each window; stride defaults to the kernel size; partial windows are dropped."""
    return AvgPool2d(*_pool_args(x, kernel_size, stride, "avg_pool2d"))(x)


# ---------------------------------------------------------------------- dropout
class Dropout(Function):
    def __init__(self, mask: Any) -> None:
        self.mask = mask

    def forward(self, x: Any) -> Any:
        return x * self.mask

    def backward(self, g: Any) -> Any:
        return g * self.mask


def dropout(x: Tensor, p: float = 0.5, training: bool = True, rng: Any = None) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout);
    the identity when not training. `rng` is a numpy Generator (default: azuraforge_core's)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout: p must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    xp = backend.get_array_module(x.data)
    if p == 1.0:
        mask = xp.zeros(x.shape, dtype=x.dtype)
    else:
        keep = random.uniform(x.shape, rng) >= p
        if xp is not np:
            keep = xp.asarray(keep)
        mask = keep.astype(x.dtype) / x.dtype.type(1.0 - p)
    return Dropout(mask)(x)


__all__ = [
    "as_tensor",
    "avg_pool2d",
    "conv2d",
    "cross_entropy",
    "dropout",
    "linear",
    "log_softmax",
    "matmul",
    "max_pool2d",
    "mse_loss",
    "softmax",
]
