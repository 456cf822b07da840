"""Child runs: how a pipeline (a hyperparameter study, say) runs other pipelines as experiments
of their own, through `RunContext.submit`, without knowing the platform.

The platform serves this with a `ChildLauncher` in both of its modes (the children are ordinary
experiments with this run as parent, queued for the workers like any other); `InlineLauncher`
runs them in threads of this process, for tests and for a study outside the platform.
"""

from __future__ import annotations

import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = [
    "FINAL_STATUSES",
    "ChildLauncher",
    "ChildRun",
    "ChildRunError",
    "ChildState",
    "ChildrenNotSupportedError",
    "InlineLauncher",
]

# The statuses a child run ends in (the platform's experiment states).
FINAL_STATUSES = frozenset({"succeeded", "failed", "cancelled"})


class ChildRunError(Exception):
    """A child run could not be started: an unknown pipeline, or a config it refuses (the
    message names the field)."""


class ChildrenNotSupportedError(RuntimeError):
    """This context cannot start child runs (a pipeline run bare, outside the platform)."""


@dataclass(frozen=True)
class ChildState:
    """Where a child run is. `status` is one of the platform's experiment states; `summary`
    is what its pipeline's `run` returned (once it succeeded). The times (UTC) say when it
    was submitted, when its last attempt started, and when it ended: `started_at -
    created_at` is time spent waiting for a worker, not training."""

    id: str
    pipeline_id: str
    status: str
    config: dict[str, Any]
    summary: dict[str, Any] | None = None
    error: str | None = None
    tags: tuple[str, ...] = ()
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def done(self) -> bool:
        return self.status in FINAL_STATUSES


class ChildLauncher(ABC):
    """What serves `RunContext.submit`: starts child runs and reads them back."""

    @abstractmethod
    def submit(
        self,
        pipeline_id: str,
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
    ) -> str:
        """Queue a run of `pipeline_id` with `config` (validated first: `ChildRunError`);
        returns its id."""

    @abstractmethod
    def state(self, child_id: str) -> ChildState: ...

    @abstractmethod
    def children(self) -> list[ChildState]:
        """Every child this run started, in any earlier attempt too, oldest first (so a
        resumed run picks up where it stopped)."""

    @abstractmethod
    def metric_history(self, child_id: str, name: str) -> list[tuple[int, float]]:
        """The `(step, value)` points a child reported for metric `name`, in step order."""

    @abstractmethod
    def cancel(self, child_id: str, *, reason: str | None = None) -> None:
        """Ask a child to stop (a no-op once it finished). `reason` is recorded with it (and
        `"pruned"` also tags it so)."""


class ChildRun:
    """A handle on one child run."""

    def __init__(self, launcher: ChildLauncher, child_id: str) -> None:
        self._launcher = launcher
        self.id = child_id

    def state(self) -> ChildState:
        return self._launcher.state(self.id)

    @property
    def status(self) -> str:
        return self.state().status

    def metric_history(self, name: str) -> list[tuple[int, float]]:
        return self._launcher.metric_history(self.id, name)

    def cancel(self, *, reason: str | None = None) -> None:
        self._launcher.cancel(self.id, reason=reason)

    def wait(self, timeout: float | None = None, *, poll_seconds: float = 0.5) -> ChildState:
        """Its state once it finished, or after `timeout` seconds (check `.done`)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.state()
            if state.done or (deadline is not None and time.monotonic() >= deadline):
                return state
            time.sleep(poll_seconds)

    def __repr__(self) -> str:
        return f"ChildRun({self.id!r})"


@dataclass
class _InlineChild:
    state: ChildState
    stop: threading.Event = field(default_factory=threading.Event)
    metrics: dict[str, dict[int, float]] = field(default_factory=dict)
    thread: threading.Thread | None = None


class InlineLauncher(ChildLauncher):
    """Runs children in threads of this process, at most `parallel` at once (the rest wait):
    for tests and for running a study without the platform. `pipelines` maps ids to classes."""

    def __init__(
        self, pipelines: Mapping[str, type[Any]], artifact_root: Path, *, parallel: int = 1
    ) -> None:
        self._pipelines = dict(pipelines)
        self._root = Path(artifact_root)
        self._slots = threading.Semaphore(parallel)
        self._lock = threading.Lock()
        self._children: dict[str, _InlineChild] = {}

    def submit(
        self,
        pipeline_id: str,
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
    ) -> str:
        from azuraforge_pipeline.base import ConfigError

        cls = self._pipelines.get(pipeline_id)
        if cls is None:
            raise ChildRunError(f"unknown pipeline {pipeline_id!r}")
        try:
            validated = cls.validate_config(dict(config))
        except ConfigError as exc:
            raise ChildRunError(str(exc)) from None
        with self._lock:
            child_id = f"child-{len(self._children) + 1}"
            child = _InlineChild(
                ChildState(
                    child_id,
                    pipeline_id,
                    "queued",
                    dict(config),
                    tags=tuple(tags),
                    created_at=datetime.now(UTC),
                )
            )
            self._children[child_id] = child
        child.thread = threading.Thread(
            target=self._run, args=(child, cls, validated), name=child_id, daemon=True
        )
        child.thread.start()
        return child_id

    def _set(self, child: _InlineChild, **changes: Any) -> None:
        with self._lock:
            child.state = ChildState(**{**child.state.__dict__, **changes})

    def _run(self, child: _InlineChild, cls: type[Any], config: Any) -> None:
        from azuraforge_pipeline.context import Cancelled, Reporter, RunContext

        launcher = self

        class _Metrics(Reporter):
            def metrics(
                self,
                values: Mapping[str, float],
                *,
                step: int | None = None,
                epoch: int | None = None,
            ) -> None:
                at = step if step is not None else (epoch or 0)
                with launcher._lock:
                    for key, value in values.items():
                        child.metrics.setdefault(key, {})[at] = float(value)

        with self._slots:
            if child.stop.is_set():
                self._set(child, status="cancelled", finished_at=datetime.now(UTC))
                return
            self._set(child, status="running", started_at=datetime.now(UTC))
            context = RunContext(
                artifact_dir=self._root / child.state.id,
                reporter=_Metrics(),
                stop_requested=child.stop.is_set,
                experiment_id=child.state.id,
            )
            try:
                result = cls().run(config, context)
            except Cancelled:
                self._set(child, status="cancelled", finished_at=datetime.now(UTC))
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                self._set(child, status="failed", error=error, finished_at=datetime.now(UTC))
            else:
                summary = dict(result) if isinstance(result, Mapping) else None
                self._set(child, status="succeeded", summary=summary, finished_at=datetime.now(UTC))

    def state(self, child_id: str) -> ChildState:
        with self._lock:
            return self._children[child_id].state

    def children(self) -> list[ChildState]:
        with self._lock:
            return [c.state for c in self._children.values()]

    def metric_history(self, child_id: str, name: str) -> list[tuple[int, float]]:
        with self._lock:
            return sorted(self._children[child_id].metrics.get(name, {}).items())

    def cancel(self, child_id: str, *, reason: str | None = None) -> None:
        child = self._children[child_id]
        child.stop.set()
        if reason == "pruned":
            self._set(child, tags=(*child.state.tags, "pruned"))

    def join(self, timeout: float | None = None) -> None:
        """Wait for every child thread (tests)."""
        for child in list(self._children.values()):
            if child.thread is not None:
                child.thread.join(timeout)
