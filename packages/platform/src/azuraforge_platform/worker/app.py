"""The worker's entry module: `celery -A azuraforge_platform.worker.app worker` (what
`azuraforge worker` starts).

- `azuraforge.run_experiment(experiment_id)` runs the experiment in a child process it
  supervises (so the pool is Celery's `threads` pool: supervising is waiting, and a prefork
  pool process is daemonic and may not start children) (`SupervisedRun`, the same code as the embedded mode): a crash in plugin code,
  even one that kills the process, fails or re-queues that run and leaves the worker serving;
  a run that ignores a cancel is terminated after the grace period. Idempotent: a task for an
  experiment that is not queued returns at once.
- Every worker runs a coordinator executor (studies, see `_start_reaper`) and a light reaper thread (started on `worker_ready`): every `reap_seconds` it
  marks runs silent for `lost_after_seconds` as lost, re-queues them while attempts remain and
  re-sends their task. Several workers reaping at once is fine: one conditional UPDATE wins.
  (`azuraforge.reap_lost` does the same for deployments that prefer Celery beat.)

Settings are read when a worker starts; the store is opened lazily in each process (after
Celery's fork), never shared across processes.

Logging is the platform's (`telemetry.logs`: text or JSON, each task's lines naming its
experiment), not Celery's own; with `worker_metrics_port` the worker serves its /metrics
(the runs it supervised, its slots) for Prometheus, behind the metrics token.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import threading
import time
from datetime import timedelta
from functools import lru_cache
from typing import Any

from celery import signals
from sqlalchemy.pool import NullPool

from azuraforge_platform.events import EventService, make_bus
from azuraforge_platform.execution import SupervisedRun, run_experiment
from azuraforge_platform.execution.local import LocalExecutor, warm_up
from azuraforge_platform.jobqueue import (
    REAP_LOST_TASK,
    RUN_EXPERIMENT_TASK,
    CeleryDispatcher,
    make_celery,
)
from azuraforge_platform.lifecycle import Lifecycle
from azuraforge_platform.paths import run_path_policy
from azuraforge_platform.settings import get_settings
from azuraforge_platform.store import ExperimentNotFoundError, ExperimentStatus, ExperimentStore
from azuraforge_platform.store.engine import make_engine
from azuraforge_platform.telemetry.logs import bound, configure_logging
from azuraforge_platform.telemetry.metrics import (
    RUNS_SUPERVISED,
    WORKER_SLOTS,
    MetricsServer,
    observe_run_end,
)

__all__ = ["Reaper", "app", "reap_lost", "run_experiment_task"]

log = logging.getLogger(__name__)

settings = get_settings()
app = make_celery(settings)
_runs = itertools.count(1)


@lru_cache(maxsize=1)
def _events() -> EventService:
    store = ExperimentStore.from_settings(settings)
    return EventService(store, make_bus(settings.redis_url, prefix=settings.event_channel_prefix))


@signals.setup_logging.connect
def _logging(loglevel: Any = None, **_: Any) -> None:
    # Connected, so Celery leaves the logging alone: one format for all of the platform.
    configure_logging(settings, level=loglevel)


@signals.worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # A pool process forked after the parent opened the store must not reuse its sockets.
    _events.cache_clear()


@app.task(name=RUN_EXPERIMENT_TASK, bind=True)
def run_experiment_task(self: Any, experiment_id: str) -> str:
    with bound(experiment_id=experiment_id):
        return _run_task(self, experiment_id)


def _run_task(self: Any, experiment_id: str) -> str:
    events = _events()
    try:
        status = events.store.get(experiment_id).status
    except ExperimentNotFoundError:
        return "missing"  # deleted while queued
    if status is not ExperimentStatus.queued:
        return status.value  # a duplicate or late delivery: someone ran (or runs) it
    worker = f"{self.request.hostname or 'celery'}:{os.getpid()}:{next(_runs)}"
    if multiprocessing.current_process().daemon:
        # A prefork pool process may not start children: run here, without a supervisor
        # (the cancel is then cooperative only). `azuraforge worker` uses the threads pool.
        log.warning("pool process is daemonic; running %s in-process", experiment_id)
        started = time.monotonic()
        record = run_experiment(
            experiment_id,
            events,
            worker=worker,
            heartbeat_seconds=settings.heartbeat_seconds,
            path_policy=run_path_policy(settings),
            settings=settings,
        )
        elapsed = time.monotonic() - started
        observe_run_end(record, worker=worker, recovered=False, elapsed=elapsed)
        return record.status.value
    with RUNS_SUPERVISED.labels("runs").track_inprogress():
        SupervisedRun(settings, experiment_id, worker).start().wait(
            events, settings.cancel_grace_seconds
        )
    return events.store.get(experiment_id).status.value


def _reap_and_resend(events: EventService) -> list[str]:
    reaped = Lifecycle(events).reap_lost(timedelta(seconds=settings.lost_after_seconds))
    dispatcher = CeleryDispatcher(app)
    for record in reaped:
        # a coordinator is not sent: the workers' coordinator executors find it in the store
        if record.status is ExperimentStatus.queued and not record.coordinator:
            dispatcher.submit(record.id)
    return [r.id for r in reaped]


@app.task(name=REAP_LOST_TASK)
def reap_lost() -> list[str]:
    """Re-queue runs whose worker vanished, and hand the re-queued ones out again."""
    return _reap_and_resend(_events())


class Reaper(threading.Thread):
    """The worker's own lost-run reaper (see the module docstring)."""

    def __init__(self, interval: float) -> None:
        super().__init__(name="azf-reaper", daemon=True)
        self.interval = interval
        self._done = threading.Event()

    def run(self) -> None:
        # Its own engine without a pool: no connection of it outlives one call, so none can
        # be inherited by a pool process forked meanwhile.
        engine = make_engine(settings.resolved_database_url, poolclass=NullPool)
        store = ExperimentStore("", settings.resolved_artifact_root, engine=engine)
        bus = make_bus(settings.redis_url, prefix=settings.event_channel_prefix)
        events = EventService(store, bus)
        try:
            while not self._done.wait(self.interval):
                try:
                    for exp_id in _reap_and_resend(events):
                        log.warning("run %s was lost; recovered it", exp_id)
                except Exception:  # a database blip must not end the reaper
                    log.exception("reaping lost runs failed; will retry")
        finally:
            bus.close()
            store.close()

    def stop(self) -> None:
        self._done.set()


