"""Fused ops for the normalisation layers (one graph node instead of a dozen).

Each is an `azuraforge_core.Function` working on raw backend arrays, so it runs on numpy
and CuPy alike.
"""

from __future__ import annotations

from typing import Any

from azuraforge_core import Function, Tensor
from azuraforge_core.backend import get_array_module


class Normalize(Function):
    """y = (x - mean) / sqrt(var + eps) * gamma + beta, inputs (x, gamma, beta).

    `axes` are the axes the statistics are taken over; `param_shape` is how gamma and beta
    broadcast against x; `param_axes` are the axes their gradients are summed over. With
    `stats=(mean, var)` given (batch norm in eval mode) those constants are used instead of
    the batch's own statistics, and they receive no gradient.
    """

    def __init__(
        self,
        axes: tuple[int, ...],
        param_shape: tuple[int, ...],
        param_axes: tuple[int, ...],
        eps: float,
        stats: tuple[Any, Any] | None = None,
    ) -> None:
        self.axes, self.param_shape, self.param_axes = axes, param_shape, param_axes
        self.eps, self.stats = eps, stats
        self.batch_mean: Any = None
        self.batch_var: Any = None

    def forward(self, x: Any, gamma: Any, beta: Any) -> Any:
        xp = get_array_module(x)
        if self.stats is None:
            mean = x.mean(axis=self.axes, keepdims=True)
            xc = x - mean
            var = (xc * xc).mean(axis=self.axes, keepdims=True)
            self.batch_mean, self.batch_var = mean, var
        else:
            mean, var = self.stats
            xc = x - mean
        inv = 1.0 / xp.sqrt(var + self.eps)
        xhat = xc * inv
        g = gamma.reshape(self.param_shape)
        self.xhat, self.inv, self.g = xhat, inv, g
        return xhat * g + beta.reshape(self.param_shape)

    def backward(self, grad: Any) -> Any:
        xhat, inv, g = self.xhat, self.inv, self.g
        need = self.needs_input_grad
        ggamma = gbeta = gx = None
        # Summing over param_axes leaves exactly gamma's own shape, (C,) or normalized_shape.
        if need[1]:
            ggamma = (grad * xhat).sum(axis=self.param_axes)
        if need[2]:
            gbeta = grad.sum(axis=self.param_axes)
        if need[0]:
            gy = grad * g
            if self.stats is not None:
                gx = gy * inv
            else:
                # d/dx of normalisation by the batch's own mean and variance:
                # inv * (gy - mean(gy) - xhat * mean(gy * xhat)) over the statistic axes.
                m1 = gy.mean(axis=self.axes, keepdims=True)
                m2 = (gy * xhat).mean(axis=self.axes, keepdims=True)
                gx = inv * (gy - m1 - xhat * m2)
        return gx, ggamma, gbeta


def normalize(
    x: Tensor,
    gamma: Tensor,
    beta: Tensor,
    axes: tuple[int, ...],
    param_shape: tuple[int, ...],
    param_axes: tuple[int, ...],
    eps: float,
    stats: tuple[Any, Any] | None = None,
) -> tuple[Tensor, Normalize]:
    """Apply `Normalize`; also return the op so the caller can read the batch statistics."""
    op = Normalize(axes, param_shape, param_axes, eps, stats)
    return op(x, gamma, beta), op
