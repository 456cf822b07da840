"""Learning-rate schedulers. Each sets `optimizer.lr`; `step()` is called once per epoch
(the Learner does it after each epoch when given `scheduler=`)."""

from __future__ import annotations

import math
from typing import Any

from .optim import Optimizer


class LRScheduler:
    """Base: `last_epoch` counts `step()` calls; `get_lr()` gives the lr for it."""

    def __init__(self, optimizer: Optimizer) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__} needs an Optimizer, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def get_lr(self) -> float:
        raise NotImplementedError

    def step(self, metric: float | None = None) -> float:
        self.last_epoch += 1
        lr = self.get_lr()
        self.optimizer.lr = lr
        return lr

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    def state_dict(self) -> dict[str, Any]:
        return {
            k: v for k, v in self.__dict__.items() if k != "optimizer" and not k.startswith("_")
        } | {"type": type(self).__name__}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        kind = state.get("type")
        if kind is not None and kind != type(self).__name__:
            raise ValueError(f"cannot load a {kind} scheduler state into {type(self).__name__}")
        for k, v in state.items():
            if k != "type":
                setattr(self, k, v)


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        super().__init__(optimizer)
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def get_lr(self) -> float:
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2, held at
    eta_min after T_max epochs."""

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        super().__init__(optimizer)
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)

    def get_lr(self) -> float:
        t = min(self.last_epoch, self.T_max)
        return (
            self.eta_min
            + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2
        )


class ReduceLROnPlateau(LRScheduler):
    """Multiply lr by `factor` when the monitored value has not improved by more than
    `threshold` (relative, or absolute with threshold_mode='abs') for `patience` epochs;
    then wait `cooldown` epochs. The Learner passes `monitor` (default val_loss, falling back
    to loss when there is no validation data)."""

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
        monitor: str = "val_loss",
    ) -> None:
        super().__init__(optimizer)
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}"
            )
        if not 0.0 < factor < 1.0:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor}")
        self.mode, self.factor, self.patience = mode, float(factor), int(patience)
        self.threshold, self.threshold_mode = float(threshold), threshold_mode
        self.cooldown, self.min_lr, self.monitor = int(cooldown), float(min_lr), monitor
        self.best: float | None = None
        self.num_bad_epochs = 0
        self.cooldown_counter = 0

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        best, th = self.best, self.threshold
        if self.mode == "min":
            limit = best * (1 - th) if self.threshold_mode == "rel" else best - th
            return value < limit
        limit = best * (1 + th) if self.threshold_mode == "rel" else best + th
        return value > limit

    def step(self, metric: float | None = None) -> float:
        if metric is None:
            raise ValueError(
                "ReduceLROnPlateau.step() needs the monitored value, e.g. step(val_loss)"
            )
        value = float(metric)
        self.last_epoch += 1
        if self._improved(value):
            self.best = value
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        return self.optimizer.lr

    def get_lr(self) -> float:
        return self.optimizer.lr


__all__ = ["CosineAnnealingLR", "LRScheduler", "ReduceLROnPlateau", "StepLR"]
