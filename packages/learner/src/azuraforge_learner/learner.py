"""The Learner: the fit / evaluate / predict loop around a model, a loss and an optimizer.

    learner = Learner(model, CrossEntropyLoss(), Adam(model.named_parameters(), lr=1e-3),
                      metrics=["accuracy"], callbacks=[EarlyStopping(patience=3)], seed=0)
    history = learner.fit(X, y, epochs=20, batch_size=64, validation_data=(Xv, yv))
    learner.evaluate(Xt, yt)   # {'loss': ..., 'accuracy': ...}
    learner.predict(Xt)        # numpy

`fit` continues from where the last call stopped: two calls of 2 epochs train epochs 1-4,
and a Learner restored with `load_checkpoint` resumes exactly (same weights, optimizer
state, shuffling and dropout randomness).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from azuraforge_core import Tensor, no_grad
from azuraforge_core import random as core_random
from azuraforge_core.backend import to_numpy

from .callbacks import Callback, History, log_value
from .data import DataLoader
from .losses import get_loss
from .metrics import MetricFn, get_metric, metric_value
from .module import Module
from .optim import Adam, Optimizer, get_optimizer
from .schedulers import LRScheduler, ReduceLROnPlateau


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the epoch and step."""

    def __init__(self, value: float, epoch: int, step: int, steps: int) -> None:
        self.value, self.epoch, self.step = value, epoch, step
        super().__init__(
            f"the training loss became {value} at epoch {epoch}, step {step}/{steps}; training "
            "stopped. Usual causes: a learning rate that is too high, unscaled inputs or "
            "targets, or NaN values in the data."
        )


def _host(a: Any, who: str) -> np.ndarray:
    if isinstance(a, Tensor):
        return a.numpy()
    arr = np.asarray(to_numpy(a))
    if arr.dtype == object:
        raise TypeError(f"{who} must be a numeric array, got an object array")
    return arr


