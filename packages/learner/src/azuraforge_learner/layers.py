"""Feed-forward layers: dense, convolution, pooling, normalisation, embedding, activations.

Every layer keeps its constructor arguments in `get_config()` so `describe()`/`build()`
round-trips it. Heavy lifting goes to azuraforge_core's fused ops (`af.linear`,
`af.conv2d`, ...) so each layer is one or two graph nodes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import azuraforge_core as af
from azuraforge_core import ShapeError, Tensor, no_grad
from azuraforge_core.backend import get_array_module, to_device

from . import init
from .functional import normalize
from .module import Module, Parameter


def as_input(x: Any) -> Tensor:
    """Layers accept tensors, numpy arrays and nested lists."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _pair(v: Any, name: str) -> tuple[int, int]:
    if isinstance(v, (tuple, list)):
        if len(v) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
        return int(v[0]), int(v[1])
    return int(v), int(v)


def _json_pair(v: Any) -> int | list[int]:
    """An int stays an int; a pair becomes a list (JSON has no tuples)."""
    return [int(v[0]), int(v[1])] if isinstance(v, (tuple, list)) else int(v)


def _positive(value: Any, name: str, layer: str) -> int:
    if isinstance(value, bool) or int(value) != value or int(value) < 1:
        raise ValueError(f"{layer}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _constant_like(arr: np.ndarray, like: Tensor) -> Tensor:
    """A no-grad tensor with `like`'s dtype and device."""
    arr = arr.astype(like.dtype)
    if like.device != "cpu":
        arr = to_device(arr, like.device)
    return Tensor._make(arr)


# ------------------------------------------------------------------------- dense
class Linear(Module):
    """y = x @ weight + bias, weight stored (in_features, out_features).

    Weights start with He (Kaiming) uniform initialisation, suited to ReLU networks;
    the bias starts at zero."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True) -> None:
        super().__init__()
        self.in_features = _positive(in_features, "in_features", "Linear")
        self.out_features = _positive(out_features, "out_features", "Linear")
        self.use_bias = bool(bias)
        shape = (self.in_features, self.out_features)
        self.weight = Parameter(init.kaiming_uniform(shape, self.in_features))
        self.bias = Parameter(init.zeros((self.out_features,))) if self.use_bias else None

    def forward(self, x: Any, relu: bool = False) -> Tensor:
        """`relu=True` returns relu(self(x)) as one op (Sequential uses it for Linear, ReLU)."""
        x = as_input(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            got = x.shape[-1] if x.ndim else "no"
            raise ShapeError(
                f"Linear expected {self.in_features} input features (last axis) but got {got} "
                f"(input shape {x.shape}); in_features={self.in_features}"
            )
        return af.linear(x, self.weight, self.bias, relu=relu)

    def get_config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.use_bias,
        }


# ------------------------------------------------------------------ convolution
class Conv2D(Module):
    """2-D convolution on NCHW input; weight (out_channels, in_channels, kh, kw), He init."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int] | list[int],
        stride: int | tuple[int, int] | list[int] = 1,
        padding: int | tuple[int, int] | list[int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = _positive(in_channels, "in_channels", "Conv2D")
        self.out_channels = _positive(out_channels, "out_channels", "Conv2D")
        kh, kw = _pair(kernel_size, "kernel_size")
        sh, sw = _pair(stride, "stride")
        ph, pw = _pair(padding, "padding")
        if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
            raise ValueError(
                f"Conv2D: kernel_size and stride must be >= 1 and padding >= 0, got "
                f"kernel_size={kernel_size!r}, stride={stride!r}, padding={padding!r}"
            )
        self.kernel_size, self.stride, self.padding = (kh, kw), (sh, sw), (ph, pw)
        self._config_geom = (_json_pair(kernel_size), _json_pair(stride), _json_pair(padding))
        self.use_bias = bool(bias)
        fan_in = self.in_channels * kh * kw
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.weight = Parameter(init.kaiming_uniform(shape, fan_in))
        self.bias = Parameter(init.zeros((self.out_channels,))) if self.use_bias else None

    def forward(self, x: Any, relu: bool = False, max_pool: int | None = None) -> Tensor:
        """`relu=True` returns relu(self(x)) as one op, and `max_pool=p` then max-pools p x p
        windows of stride p (Sequential uses them for Conv2D, ReLU[, MaxPool2D])."""
        x = as_input(x)
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ShapeError(
                f"Conv2D expected input (batch, {self.in_channels}, height, width) but got shape "
                f"{x.shape}; in_channels={self.in_channels}"
            )
        return af.conv2d(
            x, self.weight, self.bias, self.stride, self.padding, relu=relu, max_pool=max_pool
        )

    def get_config(self) -> dict[str, Any]:
        k, s, p = self._config_geom
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": k,
            "stride": s,
            "padding": p,
            "bias": self.use_bias,
        }


class _Pool2D(Module):
    _op_name = ""

    def __init__(
        self,
        kernel_size: int | tuple[int, int] | list[int],
        stride: int | tuple[int, int] | list[int] | None = None,
    ) -> None:
        super().__init__()
        self.kernel_size = _pair(kernel_size, "kernel_size")
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride")
        if min(*self.kernel_size, *self.stride) < 1:
            raise ValueError(
                f"{type(self).__name__}: kernel_size and stride must be >= 1, got "
                f"kernel_size={kernel_size!r}, stride={stride!r}"
            )
        self._config = {
            "kernel_size": _json_pair(kernel_size),
            "stride": None if stride is None else _json_pair(stride),
        }

    def _check(self, x: Tensor) -> None:
        if x.ndim != 4:
            raise ShapeError(
                f"{type(self).__name__} expected a 4-D input (batch, channels, height, width), "
                f"got shape {x.shape}"
            )

    def get_config(self) -> dict[str, Any]:
        return dict(self._config)


class MaxPool2D(_Pool2D):
    """Max over each window (NCHW); stride defaults to the kernel size."""

    def forward(self, x: Any) -> Tensor:
        x = as_input(x)
        self._check(x)
        return af.max_pool2d(x, self.kernel_size, self.stride)


class AvgPool2D(_Pool2D):
    """Mean over each window (NCHW); stride defaults to the kernel size."""

    def forward(self, x: Any) -> Tensor:
        x = as_input(x)
        self._check(x)
        return af.avg_pool2d(x, self.kernel_size, self.stride)


class Flatten(Module):
    """Merge every axis from `start_axis` on into one: (N, C, H, W) -> (N, C*H*W)."""

    def __init__(self, start_axis: int = 1) -> None:
        super().__init__()
        self.start_axis = int(start_axis)

    def forward(self, x: Any) -> Tensor:
        x = as_input(x)
        if not 0 <= self.start_axis < x.ndim:
            raise ShapeError(
                f"Flatten(start_axis={self.start_axis}) cannot apply to shape {x.shape}"
            )
        return x.reshape(*x.shape[: self.start_axis], -1)

    def get_config(self) -> dict[str, Any]:
        return {"start_axis": self.start_axis}


# ------------------------------------------------------------------ regularising
class Dropout(Module):
    """Zero each element with probability p while training (scaling the rest by 1/(1-p));
    the identity in eval mode."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Any) -> Tensor:
        return af.dropout(as_input(x), self.p, self.training)

    def get_config(self) -> dict[str, Any]:
        return {"p": self.p}


class _BatchNorm(Module):
    """Shared code of BatchNorm1d/2d: statistics per channel (axis 1).

    Training normalises with the batch's own mean and (biased) variance and updates the
    running estimates: running = (1 - momentum) * running + momentum * batch, using the
    unbiased variance, as PyTorch does. Eval mode normalises with the running estimates.
    """

    _ndims: tuple[int, ...] = ()
    _layout = ""
    weight: Parameter
    bias: Parameter
    running_mean: Tensor
    running_var: Tensor

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = _positive(num_features, "num_features", name)
        if not 0.0 <= float(momentum) <= 1.0:
            raise ValueError(f"{name}: momentum must be in [0, 1], got {momentum}")
        if float(eps) <= 0:
            raise ValueError(f"{name}: eps must be positive, got {eps}")
        self.eps, self.momentum, self.affine = float(eps), float(momentum), bool(affine)
        c = self.num_features
        if self.affine:
            self.weight = Parameter(init.ones((c,)))
            self.bias = Parameter(init.zeros((c,)))
        self.register_buffer("running_mean", Tensor(init.zeros((c,))))
        self.register_buffer("running_var", Tensor(init.ones((c,))))

    def forward(self, x: Any) -> Tensor:
        x = as_input(x)
        name = type(self).__name__
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise ShapeError(
                f"{name}({self.num_features}) expected input {self._layout} with "
                f"{self.num_features} channels on axis 1, got shape {x.shape}"
            )
        axes = (0, *range(2, x.ndim))
        pshape = (1, self.num_features) + (1,) * (x.ndim - 2)
        gamma: Tensor
        beta: Tensor
        if self.affine:
            gamma, beta = self.weight, self.bias
        else:
            gamma = _constant_like(init.ones((self.num_features,)), x)
            beta = _constant_like(init.zeros((self.num_features,)), x)
        if not self.training:
            stats = (
                self.running_mean.data.reshape(pshape).astype(x.dtype),
                self.running_var.data.reshape(pshape).astype(x.dtype),
            )
            out, _ = normalize(x, gamma, beta, axes, pshape, axes, self.eps, stats)
            return out
        count = x.size // self.num_features
        if count < 2:
            raise ValueError(
                f"{name} needs more than one value per channel when training, got input shape "
                f"{x.shape}; use a larger batch or call eval()"
            )
        out, op = normalize(x, gamma, beta, axes, pshape, axes, self.eps)
        with no_grad():
            m = self.momentum
            rm, rv = self.running_mean.data, self.running_var.data
            mean = op.batch_mean.reshape(-1).astype(rm.dtype)
            var = op.batch_var.reshape(-1).astype(rv.dtype) * (count / (count - 1))
            self.running_mean.data = (1.0 - m) * rm + m * mean
            self.running_var.data = (1.0 - m) * rv + m * var
        return out

    def get_config(self) -> dict[str, Any]:
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
        }


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) input, statistics per channel C."""

    _ndims = (2, 3)
    _layout = "(batch, channels) or (batch, channels, length)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) input, statistics per channel C."""

    _ndims = (4,)
    _layout = "(batch, channels, height, width)"


class LayerNorm(Module):
    """Normalise over the last len(normalized_shape) axes of each sample, then scale and shift
    element-wise (weight and bias have shape normalized_shape)."""

    weight: Parameter
    bias: Parameter

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...] | list[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            shape = tuple(int(s) for s in normalized_shape)
        else:
            shape = (int(normalized_shape),)
        if not shape or min(shape) < 1:
            raise ValueError(
                f"LayerNorm: normalized_shape must be positive sizes, got {normalized_shape!r}"
            )
        if float(eps) <= 0:
            raise ValueError(f"LayerNorm: eps must be positive, got {eps}")
        self.normalized_shape, self.eps = shape, float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        if self.elementwise_affine:
            self.weight = Parameter(init.ones(shape))
            self.bias = Parameter(init.zeros(shape))

    def forward(self, x: Any) -> Tensor:
        x = as_input(x)
        k = len(self.normalized_shape)
        if x.ndim < k or x.shape[x.ndim - k :] != self.normalized_shape:
            raise ShapeError(
                f"LayerNorm expected the input's last axes to be {self.normalized_shape}, "
                f"got shape {x.shape}"
            )
        gamma: Tensor
        beta: Tensor
        if self.elementwise_affine:
            gamma, beta = self.weight, self.bias
        else:
            gamma = _constant_like(init.ones(self.normalized_shape), x)
            beta = _constant_like(init.zeros(self.normalized_shape), x)
        axes = tuple(range(x.ndim - k, x.ndim))
        lead = tuple(range(x.ndim - k))
        out, _ = normalize(x, gamma, beta, axes, self.normalized_shape, lead, self.eps)
        return out

    def get_config(self) -> dict[str, Any]:
        return {
            "normalized_shape": list(self.normalized_shape),
            "eps": self.eps,
            "elementwise_affine": self.elementwise_affine,
        }


# ------------------------------------------------------------------- embedding
class Embedding(Module):
    """A lookup table: integer ids (any shape) -> vectors (..., embedding_dim).

    Repeated ids add their gradients (scatter-add). Float inputs holding whole numbers are
    accepted, since data pipelines often hand over float arrays."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__()
        self.num_embeddings = _positive(num_embeddings, "num_embeddings", "Embedding")
        self.embedding_dim = _positive(embedding_dim, "embedding_dim", "Embedding")
        self.weight = Parameter(init.normal((self.num_embeddings, self.embedding_dim)))

    def forward(self, ids: Any) -> Tensor:
        raw = ids.data if isinstance(ids, Tensor) else ids
        xp = get_array_module(self.weight.data)
        idx = xp.asarray(raw)
        if idx.dtype.kind == "f":
            if idx.size and not bool(xp.all(idx == xp.round(idx))):
                raise ValueError("Embedding: ids must be whole numbers, got fractional values")
            idx = idx.astype(np.int64)
        elif idx.dtype.kind not in "iu":
            raise TypeError(f"Embedding: ids must be integers, got dtype {idx.dtype}")
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.num_embeddings):
            raise IndexError(
                f"Embedding: ids must lie in [0, {self.num_embeddings - 1}] for "
                f"num_embeddings={self.num_embeddings}, got values from {int(idx.min())} "
                f"to {int(idx.max())}"
            )
        return self.weight[idx]

    def get_config(self) -> dict[str, Any]:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim}


# ------------------------------------------------------------------ activations
class ReLU(Module):
    def forward(self, x: Any) -> Tensor:
        return af.relu(as_input(x))


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = float(negative_slope)

    def forward(self, x: Any) -> Tensor:
        return af.leaky_relu(as_input(x), self.negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {"negative_slope": self.negative_slope}


class Tanh(Module):
    def forward(self, x: Any) -> Tensor:
        return af.tanh(as_input(x))


class Sigmoid(Module):
    def forward(self, x: Any) -> Tensor:
        return af.sigmoid(as_input(x))


class GELU(Module):
    """Gaussian error linear unit (tanh approximation)."""

    def forward(self, x: Any) -> Tensor:
        return af.gelu(as_input(x))


class Softmax(Module):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = int(axis)

    def forward(self, x: Any) -> Tensor:
        return af.softmax(as_input(x), self.axis)

    def get_config(self) -> dict[str, Any]:
        return {"axis": self.axis}


def fused_with_relu(layer: Module, following: Module, then: Module | None = None) -> Any:
    """`layer` then `following` as one op when that is a Linear or Conv2D and a ReLU: the
    ReLU runs in place on the layer's output, saving an array and a graph node. Returns
    (function, number of layers it covers), or None. A stride-1 Conv2D, ReLU and a square
    MaxPool2D whose stride is its size (`then`) become one op too (`af.conv2d(...,
    max_pool=p)`): the convolution is computed where the pool looks, in a layout that
    makes the pool contiguous. Only the exact built-in classes: a subclass may have
    changed what forward does."""
    if type(following) is not ReLU or type(layer) not in (Linear, Conv2D):
        return None
    if type(layer) is Conv2D and type(then) is MaxPool2D and layer.stride == (1, 1):
        (kh, kw), stride = then.kernel_size, then.stride
        if kh == kw and kh > 1 and stride == (kh, kw):
            return (lambda x: layer.forward(x, relu=True, max_pool=kh)), 3
    return (lambda x: layer.forward(x, relu=True)), 2


class Identity(Module):
    def forward(self, x: Any) -> Tensor:
        return as_input(x)


__all__ = [
    "GELU",
    "AvgPool2D",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2D",
    "Dropout",
    "Embedding",
    "Flatten",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MaxPool2D",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
]
