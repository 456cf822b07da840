"""Callbacks: hooks the Learner calls while it trains.

Every hook gets one `logs` dict with the same keys (PAYLOAD_KEYS), `None` where a value does
not apply yet:

    event            'train_begin' | 'epoch_begin' | 'batch_end' | 'epoch_end' | 'train_end'
    epoch, epochs    current epoch (1-based) and the last epoch of this fit() call
    step, steps      batch within the epoch (1-based) and batches per epoch
    global_step      batches trained by this Learner so far
    loss             mean training loss of the epoch so far (per sample)
    batch_loss       loss of the last batch
    val_loss         validation loss (epoch_end, with validation data)
    metrics          {'accuracy': ..., 'val_accuracy': ...} (epoch_end)
    lr               learning rate used for this epoch
    samples_per_sec  training throughput of the epoch so far
    elapsed          seconds since train_begin
    num_samples, batch_size
    status           'running', then 'completed' | 'stopped' | 'error' at train_end

A hook stops training by returning True or by setting `learner.stop_training = True`
(this is how a running experiment is cancelled); training then stops after the current
batch.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .metrics import higher_is_better

if TYPE_CHECKING:
    from .learner import Learner

PAYLOAD_KEYS = (
    "event",
    "epoch",
    "epochs",
    "step",
    "steps",
    "global_step",
    "loss",
    "batch_loss",
    "val_loss",
    "metrics",
    "lr",
    "samples_per_sec",
    "elapsed",
    "num_samples",
    "batch_size",
    "status",
)


def log_value(logs: dict[str, Any], name: str) -> Any:
    """A monitored quantity from the logs: 'loss', 'val_loss' or a metric name."""
    if name in logs and name != "metrics" and logs[name] is not None:
        return logs[name]
    return (logs.get("metrics") or {}).get(name)


def _available(logs: dict[str, Any]) -> str:
    names = [k for k in ("loss", "val_loss") if logs.get(k) is not None]
    names += list((logs.get("metrics") or {}).keys())
    return ", ".join(names)


class Callback:
    """Base class: override the hooks you need. `self.learner` is set before training."""

    learner: Learner | None = None

    def set_learner(self, learner: Learner) -> None:
        self.learner = learner

    def on_train_begin(self, logs: dict[str, Any]) -> bool | None:
        return None

    def on_epoch_begin(self, logs: dict[str, Any]) -> bool | None:
        return None

    def on_batch_end(self, logs: dict[str, Any]) -> bool | None:
        return None

    def on_epoch_end(self, logs: dict[str, Any]) -> bool | None:
        return None

    def on_train_end(self, logs: dict[str, Any]) -> bool | None:
        return None


class LambdaCallback(Callback):
    """A callback from plain functions: LambdaCallback(on_epoch_end=lambda logs: ...)."""

    def __init__(self, **hooks: Any) -> None:
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, fn)


class History(Callback):
    """Per-epoch records: `history['loss']`, `history['val_loss']`, metric names, 'lr'."""

    def __init__(self) -> None:
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def on_epoch_end(self, logs: dict[str, Any]) -> None:
        self.epoch.append(int(logs["epoch"]))
        record: dict[str, Any] = {"loss": logs["loss"], "lr": logs["lr"]}
        if logs.get("val_loss") is not None:
            record["val_loss"] = logs["val_loss"]
        record.update(logs.get("metrics") or {})
        record["elapsed"] = logs["elapsed"]
        for k, v in record.items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key: str) -> list[Any]:
        return self.history[key]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def keys(self) -> list[str]:
        return list(self.history)

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    def load_dict(self, data: dict[str, Any]) -> None:
        self.epoch = [int(e) for e in data.get("epoch", [])]
        self.history = {k: list(v) for k, v in data.get("history", {}).items()}

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epoch)}, keys={self.keys()})"


class _Monitor(Callback):
    def __init__(self, monitor: str, mode: str, min_delta: float = 0.0) -> None:
        if mode not in ("auto", "min", "max"):
            raise ValueError(
                f"{type(self).__name__}: mode must be 'auto', 'min' or 'max', got {mode!r}"
            )
        self.monitor = monitor
        self.mode = ("max" if higher_is_better(monitor) else "min") if mode == "auto" else mode
        self.min_delta = abs(float(min_delta))
        self.best: float | None = None
        self.best_epoch: int | None = None

    def _current(self, logs: dict[str, Any]) -> float:
        value = log_value(logs, self.monitor)
        if value is None:
            hint = " (pass validation_data to fit())" if self.monitor.startswith("val_") else ""
            raise KeyError(
                f"{type(self).__name__} monitors {self.monitor!r}, which is not in the epoch "
                f"logs{hint}; available: {_available(logs)}"
            )
        return float(value)

    def _is_improvement(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(_Monitor):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    With `restore_best_weights`, the model ends training with the weights of its best epoch
    (whether training stopped early or ran to the end).
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
    ) -> None:
        super().__init__(monitor, mode, min_delta)
        if patience < 0:
            raise ValueError(f"EarlyStopping: patience must be >= 0, got {patience}")
        self.patience, self.restore_best_weights = int(patience), restore_best_weights
        self.wait = 0
        self.stopped_epoch: int | None = None
        self.best_weights: dict[str, np.ndarray] | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.wait, self.stopped_epoch = 0, None
        self.best, self.best_epoch, self.best_weights = None, None, None

    def on_epoch_end(self, logs: dict[str, Any]) -> bool | None:
        value = self._current(logs)
        if self._is_improvement(value):
            self.best, self.best_epoch, self.wait = value, int(logs["epoch"]), 0
            if self.restore_best_weights and self.learner is not None:
                self.best_weights = self.learner.model.state_dict()
            return None
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = int(logs["epoch"])
            return True
        return None

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if self.restore_best_weights and self.best_weights is not None and self.learner is not None:
            self.learner.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save `last.safetensors` after every epoch and `best.safetensors` whenever `monitor`
    improves, in `dirpath`. Each is a full checkpoint (weights, architecture, optimizer and
    scheduler state, epoch, RNG state): `learner.load_checkpoint(path)` resumes from it and
    `load_model(path)` reads the model alone."""

    def __init__(
        self,
        dirpath: str | Path,
        monitor: str = "val_loss",
        mode: str = "auto",
        save_best: bool = True,
        save_last: bool = True,
    ) -> None:
        super().__init__(monitor, mode)
        self.dirpath = Path(dirpath)
        self.save_best, self.save_last = save_best, save_last

    @property
    def best_path(self) -> Path:
        return self.dirpath / "best.safetensors"

    @property
    def last_path(self) -> Path:
        return self.dirpath / "last.safetensors"

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)

    def on_epoch_end(self, logs: dict[str, Any]) -> None:
        assert self.learner is not None
        if self.save_best:
            value = self._current(logs)
            if self._is_improvement(value):
                self.best, self.best_epoch = value, int(logs["epoch"])
                self.learner.save_checkpoint(
                    self.best_path, extra={"monitor": self.monitor, "best": value}
                )
        if self.save_last:
            self.learner.save_checkpoint(self.last_path)


