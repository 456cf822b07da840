"""The platform's `Reporter`: everything a pipeline reports is stored, then published."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from typing import Any

from azuraforge_pipeline import Reporter
from azuraforge_platform.events import EventService
from azuraforge_platform.store import MetricValue

__all__ = ["NonFiniteLossError", "StoreReporter", "is_loss_metric"]


def is_loss_metric(name: str) -> bool:
    """`loss`, `val_loss`, `train_loss`, ...: metrics that must stay finite."""
    return name.lower().endswith("loss")


class NonFiniteLossError(FloatingPointError):
    """A pipeline reported a NaN or infinite loss: training diverged, the run is failed."""

    def __init__(self, name: str, value: float, where: str) -> None:
        self.name, self.value = name, value
        super().__init__(
            f"the loss metric {name!r} became {value} at {where}; the run was stopped. "
            "Training diverged: lower the learning rate, scale inputs and targets, or look "
            "for NaN values in the data."
        )


class StoreReporter(Reporter):
    """Metrics go to the metric history, logs to the log table, artifacts to the index, and
    each also becomes an event (with its seq) for live views.

    Back-to-back progress updates within one batch are merged into the newest. Reports are
    buffered and written in batches (one transaction per table) at most every
    `flush_seconds` or every `max_buffer` reports: a pipeline that reports every step would
    otherwise pay a few milliseconds of database round trips per step. `flush()` is called by
    the runner at the end and by its heartbeat, so nothing waits longer than that.
    """

    def __init__(
        self,
        events: EventService,
        experiment_id: str,
        *,
        flush_seconds: float = 0.25,
        max_buffer: int = 1000,
    ) -> None:
        self.events = events
        self.store = events.store
        self.experiment_id = experiment_id
        self.flush_seconds = flush_seconds
        self.max_buffer = max_buffer
        self._lock = threading.RLock()
        self._metrics: list[MetricValue] = []
        self._logs: list[tuple[str, str]] = []
        self._events: list[tuple[str, Mapping[str, Any]]] = []
        self._last_flush = time.monotonic()
        self.non_finite: NonFiniteLossError | None = None

    # -- Reporter -------------------------------------------------------------------------
    def progress(
        self,
        *,
        epoch: int | None = None,
        total_epochs: int | None = None,
        step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        payload = {"epoch": epoch, "total_epochs": total_epochs, "step": step}
        payload["total_steps"] = total_steps
        self._add(event=("progress", payload))

    def metrics(
        self, values: Mapping[str, float], *, step: int | None = None, epoch: int | None = None
    ) -> None:
        position = step if step is not None else epoch
        if position is None:
            raise ValueError("metrics need step= or epoch=")
        clean = {str(name): float(value) for name, value in values.items()}
        points = [MetricValue(name, position, value, epoch=epoch) for name, value in clean.items()]
        self._add(
            metrics=points, event=("metrics", {"step": step, "epoch": epoch, "values": clean})
        )
        for name, value in clean.items():
            if is_loss_metric(name) and not math.isfinite(value):
                where = f"epoch {epoch}" if step is None else f"step {step}"
                # Kept even if the pipeline swallows the exception: the runner checks it.
                self.non_finite = NonFiniteLossError(name, value, where)
                raise self.non_finite

    def log(self, message: str, level: str = "info") -> None:
        self._add(log=(level, message), event=("log", {"level": level, "message": message}))

    def event(self, type: str, payload: Mapping[str, Any]) -> None:
        self._add(event=(type, payload))

    def artifact(self, path: str, size: int, kind: str) -> None:
        with self._lock:
            self.flush()
            self.store.add_artifact(self.experiment_id, path, size, kind)
            self.events.emit(
                self.experiment_id, "artifact", {"path": path, "size": size, "kind": kind}
            )

    # -- buffering ------------------------------------------------------------------------
    def _add(
        self,
        *,
        event: tuple[str, Mapping[str, Any]],
        metrics: list[MetricValue] | None = None,
        log: tuple[str, str] | None = None,
    ) -> None:
        with self._lock:
            if metrics:
                self._metrics.extend(metrics)
            if log is not None:
                self._logs.append(log)
            if event[0] == "progress" and self._events and self._events[-1][0] == "progress":
                # Progress is a position, not a history: of back-to-back updates within one
                # flush only the newest is worth storing (a per-step loop would otherwise
                # write thousands of rows for a bar that redraws a few times a second).
                self._events[-1] = event
            else:
                self._events.append(event)
            if (
                len(self._events) >= self.max_buffer
                or time.monotonic() - self._last_flush >= self.flush_seconds
            ):
                self.flush()

    def flush(self) -> None:
        """Write what is buffered: metrics and logs first, then their events (published)."""
        with self._lock:
            metrics, logs, events = self._metrics, self._logs, self._events
            self._metrics, self._logs, self._events = [], [], []
            self._last_flush = time.monotonic()
            if metrics:
                self.store.append_metrics(self.experiment_id, metrics)
            if logs:
                self.store.append_logs(self.experiment_id, logs)
            if events:
                self.events.emit_many(self.experiment_id, events)
