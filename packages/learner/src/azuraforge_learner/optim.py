"""Optimizers: SGD (momentum, Nesterov), Adam, AdamW, RMSprop, and gradient clipping.

Parameters are known by NAME (from `model.named_parameters()`, or their position "0",
"1", ... when a plain list is given), and per-parameter state is keyed by that name, so
`state_dict()` can be saved and loaded into a fresh optimizer for a fresh model.

Updates run in place on `p.data` (an optimizer built before `model.to(device)` keeps
working) and never write into `p.grad`: a gradient array may be shared with another
tensor's gradient. Parameters whose grad is None are skipped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from azuraforge_core import Tensor
from azuraforge_core.backend import get_array_module, to_device, to_numpy


def _named(params: Any) -> list[tuple[str, Tensor]]:
    """Normalise what users pass: a Module, (name, param) pairs, or a list of parameters."""
    if hasattr(params, "named_parameters") and callable(params.named_parameters):
        params = params.named_parameters()
    if isinstance(params, Tensor):
        params = [params]
    items = list(params)
    if not items:
        raise ValueError("the optimizer got an empty parameter list")
    named: list[tuple[str, Tensor]] = []
    for i, item in enumerate(items):
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            name, p = item
        else:
            name, p = str(i), item
        if not isinstance(p, Tensor):
            raise TypeError(f"optimizer parameter {name!r} is a {type(p).__name__}, not a Tensor")
        named.append((name, p))
    names = [n for n, _ in named]
    if len(set(names)) != len(names):
        raise ValueError("optimizer parameter names must be unique")
    if len({id(p) for _, p in named}) != len(named):
        raise ValueError("the same parameter was given to the optimizer twice")
    return named


def global_grad_norm(params: Iterable[Tensor]) -> float:
    """sqrt(sum of squared gradient entries) over the parameters that have a gradient."""
    total = 0.0
    for p in params:
        if p.grad is None:
            continue
        g = p.grad.data
        xp = get_array_module(g)
        total += float(xp.vdot(g.ravel(), g.ravel()).real)
    return math.sqrt(total)


def clip_grad_norm(params: Any, max_norm: float) -> float:
    """Rescale gradients so their global L2 norm is at most `max_norm`; returns the norm
    before clipping. Each clipped grad is a NEW array (never modified in place)."""
    if not max_norm > 0:
        raise ValueError(f"clip_grad_norm: max_norm must be > 0, got {max_norm}")
    plist = [p for _, p in _named(params)]
    norm = global_grad_norm(plist)
    if norm > max_norm and math.isfinite(norm):
        scale = max_norm / (norm + 1e-6)
        for p in plist:
            if p.grad is not None:
                p.grad = Tensor._make(p.grad.data * p.grad.data.dtype.type(scale))
    return norm


class Optimizer:
    """Base class. Subclasses set `hyper` names and implement `_update(p, g, state)`."""

    hyper: tuple[str, ...] = ()

    def __init__(self, params: Any, lr: float, max_grad_norm: float | None = None) -> None:
        if not lr >= 0:
            raise ValueError(f"{type(self).__name__}: lr must be >= 0, got {lr}")
        if max_grad_norm is not None and not max_grad_norm > 0:
            raise ValueError(
                f"{type(self).__name__}: max_grad_norm must be > 0, got {max_grad_norm}"
            )
        self.named_params = _named(params)
        self.lr = float(lr)
        self.max_grad_norm = max_grad_norm
        self.state: dict[str, dict[str, Any]] = {}
        self.last_grad_norm: float | None = None

    @property
    def params(self) -> list[Tensor]:
        return [p for _, p in self.named_params]

    def zero_grad(self) -> None:
        for _, p in self.named_params:
            p.grad = None

    def step(self) -> None:
        scale = 1.0
        if self.max_grad_norm is not None:
            norm = global_grad_norm(self.params)
            self.last_grad_norm = norm
            if norm > self.max_grad_norm:
                scale = self.max_grad_norm / (norm + 1e-6)
        for name, p in self.named_params:
            if p.grad is None or not p.requires_grad:
                continue
            g = p.grad.data
            if g.dtype != p.data.dtype:  # keep state buffers in the parameter's dtype
                g = g.astype(p.data.dtype)
            if scale != 1.0:
                g = g * g.dtype.type(scale)  # a new array: the grad itself stays untouched
            st = self.state.get(name)
            if st is None:
                st = self.state[name] = {"step": 0}
            st["step"] += 1
            self._update(p.data, g, st)

    def _update(self, w: Any, g: Any, st: dict[str, Any]) -> None:
        raise NotImplementedError

    # ----------------------------------------------------------- save / load
    def hyperparams(self) -> dict[str, Any]:
        h: dict[str, Any] = {"lr": self.lr, "max_grad_norm": self.max_grad_norm}
        for k in self.hyper:
            v = getattr(self, k)
            h[k] = list(v) if isinstance(v, tuple) else v
        return h

    def state_dict(self) -> dict[str, Any]:
        """{'type', 'hyperparams', 'state': {param name: {'step': int, buffers as numpy}}}."""
        state = {
            name: {
                k: (to_numpy(v).copy() if not isinstance(v, (int, float)) else v)
                for k, v in st.items()
            }
            for name, st in self.state.items()
        }
        return {"type": type(self).__name__, "hyperparams": self.hyperparams(), "state": state}

    def load_state_dict(self, sd: dict[str, Any]) -> None:
        kind = sd.get("type")
        if kind is not None and kind != type(self).__name__:
            raise ValueError(f"cannot load a {kind} optimizer state into {type(self).__name__}")
        params = dict(self.named_params)
        unknown = sorted(set(sd.get("state", {})) - set(params))
        if unknown:
            raise KeyError(
                f"{type(self).__name__}.load_state_dict: state for unknown parameters "
                f"{', '.join(unknown)}; this optimizer has {', '.join(params)}"
            )
        new_state: dict[str, dict[str, Any]] = {}
        for name, st in sd.get("state", {}).items():
            p = params[name]
            entry: dict[str, Any] = {}
            for k, v in st.items():
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    entry[k] = v
                    continue
                arr = np.asarray(to_numpy(v.data if isinstance(v, Tensor) else v))
                if arr.shape != p.shape:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: '{name}.{k}' has shape "
                        f"{arr.shape} but the parameter has shape {p.shape}"
                    )
                arr = arr.astype(p.dtype, copy=True)
                entry[k] = to_device(arr, p.device) if p.device != "cpu" else arr
            entry["step"] = int(entry.get("step", 0))
            new_state[name] = entry
        hyper = sd.get("hyperparams", {})
        for k, v in hyper.items():
            if k == "lr":
                self.lr = float(v)
            elif k == "max_grad_norm":
                self.max_grad_norm = None if v is None else float(v)
            elif k in self.hyper:
                setattr(self, k, tuple(v) if isinstance(v, list) else v)
        self.state = new_state

    def __repr__(self) -> str:
        h = ", ".join(f"{k}={v}" for k, v in self.hyperparams().items())
        return f"{type(self).__name__}({len(self.named_params)} params, {h})"


class SGD(Optimizer):
    """Stochastic gradient descent. With momentum m: b = m*b + g (b = g on the first step);
    the step is g + m*b with Nesterov, else b. weight_decay adds wd*w to the gradient."""

    hyper = ("momentum", "nesterov", "weight_decay", "dampening")

    def __init__(
        self,
        params: Any,
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        dampening: float = 0.0,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(params, lr, max_grad_norm)
        if momentum < 0 or weight_decay < 0:
            raise ValueError("SGD: momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        self.momentum, self.nesterov = float(momentum), bool(nesterov)
        self.weight_decay, self.dampening = float(weight_decay), float(dampening)

    def _update(self, w: Any, g: Any, st: dict[str, Any]) -> None:
        xp = get_array_module(w)
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = xp.array(g, copy=True)
            else:
                buf *= self.momentum
                if self.dampening:
                    buf += (1.0 - self.dampening) * g
                else:
                    buf += g
            g = g + self.momentum * buf if self.nesterov else buf
        w -= self.lr * g


class Adam(Optimizer):
    """Adam with bias correction: m = b1 m + (1-b1) g, v = b2 v + (1-b2) g^2,
    w -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps). weight_decay is L2 (added to g)."""

    hyper = ("betas", "eps", "weight_decay", "amsgrad")
    _decoupled = False

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(params, lr, max_grad_norm)
        b1, b2 = betas
        if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        if eps <= 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: eps must be > 0 and weight_decay >= 0")
        self.betas = (float(b1), float(b2))
        self.eps, self.weight_decay, self.amsgrad = float(eps), float(weight_decay), bool(amsgrad)

    def _update(self, w: Any, g: Any, st: dict[str, Any]) -> None:
        xp = get_array_module(w)
        b1, b2 = self.betas
        t = st["step"]
        if self.weight_decay:
            if self._decoupled:
                w *= 1.0 - self.lr * self.weight_decay
            else:
                g = g + self.weight_decay * w
        m = st.get("exp_avg")
        if m is None:
            m = st["exp_avg"] = xp.zeros_like(w)
            st["exp_avg_sq"] = xp.zeros_like(w)
        v = st["exp_avg_sq"]
        m *= b1
        tmp = g * (1.0 - b1)
        m += tmp
        v *= b2
        xp.multiply(g, g, out=tmp)
        tmp *= 1.0 - b2
        v += tmp
        if self.amsgrad:
            vmax = st.get("max_exp_avg_sq")
            if vmax is None:
                vmax = st["max_exp_avg_sq"] = xp.zeros_like(w)
            xp.maximum(vmax, v, out=vmax)
            v = vmax
        bc1 = 1.0 - b1**t
        bc2 = 1.0 - b2**t
        # denominator sqrt(v)/sqrt(bc2) + eps, built in the scratch array
        xp.sqrt(v, out=tmp)
        tmp *= 1.0 / math.sqrt(bc2)
        tmp += self.eps
        xp.divide(m, tmp, out=tmp)
        tmp *= self.lr / bc1
        w -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay: w *= (1 - lr*wd) before the Adam step."""

    _decoupled = True

    def __init__(
        self,
        params: Any,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        amsgrad: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, max_grad_norm)


