"""Gradient checking: analytic gradients against central finite differences, in float64.

Reusable by any package that builds on azuraforge_core (layers, losses):

    from azuraforge_core.testing import check_op
    check_op(lambda a, b: a @ b, (3, 4), (4, 5), reference=np.matmul)

`check_op` turns every floating-point input into a float64 tensor that requires a gradient,
compares the forward value with a numpy `reference` when one is given, pulls a random
upstream gradient through the output (so the whole Jacobian is exercised, not just its
column sums) and compares each input's `.grad` with finite differences of the same
projection. Other inputs (integer labels, boolean masks, Python numbers) pass through as is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from . import backend
from .tensor import Tensor, no_grad

__all__ = ["assert_grad_close", "check_op", "numerical_grad"]


def numerical_grad(
    f: Callable[[np.ndarray], float], x: np.ndarray, eps: float = 1e-6
) -> np.ndarray:
    """d f / d x by central differences, one element at a time.

    `f` gets a float64 array of x's shape (the same buffer each call, perturbed in place,
    so `f` must not keep it) and returns a scalar.
    """
    work = np.array(x, dtype=np.float64)  # private copy we perturb
    flat = work.reshape(-1)
    grad = np.empty(work.size, dtype=np.float64)
    for i in range(work.size):
        orig = flat[i]
        flat[i] = orig + eps
        f_plus = float(f(work))
        flat[i] = orig - eps
        f_minus = float(f(work))
        flat[i] = orig
        grad[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad.reshape(work.shape)


def assert_grad_close(
    analytic: Any, numeric: np.ndarray, atol: float = 1e-6, rtol: float = 1e-5, name: str = "x"
) -> None:
    """Raise AssertionError naming the input and the worst element when the gradients differ."""
    if analytic is None:
        raise AssertionError(f"no gradient reached input {name} (its .grad is None)")
    got = analytic.numpy() if isinstance(analytic, Tensor) else np.asarray(analytic)
    want = np.asarray(numeric)
    if got.shape != want.shape:
        raise AssertionError(
            f"gradient of {name} has shape {got.shape}, expected the input's shape {want.shape}"
        )
    err = np.abs(got.astype(np.float64) - want)
    bound = atol + rtol * np.abs(want)
    if not np.all(err <= bound):
        worst = np.unravel_index(int(np.argmax(err - bound)), err.shape) if err.ndim else ()
        raise AssertionError(
            f"gradient of {name} differs from finite differences: max abs error "
            f"{float(err.max()):.3g} (atol={atol}, rtol={rtol}); at index {worst} analytic "
            f"{got[worst]!r} vs numeric {want[worst]!r}"
        )


def _is_float_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def check_op(
    fn: Callable[..., Tensor],
    *inputs: Any,
    reference: Callable[..., Any] | None = None,
    wrt: Sequence[int] | None = None,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    fwd_atol: float = 1e-8,
    fwd_rtol: float = 1e-7,
    eps: float = 1e-6,
    seed: int = 0,
    device: str = "cpu",
) -> Tensor:
    """Check `fn`'s forward value and the gradient of every differentiable input.

    inputs: a shape tuple (standard-normal values) or a float ndarray becomes a float64
        tensor; anything else (int/bool arrays, numbers, tensors) is passed to `fn` unchanged.
    reference: numpy function of the same inputs (as host arrays) giving the expected output.
    wrt: indices of the float inputs to differentiate (default: all of them); the others
        become constant tensors.
    device: where the tensors live ('cpu' or 'cuda'); gradients are compared on the host.

    Returns the output tensor of the checked call.
    """
    rng = np.random.default_rng(seed)
    host: list[Any] = []
    for value in inputs:
        if isinstance(value, tuple) and all(isinstance(n, int) for n in value):
            value = rng.standard_normal(value)
        elif _is_float_array(value):
            value = np.array(value, dtype=np.float64)
        host.append(value)
    float_idx = [i for i, v in enumerate(host) if _is_float_array(v)]
    diff_idx = float_idx if wrt is None else list(wrt)
    if not diff_idx and reference is None:
        raise ValueError(
            "check_op: no float input to differentiate and no reference: nothing to check"
        )
    for i in diff_idx:
        if i not in float_idx:
            raise ValueError(f"check_op: input {i} is not a float array, so it cannot be in wrt")

    def build(i: int, value: Any, requires_grad: bool) -> Any:
        if i not in float_idx:
            return value
        t = Tensor(np.array(value), requires_grad=requires_grad, dtype=np.float64)
        return t.to(device) if device != "cpu" else t

    args = [build(i, v, i in diff_idx) for i, v in enumerate(host)]
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise AssertionError(f"the op returned {type(out).__name__}, not a Tensor")
    if out.dtype != np.float64:
        raise AssertionError(f"float64 inputs gave a {out.dtype} output")
    if out.device.partition(":")[0] != backend.parse_device(device)[0]:
        raise AssertionError(f"the output is on {out.device}, the inputs on {device}")
    value = out.numpy()
    if reference is not None:
        want = np.asarray(reference(*host), dtype=np.float64)
        if value.shape != want.shape:
            raise AssertionError(f"forward shape {value.shape} != reference shape {want.shape}")
        np.testing.assert_allclose(value, want, atol=fwd_atol, rtol=fwd_rtol, err_msg="forward")
    if not diff_idx:
        return out

    upstream = rng.standard_normal(out.shape)
    out.backward(upstream)

    for i in diff_idx:

        def projected(xi: np.ndarray, i: int = i) -> float:
            trial = [
                build(j, xi if j == i else v, False) if j in float_idx else v
                for j, v in enumerate(host)
            ]
            with no_grad():
                y = fn(*trial)
            return float(np.sum(y.numpy() * upstream))

        numeric = numerical_grad(projected, host[i], eps)
        grad = args[i].grad
        if grad is not None and grad.dtype != np.float64:
            raise AssertionError(f"gradient of input {i} is {grad.dtype}, expected float64")
        if grad is not None and grad.device != args[i].device:
            raise AssertionError(f"gradient of input {i} is on {grad.device}, not {args[i].device}")
        assert_grad_close(grad, numeric, atol=atol, rtol=rtol, name=f"input {i}")
    return out
