"""`Module`: the base of every layer and model.

Assigning a `Parameter`, a `Module` or (through `register_buffer`) a state tensor to an
attribute registers it, so `parameters()`, `state_dict()`, `train()`/`eval()` and `to()`
reach the whole tree. Every concrete Module class is registered by name so a model can be
rebuilt from a JSON description (`describe()` / `build()`): loading a model never imports
or unpickles anything a file names.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from azuraforge_core import Tensor
from azuraforge_core.backend import to_device, to_numpy

_REGISTRY: dict[str, type[Module]] = {}


class Parameter(Tensor):
    """A tensor that a Module trains: requires_grad is on by default."""

    __slots__ = ()

    def __init__(self, data: Any, requires_grad: bool = True, dtype: Any = None) -> None:
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)


class Module:
    """Base class for layers and models. Subclasses define `forward` and, when their
    constructor takes arguments, `get_config()` returning them as JSON-able values."""

    training: bool
    _parameters: dict[str, Parameter]
    _modules: dict[str, Module]
    _buffers: dict[str, Tensor]
    _registry_name: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("registry_name", cls.__name__)
        cls._registry_name = name
        _REGISTRY[name] = cls

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------- registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        params, modules, buffers = self._parameters, self._modules, self._buffers
        for table in (params, modules, buffers):
            table.pop(name, None)
        if isinstance(value, Parameter):
            params[name] = value
        elif isinstance(value, Module):
            modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value: Tensor) -> None:
        """State that is saved and moved with the module but not trained (e.g. running means)."""
        object.__setattr__(self, name, value)
        self._buffers[name] = value

    def _set_buffer(self, name: str, value: Tensor) -> None:
        object.__setattr__(self, name, value)
        self._buffers[name] = value

    # ------------------------------------------------------------------ walking
    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for mod_name, mod in self.named_modules(prefix):
            for name, p in mod._parameters.items():
                if id(p) in seen:  # a shared parameter is listed (and updated) once
                    continue
                seen.add(id(p))
                yield (f"{mod_name}.{name}" if mod_name else name), p

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        for mod_name, mod in self.named_modules():
            for name, b in mod._buffers.items():
                yield (f"{mod_name}.{name}" if mod_name else name), b

    def num_parameters(self, trainable_only: bool = True) -> int:
        return sum(p.size for p in self.parameters() if p.requires_grad or not trainable_only)

    # ------------------------------------------------------------------- modes
    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def to(self, device: str) -> Module:
        """Move every parameter and buffer to `device` in place (identity is kept, so an
        optimizer built before the move still holds the same parameters)."""
        for m in self.modules():
            for p in m._parameters.values():
                p.data = to_device(p.data, device)
                if p.grad is not None:
                    p.grad = p.grad.to(device)
            for name, b in list(m._buffers.items()):
                m._set_buffer(name, Tensor._make(to_device(b.data, device)))
        return self

    # -------------------------------------------------------------- state dict
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by dotted name, as host numpy copies."""
        state = {name: to_numpy(p.data).copy() for name, p in self.named_parameters()}
        for name, b in self.named_buffers():
            state[name] = to_numpy(b.data).copy()
        return state

    def load_state_dict(self, state: dict[str, Any], strict: bool = True) -> None:
        """Copy values in by name. Shapes must match; with `strict`, names must match exactly."""
        targets: dict[str, tuple[Module, str, bool]] = {}
        for mod_name, mod in self.named_modules():
            for name in mod._parameters:
                targets[f"{mod_name}.{name}" if mod_name else name] = (mod, name, True)
            for name in mod._buffers:
                targets[f"{mod_name}.{name}" if mod_name else name] = (mod, name, False)
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if strict and (missing or unexpected):
            parts = []
            if missing:
                parts.append(f"missing keys: {', '.join(missing)}")
            if unexpected:
                parts.append(f"unexpected keys: {', '.join(unexpected)}")
            raise KeyError(f"load_state_dict for {type(self).__name__}: " + "; ".join(parts))
        for key, value in state.items():
            if key not in targets:
                continue
            mod, name, is_param = targets[key]
            current: Tensor = mod._parameters[name] if is_param else mod._buffers[name]
            arr = to_numpy(value.data if isinstance(value, Tensor) else value)
            if tuple(arr.shape) != current.shape:
                raise ValueError(
                    f"load_state_dict: '{key}' has shape {tuple(arr.shape)} in the state but "
                    f"{current.shape} in the model"
                )
            new = arr.astype(current.dtype, copy=True)
            if current.device != "cpu":
                new = to_device(new, current.device)
            if is_param:
                current.data = new  # in place: optimizers keep pointing at the same Parameter
            else:
                mod._set_buffer(name, Tensor._make(new))

    # --------------------------------------------------------- describe/build
    def get_config(self) -> dict[str, Any]:
        """Constructor arguments as JSON-able values; `type(self)(**get_config())` rebuilds it."""
        return {}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Module:
        return cls(**config)

    def describe(self) -> dict[str, Any]:
        return {"type": self._registry_name, "config": self.get_config()}

    # --------------------------------------------------------------- calling
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        cfg = self.get_config()
        return ", ".join(f"{k}={v!r}" for k, v in cfg.items() if not isinstance(v, (list, dict)))

    def __repr__(self) -> str:
        children = list(self._modules.items())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, child in children:
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)


def registered_modules() -> dict[str, type[Module]]:
    return dict(_REGISTRY)


def build(description: dict[str, Any]) -> Module:
    """Rebuild a module from `describe()` output, using only registered Module classes."""
    if not isinstance(description, dict) or "type" not in description:
        raise ValueError("a module description must be a JSON object with a 'type' field")
    name = description["type"]
    cls = _REGISTRY.get(name)
    if cls is None:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(
            f"unknown module type {name!r}; import the code that defines it first. Known: {known}"
        )
    config = description.get("config") or {}
    if not isinstance(config, dict):
        raise ValueError(f"the config of module {name!r} must be a JSON object")
    try:
        return cls.from_config(config)
    except TypeError as exc:
        raise ValueError(f"cannot build {name!r} from config {config}: {exc}") from None


class Sequential(Module):
    """Layers applied one after another; children are named '0', '1', ..."""

    def __init__(self, *layers: Module) -> None:
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Module")
            setattr(self, str(i), layer)

    @property
    def layers(self) -> list[Module]:
        return list(self._modules.values())

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __iter__(self) -> Iterator[Module]:
        return iter(self.layers)

    def append(self, layer: Module) -> Sequential:
        setattr(self, str(len(self)), layer)
        return self

    def forward(self, x: Any) -> Any:
        from .layers import fused_with_relu  # layers imports this module

        layers = list(self._modules.values())
        i, n = 0, len(layers)
        while i < n:
            fused = (
                fused_with_relu(layers[i], layers[i + 1], layers[i + 2] if i + 2 < n else None)
                if i + 1 < n
                else None
            )
            if fused is not None:  # Linear/Conv2D, ReLU[, MaxPool2D]: one op, same values
                fn, covered = fused
                x = fn(x)
                i += covered
            else:
                x = layers[i](x)
                i += 1
        return x

    def get_config(self) -> dict[str, Any]:
        return {"layers": [layer.describe() for layer in self.layers]}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Module:
        return cls(*[build(d) for d in config.get("layers", [])])