class Learner:
    """Trains `model` with `loss` and `optimizer`; see the module docstring."""

    def __init__(
        self,
        model: Module,
        loss: Any,
        optimizer: Optimizer | str | None = None,
        metrics: Sequence[str | MetricFn] | None = None,
        callbacks: Sequence[Callback] | None = None,
        scheduler: LRScheduler | None = None,
        seed: int | None = None,
    ) -> None:
        if not isinstance(model, Module):
            raise TypeError(f"Learner needs a Module as model, got {type(model).__name__}")
        self.model = model
        self.loss_fn = get_loss(loss)
        if optimizer is None:
            optimizer = Adam(model.named_parameters())
        elif isinstance(optimizer, str):
            optimizer = get_optimizer(optimizer, model.named_parameters())
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be an Optimizer or a name, got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.metrics: list[tuple[str, MetricFn]] = [get_metric(m) for m in (metrics or [])]
        self.callbacks: list[Callback] = list(callbacks or [])
        for cb in self.callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")
        self.history = History()
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.stop_training = False

    # ---------------------------------------------------------------- helpers
    def _device_dtype(self) -> tuple[str, Any]:
        for p in self.model.parameters():
            return p.device, p.dtype
        return "cpu", np.float32

    def _to_input(self, xb: np.ndarray, where: tuple[str, Any]) -> Tensor:
        device, dtype = where
        # Floats take the parameters' dtype; integer inputs (token ids) keep theirs.
        t = Tensor(xb, dtype=dtype) if xb.dtype.kind == "f" else Tensor(xb)
        return t.to(device) if device != "cpu" else t

    def _compute_metrics(
        self, y_true: np.ndarray, y_pred: np.ndarray, prefix: str = ""
    ) -> dict[str, Any]:
        return {prefix + name: metric_value(fn(y_true, y_pred)) for name, fn in self.metrics}

    def _emit(self, callbacks: list[Callback], hook: str, logs: dict[str, Any]) -> None:
        for cb in callbacks:
            if getattr(cb, hook)(logs) is True:
                self.stop_training = True

    @property
    def lr(self) -> float:
        return self.optimizer.lr

    # --------------------------------------------------------------------- fit
    def fit(
        self,
        X: Any,
        y: Any,
        epochs: int = 1,
        batch_size: int = 32,
        validation_data: tuple[Any, Any] | None = None,
        shuffle: bool = True,
        callbacks: Sequence[Callback] | None = None,
        seed: int | None = None,
    ) -> History:
        """Train `epochs` more epochs. `seed` (here or on the Learner) fixes the shuffling.
        Returns the History (also at `learner.history`)."""
        if epochs < 0:
            raise ValueError(f"fit: epochs must be >= 0, got {epochs}")
        X, y = _host(X, "X"), _host(y, "y")
        if len(X) != len(y):
            raise ValueError(f"fit: X has {len(X)} samples but y has {len(y)}")
        if len(X) == 0:
            raise ValueError("fit: no training samples")
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise ValueError("fit: validation_data must be a pair (X_val, y_val)")
            Xv, yv = _host(validation_data[0], "X_val"), _host(validation_data[1], "y_val")
            if len(Xv) != len(yv):
                raise ValueError(f"fit: X_val has {len(Xv)} samples but y_val has {len(yv)}")
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        loader = DataLoader(X, y, batch_size=batch_size, shuffle=shuffle, rng=self.rng)
        cbs: list[Callback] = [self.history, *self.callbacks, *(callbacks or [])]
        for cb in cbs:
            cb.set_learner(self)

        first, last = self.epoch + 1, self.epoch + epochs
        steps = len(loader)
        t0 = time.perf_counter()
        self.stop_training = False
        base: dict[str, Any] = {
            "epoch": first, "epochs": last, "step": None, "steps": steps, "global_step": self.global_step,
            "loss": None, "batch_loss": None, "val_loss": None, "metrics": {}, "lr": self.lr,
            "samples_per_sec": None, "elapsed": 0.0, "num_samples": len(X),
            "batch_size": batch_size, "status": "running",
        }  # fmt: skip
        logs: dict[str, Any] = {"event": "train_begin", **base}
        status = "completed"
        try:
            self._emit(cbs, "on_train_begin", logs)
            for epoch in range(first, last + 1):
                if self.stop_training:
                    status = "stopped"
                    break
                logs = self._run_epoch(cbs, loader, epoch, base, t0, validation_data)
                if self.stop_training:
                    status = "stopped"
                    break
        except BaseException as exc:
            end = {**logs, "event": "train_end", "status": "error", "error": str(exc)}
            end["elapsed"] = time.perf_counter() - t0
            self._emit(cbs, "on_train_end", end)
            raise
        end = {**logs, "event": "train_end", "status": status, "elapsed": time.perf_counter() - t0}
        self._emit(cbs, "on_train_end", end)
        return self.history

    def _run_epoch(
        self,
        cbs: list[Callback],
        loader: DataLoader,
        epoch: int,
        base: dict[str, Any],
        t0: float,
        validation_data: tuple[Any, Any] | None,
    ) -> dict[str, Any]:
        model, opt = self.model, self.optimizer
        lr = self.lr
        logs = {**base, "event": "epoch_begin", "epoch": epoch, "lr": lr,
                "global_step": self.global_step, "elapsed": time.perf_counter() - t0}  # fmt: skip
        self._emit(cbs, "on_epoch_begin", logs)
        model.train()
        steps = base["steps"]
        seen, total_loss = 0, 0.0
        preds: list[np.ndarray] = []
        targets: list[np.ndarray] = []
        where = self._device_dtype()  # looked up once, not per batch
        te = time.perf_counter()
        for step, (xb, yb) in enumerate(loader, 1):
            out = model(self._to_input(xb, where))
            loss = self.loss_fn(out, yb)
            value = float(loss.item())
            if not math.isfinite(value):
                raise NonFiniteLossError(value, epoch, step, steps)
            opt.zero_grad()
            loss.backward()
            opt.step()
            n = len(xb)
            seen += n
            total_loss += value * n
            self.global_step += 1
            if self.metrics:
                preds.append(out.numpy())
                targets.append(yb)
            now = time.perf_counter()
            logs = {**base, "event": "batch_end", "epoch": epoch, "step": step,
                    "global_step": self.global_step, "loss": total_loss / seen, "batch_loss": value,
                    "lr": lr, "samples_per_sec": seen / max(now - te, 1e-9), "elapsed": now - t0}  # fmt: skip
            self._emit(cbs, "on_batch_end", logs)
            if self.stop_training:
                return logs  # cancelled mid-epoch: no validation, the epoch does not count
        train_loss = total_loss / max(seen, 1)
        metrics: dict[str, Any] = {}
        if self.metrics and preds:
            metrics.update(self._compute_metrics(np.concatenate(targets), np.concatenate(preds)))
        val_loss = None
        if validation_data is not None:
            val = self.evaluate(validation_data[0], validation_data[1])
            val_loss = val.pop("loss")
            metrics.update({f"val_{k}": v for k, v in val.items()})
        now = time.perf_counter()
        logs = {**base, "event": "epoch_end", "epoch": epoch, "step": steps,
                "global_step": self.global_step, "loss": train_loss, "batch_loss": logs.get("batch_loss"),
                "val_loss": val_loss, "metrics": metrics, "lr": lr,
                "samples_per_sec": seen / max(now - te, 1e-9), "elapsed": now - t0}  # fmt: skip
        # The scheduler steps and the epoch counts BEFORE the callbacks run, so a checkpoint
        # written in on_epoch_end is exactly the state the next epoch starts from.
        if self.scheduler is not None:
            if isinstance(self.scheduler, ReduceLROnPlateau):
                value = log_value(logs, self.scheduler.monitor)
                if value is None and self.scheduler.monitor == "val_loss":
                    value = train_loss
                if value is None:
                    raise KeyError(
                        f"ReduceLROnPlateau monitors {self.scheduler.monitor!r}, not in the logs"
                    )
                self.scheduler.step(value)
            else:
                self.scheduler.step()
        self.epoch = epoch
        self._emit(cbs, "on_epoch_end", logs)
        return logs

    # --------------------------------------------------------- predict / eval
    def predict(self, X: Any, batch_size: int = 256) -> np.ndarray:
        """Model outputs for X as a numpy array (eval mode, no graph, in batches)."""
        X = _host(X, "X")
        was_training = self.model.training
        self.model.eval()
        outs: list[np.ndarray] = []
        try:
            where = self._device_dtype()
            with no_grad():
                for xb in DataLoader(X, batch_size=batch_size):
                    outs.append(self.model(self._to_input(xb, where)).numpy())
        finally:
            self.model.train(was_training)
        if not outs:
            raise ValueError("predict: X has no samples")
        return np.concatenate(outs)

    def evaluate(self, X: Any, y: Any, batch_size: int = 256) -> dict[str, Any]:
        """{'loss': mean loss over X, and each metric} in eval mode."""
        X, y = _host(X, "X"), _host(y, "y")
        if len(X) != len(y):
            raise ValueError(f"evaluate: X has {len(X)} samples but y has {len(y)}")
        if len(X) == 0:
            raise ValueError("evaluate: no samples")
        was_training = self.model.training
        self.model.eval()
        total, preds = 0.0, []
        try:
            where = self._device_dtype()
            with no_grad():
                for xb, yb in DataLoader(X, y, batch_size=batch_size):
                    out = self.model(self._to_input(xb, where))
                    total += float(self.loss_fn(out, yb).item()) * len(xb)
                    if self.metrics:
                        preds.append(out.numpy())
        finally:
            self.model.train(was_training)
        result: dict[str, Any] = {"loss": total / len(X)}
        if self.metrics:
            result.update(self._compute_metrics(y, np.concatenate(preds)))
        return result

    # ------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path: str | Path, extra: dict[str, Any] | None = None,
                        metadata: dict[str, Any] | None = None) -> Path:  # fmt: skip
        """Everything needed to resume: weights, optimizer, scheduler, epoch, both RNGs,
        history."""
        from .serialization import save_checkpoint

        rng = {
            "learner": dict(self.rng.bit_generator.state),
            "core": dict(core_random.default_rng().bit_generator.state),
        }
        body = {"history": self.history.to_dict(), "global_step": self.global_step, **(extra or {})}
        return save_checkpoint(
            path, self.model, self.optimizer, self.scheduler, epoch=self.epoch,
            rng_state=rng, extra=body, metadata=metadata,
        )  # fmt: skip

    def load_checkpoint(self, path: str | Path) -> dict[str, Any]:
        """Restore a checkpoint from `save_checkpoint` into this Learner's objects."""
        from .serialization import load_checkpoint

        info = load_checkpoint(path, self.model, self.optimizer, self.scheduler)
        self.epoch = info["epoch"]
        extra = info["extra"]
        self.global_step = int(extra.get("global_step", 0))
        if "history" in extra:
            self.history.load_dict(extra["history"])
        rng = info["rng_state"] or {}
        if "learner" in rng:
            self.rng = np.random.default_rng()
            self.rng.bit_generator.state = rng["learner"]
        if "core" in rng:
            core_random.default_rng().bit_generator.state = rng["core"]
        return info

    def __repr__(self) -> str:
        names = ", ".join(n for n, _ in self.metrics)
        return (
            f"Learner(model={type(self.model).__name__}, loss={type(self.loss_fn).__name__}, "
            f"optimizer={self.optimizer!r}, metrics=[{names}], epoch={self.epoch})"
        )


__all__ = ["Learner", "NonFiniteLossError"]