class ProgressBar(Callback):
    """A terminal progress bar (rich): epochs, batches, loss, val_loss, lr, samples/s.
    `console` is a rich Console (default: stderr)."""

    def __init__(self, console: Any = None, show_metrics: bool = True) -> None:
        self.console = console
        self.show_metrics = show_metrics
        self._progress: Any = None
        self._epoch_task: Any = None
        self._batch_task: Any = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        from rich.console import Console  # lazy: importing the learner must stay fast
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        if self.console is None:
            self.console = Console(stderr=True)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        first = (logs["epoch"] or 1) - 1
        self._epoch_task = self._progress.add_task(
            "epochs", total=logs["epochs"], completed=first, info=""
        )
        self._batch_task = self._progress.add_task("batches", total=logs["steps"], info="")

    def on_epoch_begin(self, logs: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.reset(
                self._batch_task, total=logs["steps"], description=f"epoch {logs['epoch']}", info=""
            )

    def on_batch_end(self, logs: dict[str, Any]) -> None:
        if self._progress is None:
            return
        info = (
            f"loss {logs['loss']:.4f}  lr {logs['lr']:.3g}  {logs['samples_per_sec']:.0f} samples/s"
        )
        self._progress.update(self._batch_task, completed=logs["step"], info=info)

    def on_epoch_end(self, logs: dict[str, Any]) -> None:
        if self._progress is None:
            return
        parts = [f"epoch {logs['epoch']}/{logs['epochs']}", f"loss {logs['loss']:.4f}"]
        if logs.get("val_loss") is not None:
            parts.append(f"val_loss {logs['val_loss']:.4f}")
        if self.show_metrics:
            for k, v in (logs.get("metrics") or {}).items():
                if isinstance(v, float):
                    parts.append(f"{k} {v:.4f}")
        parts.append(f"lr {logs['lr']:.3g}")
        parts.append(f"{logs['samples_per_sec']:.0f} samples/s")
        summary = "  ".join(parts)
        self._progress.update(self._epoch_task, completed=logs["epoch"], info=summary)
        self._progress.console.print(summary)

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


__all__ = [
    "PAYLOAD_KEYS",
    "Callback",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "ModelCheckpoint",
    "ProgressBar",
    "log_value",
]
