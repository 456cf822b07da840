"""`run_experiment`: one experiment from `queued` to a final state, in the calling process.

Idempotent: a second call for an experiment that is not queued does nothing but return its
record, so a retried job message (Celery's late acknowledgement) is harmless.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import socket
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

from azuraforge_pipeline import (
    Cancelled,
    ConfigError,
    PathPolicy,
    Pipeline,
    PipelineRegistry,
    RunContext,
    UnknownPipelineError,
    discover,
)
from azuraforge_platform.events import EventService
from azuraforge_platform.execution.children import StoreLauncher, child_dispatcher
from azuraforge_platform.execution.mirror import CHECKPOINTS, MirroredContext, RunMirror
from azuraforge_platform.execution.reporter import StoreReporter
from azuraforge_platform.lifecycle import Lifecycle
from azuraforge_platform.paths import redact_paths
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentRecord, ExperimentStatus
from azuraforge_platform.telemetry.logs import bound

__all__ = ["default_worker_name", "run_experiment", "seed_for"]

S = ExperimentStatus
log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")


def _logged_as_run(fn: Callable[Concatenate[str, P], R]) -> Callable[Concatenate[str, P], R]:
    """Every line logged while the run executes (in this thread) names its experiment."""

    @functools.wraps(fn)
    def wrapper(experiment_id: str, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with bound(experiment_id=experiment_id):
            return fn(experiment_id, *args, **kwargs)

    return wrapper


def default_worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def seed_for(experiment_id: str, config: Mapping[str, Any]) -> int:
    """The config's `seed` when it has one, else a seed derived from the experiment id, so a
    retried attempt draws the same random numbers as the first."""
    seed = config.get("seed")
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    return int.from_bytes(hashlib.sha256(experiment_id.encode()).digest()[:8], "little") >> 1


class _Heartbeat(threading.Thread):
    """Beats for the run and flushes the reporter's buffer; a cancel (or losing the job)
    turns into `context.should_stop()`."""

    def __init__(
        self,
        events: EventService,
        experiment_id: str,
        worker: str,
        interval: float,
        reporter: StoreReporter,
    ) -> None:
        super().__init__(name=f"heartbeat-{experiment_id[:8]}", daemon=True)
        self._store = events.store
        self._reporter = reporter
        self._id = experiment_id
        self._worker = worker
        self._interval = interval
        self._done = threading.Event()
        self.stop_requested = threading.Event()

    def check(self) -> None:
        self._reporter.flush()
        status = self._store.heartbeat(self._id, self._worker)
        if status is not S.running:
            self.stop_requested.set()

    def run(self) -> None:
        while not self._done.wait(self._interval):
            try:
                self.check()
            except Exception:  # a blip of the database must not kill the run
                log.exception(
                    "heartbeat for %s failed; will retry",
                    self._id,
                    extra={"experiment_id": self._id},
                )

    def stop(self) -> None:
        self._done.set()


def _jsonable(result: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return json.loads(json.dumps(dict(result), default=_json_default))


def _json_default(value: Any) -> Any:
    for attr in ("tolist", "item"):  # numpy arrays and scalars, without importing numpy here
        if hasattr(value, attr):
            return getattr(value, attr)()
    return str(value)


@_logged_as_run
def run_experiment(
    experiment_id: str,
    events: EventService,
    *,
    registry: PipelineRegistry | None = None,
    worker: str | None = None,
    heartbeat_seconds: float = 5.0,
    path_policy: PathPolicy | None = None,
    settings: Settings | None = None,
) -> ExperimentRecord:
    """Claim the experiment, run its pipeline with a context wired to the store and the bus,
    and record the outcome: succeeded (summary), failed (error + traceback) or cancelled.

    `path_policy` (the platform's `run_path_policy`) resolves the config's data paths, e.g. a
    client's `uploads/<id>.csv` against the data folder. The error and traceback are stored
    without absolute server paths (clients read them); the worker's log keeps them whole.
    With `settings`, the run may start child runs (`RunContext.submit`)."""
    lifecycle = Lifecycle(events)
    store = events.store
    base = path_policy.base if path_policy is not None else None
    worker = worker or default_worker_name()
    record = lifecycle.start(experiment_id, worker)
    if record is None:
        return store.get(experiment_id)  # someone else runs it, or it is not queued any more

    def finish(status: S, **fields: Any) -> ExperimentRecord:
        for key in ("error", "traceback"):
            if fields.get(key):
                fields[key] = redact_paths(fields[key], base)
        # None: the job was taken from us meanwhile (declared lost and re-queued, ...)
        lifecycle.finish(experiment_id, status, worker=worker, **fields)
        return store.get(experiment_id)  # includes the final event's seq

    # Beat from the moment of the claim: importing a plugin can take seconds.
    reporter = StoreReporter(events, experiment_id)
    mirror: RunMirror | None = None
    heartbeat = _Heartbeat(events, experiment_id, worker, heartbeat_seconds, reporter)
    heartbeat.start()
    try:
        try:
            pipeline_cls = _load_pipeline(record.pipeline_id, registry)
            config = pipeline_cls.validate_config(record.config, path_policy=path_policy)
        except (UnknownPipelineError, ConfigError) as exc:
            return finish(S.failed, error=str(exc))
        except PluginImportError as exc:
            log.warning("experiment %s: %s\n%s", experiment_id, exc, exc.traceback)
            return finish(S.failed, error=str(exc), traceback=exc.traceback)
        artifact_dir = store.artifact_dir(experiment_id)
        context_args: dict[str, Any] = {
            "artifact_dir": artifact_dir,
            "checkpoint_dir": artifact_dir / CHECKPOINTS,
            "reporter": reporter,
            "seed": seed_for(experiment_id, record.config),
            "stop_requested": heartbeat.stop_requested.is_set,
            "experiment_id": experiment_id,
            "attempt": record.attempts,
            "launcher": _launcher(events, settings, record),
            "device": settings.device if settings is not None else "cpu",
        }
        context: RunContext
        if store.bucket is None:
            context = RunContext(**context_args)
        else:  # the bucket keeps the files: an earlier attempt's checkpoints come from it
            mirror = RunMirror(store.bucket, experiment_id, artifact_dir, heartbeat_seconds)
            try:
                mirror.restore_checkpoints()
            except Exception as exc:
                log.warning(
                    "experiment %s: reading the bucket failed", experiment_id, exc_info=True
                )
                return finish(
                    S.failed,
                    error=f"could not read the run's checkpoints from the artifact bucket: {exc}",
                )
            context = MirroredContext(mirror=mirror.start(), **context_args)
        try:
            result = pipeline_cls().run(config, context)
            summary = _jsonable(result)
            if reporter.non_finite is not None:  # the pipeline caught the error and went on
                raise reporter.non_finite
            if mirror is not None:  # a success whose model is not in the bucket is none
                mirror.stop()
                mirror.sync(strict=True)
        except Cancelled:
            return _finish_after(reporter, heartbeat, lambda: finish(S.cancelled))
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            trace = traceback.format_exc()
            log.info("experiment %s failed: %s", experiment_id, error, exc_info=True)
            return _finish_after(
                reporter, heartbeat, lambda: finish(S.failed, error=error, traceback=trace)
            )
        return _finish_after(reporter, heartbeat, lambda: finish(S.succeeded, summary=summary))
    finally:
        heartbeat.stop()
        heartbeat.join()
        reporter.flush()
        if mirror is not None:  # a failed or cancelled run's files too, as far as they go
            mirror.stop()
            mirror.sync()


def _launcher(
    events: EventService, settings: Settings | None, parent: ExperimentRecord
) -> StoreLauncher | None:
    """What serves the run's `context.submit`: its children are handed to the workers the way
    the API hands out runs (Celery in distributed mode; the embedded executor finds them)."""
    if settings is None:
        return None
    return StoreLauncher(Lifecycle(events, child_dispatcher(settings)), settings, parent)


class PluginImportError(Exception):
    """The experiment's pipeline is installed but its plugin failed to import."""

    def __init__(self, message: str, traceback: str) -> None:
        super().__init__(message)
        self.traceback = traceback


def _load_pipeline(pipeline_id: str, registry: PipelineRegistry | None) -> type[Pipeline]:
    if registry is not None:
        return registry.get(pipeline_id)
    # Import just this plugin: a worker need not pay for importing every installed app.
    found = discover(only=[pipeline_id])
    if pipeline_id in found:
        return found.get(pipeline_id)
    for error in found.errors:
        raise PluginImportError(
            f"the plugin of pipeline {pipeline_id!r} ({error.target}) failed to load: "
            f"{error.error}",
            error.traceback,
        )
    return discover().get(pipeline_id)  # raises UnknownPipelineError naming the known ids


def _finish_after(
    reporter: StoreReporter, heartbeat: _Heartbeat, record_outcome: Any
) -> ExperimentRecord:
    # What the run reported lands before its final status (and no beat races the finish).
    heartbeat.stop()
    heartbeat.join()
    reporter.flush()
    result: ExperimentRecord = record_outcome()
    return result