_reaper: Reaper | None = None
_coordinators: LocalExecutor | None = None
_metrics: MetricsServer | None = None
_slots = 0


@signals.worker_ready.connect
def _start_reaper(sender: Any = None, **_: Any) -> None:
    global _reaper, _coordinators, _metrics, _slots
    # the pool's size: how many runs (tasks) this worker takes at once (the solo pool's is 1
    # whatever --concurrency says)
    pool = getattr(getattr(sender, "controller", None), "pool", None)
    _slots = int(getattr(pool, "limit", None) or 1)
    WORKER_SLOTS.labels("runs").inc(_slots)
    if settings.worker_metrics_port is not None:
        try:
            _metrics = MetricsServer(settings).start()
            log.info("metrics on %s:%s/metrics", settings.worker_metrics_host, _metrics.port)
        except (OSError, ValueError) as exc:  # the port is taken, no token: the runs go on
            log.error("the worker's /metrics is not served: %s", exc)
    _reaper = Reaper(settings.reap_seconds)
    _reaper.start()
    # Coordinator runs (studies) are never sent as tasks: each worker looks for queued ones
    # and runs up to `coordinator_slots` beside its pool, so a study never holds a pool slot
    # its trials need. The claim is a conditional UPDATE: one worker wins each study.
    store = ExperimentStore.from_settings(settings)
    bus = make_bus(settings.redis_url, prefix=settings.event_channel_prefix)
    _coordinators = LocalExecutor(settings, store, bus, runs="coordinators").start()
    warm_up()


@signals.worker_shutdown.connect
def _stop_reaper(**_: Any) -> None:
    WORKER_SLOTS.labels("runs").dec(_slots)
    if _metrics is not None:
        _metrics.stop()
    if _reaper is not None:
        _reaper.stop()
    if _coordinators is not None:
        _coordinators.stop()
        _coordinators.bus.close()
        _coordinators.store.close()
