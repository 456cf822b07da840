"""All differentiable ops, grouped by family (elementwise, reduce, movement, nn)."""

from .elementwise import (
    abs,
    add,
    as_tensor,
    clip,
    div,
    exp,
    gelu,
    leaky_relu,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    relu,
    sigmoid,
    sqrt,
    sub,
    tanh,
    where,
)
from .movement import concat, getitem, reshape, stack, transpose
from .nn import (
    avg_pool2d,
    conv2d,
    cross_entropy,
    dropout,
    linear,
    log_softmax,
    matmul,
    max_pool2d,
    mse_loss,
    softmax,
)
from .reduce import max, mean, min, sum, var

__all__ = [
    "abs", "add", "as_tensor", "avg_pool2d", "clip", "concat", "conv2d", "cross_entropy",
    "div", "dropout", "exp", "gelu", "getitem", "leaky_relu", "linear", "log", "log_softmax",
    "matmul", "max", "max_pool2d", "maximum", "mean", "min", "minimum", "mse_loss", "mul",
    "neg", "pow", "relu", "reshape", "sigmoid", "softmax", "sqrt", "stack", "sub", "sum",
    "tanh", "transpose", "var", "where",
]