class RMSprop(Optimizer):
    """v = a v + (1-a) g^2; w -= lr * g / (sqrt(v) + eps). With `centered`, v is replaced by
    v - mean(g)^2; with momentum, b = m b + g/(sqrt(v)+eps) and w -= lr * b."""

    hyper = ("alpha", "eps", "weight_decay", "momentum", "centered")

    def __init__(
        self,
        params: Any,
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        max_grad_norm: float | None = None,
    ) -> None:
        super().__init__(params, lr, max_grad_norm)
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"RMSprop: alpha must be in [0, 1), got {alpha}")
        if eps <= 0 or weight_decay < 0 or momentum < 0:
            raise ValueError("RMSprop: eps must be > 0, weight_decay and momentum >= 0")
        self.alpha, self.eps, self.weight_decay = float(alpha), float(eps), float(weight_decay)
        self.momentum, self.centered = float(momentum), bool(centered)

    def _update(self, w: Any, g: Any, st: dict[str, Any]) -> None:
        xp = get_array_module(w)
        a = self.alpha
        if self.weight_decay:
            g = g + self.weight_decay * w
        v = st.get("square_avg")
        if v is None:
            v = st["square_avg"] = xp.zeros_like(w)
        tmp = g * g
        tmp *= 1.0 - a
        v *= a
        v += tmp
        if self.centered:
            ga = st.get("grad_avg")
            if ga is None:
                ga = st["grad_avg"] = xp.zeros_like(w)
            ga *= a
            ga += (1.0 - a) * g
            xp.multiply(ga, ga, out=tmp)
            xp.subtract(v, tmp, out=tmp)
            xp.sqrt(tmp, out=tmp)
        else:
            xp.sqrt(v, out=tmp)
        tmp += self.eps
        xp.divide(g, tmp, out=tmp)  # tmp = g / denom
        if self.momentum:
            buf = st.get("momentum_buffer")
            if buf is None:
                buf = st["momentum_buffer"] = xp.zeros_like(w)
            buf *= self.momentum
            buf += tmp
            tmp = buf * self.lr
        else:
            tmp *= self.lr
        w -= tmp


_BY_NAME: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "rmsprop": RMSprop,
}


def get_optimizer(name: str, params: Any, **kwargs: Any) -> Optimizer:
    """An optimizer by name ('sgd', 'adam', 'adamw', 'rmsprop')."""
    cls = _BY_NAME.get(name.lower())
    if cls is None:
        raise ValueError(f"unknown optimizer {name!r}; known: {', '.join(sorted(_BY_NAME))}")
    return cls(params, **kwargs)


__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "RMSprop",
    "clip_grad_norm",
    "get_optimizer",
    "global_grad_norm",
]
