"""azuraforge_core: a Tensor with reverse-mode automatic differentiation, from scratch on numpy.

from azuraforge_core import Tensor, no_grad
import azuraforge_core as af

x = Tensor(np.random.randn(4, 3), requires_grad=True)
loss = (x @ x.T).relu().mean()
loss.backward()          # x.grad now holds d(loss)/dx
"""

from . import backend, random
from .backend import cuda_available
from .ops import (
    abs,
    avg_pool2d,
    clip,
    concat,
    conv2d,
    cross_entropy,
    dropout,
    exp,
    gelu,
    leaky_relu,
    linear,
    log,
    log_softmax,
    matmul,
    max,
    max_pool2d,
    maximum,
    mean,
    min,
    minimum,
    mse_loss,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    stack,
    sum,
    tanh,
    transpose,
    var,
    where,
)
from .random import manual_seed
from .tensor import (
    DEFAULT_DTYPE,
    Function,
    ShapeError,
    Tensor,
    enable_grad,
    is_grad_enabled,
    no_grad,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DTYPE",
    "Function",
    "ShapeError",
    "Tensor",
    "abs",
    "avg_pool2d",
    "backend",
    "clip",
    "concat",
    "conv2d",
    "cross_entropy",
    "cuda_available",
    "dropout",
    "enable_grad",
    "exp",
    "gelu",
    "is_grad_enabled",
    "leaky_relu",
    "linear",
    "log",
    "log_softmax",
    "manual_seed",
    "matmul",
    "max",
    "max_pool2d",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mse_loss",
    "no_grad",
    "random",
    "relu",
    "reshape",
    "sigmoid",
    "softmax",
    "sqrt",
    "stack",
    "sum",
    "tanh",
    "transpose",
    "var",
    "where",
]
