"""Embedded execution: experiments run in worker processes the platform starts itself, so
training never blocks the API process. One dispatcher thread keeps up to `max_workers`
child processes busy with the oldest queued experiments."""

from __future__ import annotations

import logging
import os
import queue
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.process import BaseProcess
from typing import Any, Literal

from azuraforge_platform.events import EventBus, EventService, InProcessEventBus, make_bus
from azuraforge_platform.execution import processes
from azuraforge_platform.execution.lifeline import die_with_parent
from azuraforge_platform.execution.processes import mp_context as _mp
from azuraforge_platform.execution.processes import warm_up
from azuraforge_platform.execution.runner import run_experiment
from azuraforge_platform.lifecycle import Lifecycle
from azuraforge_platform.paths import run_path_policy
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import (
    EventRecord,
    ExperimentNotFoundError,
    ExperimentStatus,
    ExperimentStore,
)
from azuraforge_platform.telemetry.logs import bind_process_experiment, configure_logging
from azuraforge_platform.telemetry.metrics import RUNS_SUPERVISED, WORKER_SLOTS, observe_run_end

__all__ = ["LocalExecutor", "SupervisedRun", "warm_up"]

log = logging.getLogger(__name__)
_ACTIVE = frozenset({ExperimentStatus.running, ExperimentStatus.cancelling})

_KILL_AFTER_SECONDS = 5.0  # between SIGTERM and SIGKILL for a run that ignored its cancel


class _RelayBus(EventBus):
    """Child side of an in-process bus: events travel to the parent over a queue, each with
    the topic it goes to ("events" of its experiment, or "status")."""

    def __init__(self, relay: Any) -> None:
        self._relay = relay

    def publish(self, event: EventRecord) -> None:
        self._relay.put(("events", event.to_dict()))

    def publish_status(self, event: EventRecord) -> None:
        self._relay.put(("status", event.to_dict()))

    def subscribe(self, experiment_id: str) -> Any:
        raise NotImplementedError("a worker process only publishes")

    def subscribe_status(self) -> Any:
        raise NotImplementedError("a worker process only publishes")


def _child_main(settings: Settings, experiment_id: str, worker: str, relay: Any | None) -> None:
    die_with_parent(
        processes.FORK_SERVER_PID
    )  # an orphaned run would beat (and train) on unsupervised
    # The fork server was spawned, not forked: its children configure their own logging, and
    # each runs one experiment, so every line of it (any thread's) names that experiment.
    configure_logging(settings)
    bind_process_experiment(experiment_id)
    store = ExperimentStore.from_settings(settings)
    bus: EventBus = (
        _RelayBus(relay)
        if relay is not None
        else make_bus(settings.redis_url, prefix=settings.event_channel_prefix)
    )
    try:
        run_experiment(
            experiment_id,
            EventService(store, bus),
            worker=worker,
            heartbeat_seconds=settings.heartbeat_seconds,
            path_policy=run_path_policy(settings),
            settings=settings,
        )
    finally:
        bus.close()
        store.close()


class SupervisedRun:
    """One experiment in a child process of its own, watched by its parent.

    The child does everything (`run_experiment`: claim, heartbeats, outcome); the parent only
    steps in when the child cannot: it terminates a run that ignored a cancel for
    `grace_seconds` (SIGTERM, then SIGKILL), and recovers a run whose child exited without
    recording an outcome (killed, crashed in native code, `os._exit` in a plugin).
    Embedded mode keeps several of these per dispatcher; a Celery task keeps one.
    """

    def __init__(
        self, settings: Settings, experiment_id: str, worker: str, relay: Any | None = None
    ) -> None:
        self.experiment_id = experiment_id
        self.worker = worker
        self.process: BaseProcess = _mp.Process(
            target=_child_main,
            args=(settings, experiment_id, worker, relay),
            name=f"azf-run-{experiment_id[:8]}",
            daemon=False,
        )
        self.cancel_seen_at: float | None = None
        self.terminated_at: float | None = None
        self.coordinator = False  # which of the executor's slots it holds
        self.started = time.monotonic()

    def start(self) -> SupervisedRun:
        self.started = time.monotonic()
        self.process.start()
        return self

    def check(self, events: EventService, grace_seconds: float) -> bool:
        """One look: True once the child is gone (and its run recovered if it had to be)."""
        if not self.process.is_alive():
            self.process.join()
            code = self.process.exitcode
            if code != 0:
                log.warning(
                    "worker for %s exited with code %s",
                    self.experiment_id,
                    code,
                    extra={"experiment_id": self.experiment_id},
                )
            # Conditional on this worker still holding an active run, so it is a no-op after
            # a recorded outcome (or when another worker claimed the experiment).
            recovered = Lifecycle(events).recover(
                self.experiment_id,
                worker=self.worker,
                reason=f"worker process exited with code {code} without recording an outcome",
            )
            self._observe(events, recovered)
            return True
        now = time.monotonic()
        if self.terminated_at is not None:
            if now - self.terminated_at >= _KILL_AFTER_SECONDS:
                self.process.kill()  # it ignores SIGTERM too
            return False
        if events.store.get(self.experiment_id).status is not ExperimentStatus.cancelling:
            return False
        if self.cancel_seen_at is None:
            self.cancel_seen_at = now
        elif now - self.cancel_seen_at >= grace_seconds:
            log.warning("terminating %s: it ignored a cancel", self.experiment_id)
            self.process.terminate()
            self.terminated_at = now
        return False

    def _observe(self, events: EventService, recovered: Any) -> None:
        # The supervisor outlives the child, so the duration is observed here, in a process
        # Prometheus scrapes (telemetry/metrics.py).
        try:
            record = recovered if recovered is not None else events.store.get(self.experiment_id)
        except ExperimentNotFoundError:  # deleted meanwhile
            return
        observe_run_end(
            record,
            worker=self.worker,
            recovered=recovered is not None,
            elapsed=time.monotonic() - self.started,
        )

    def wait(self, events: EventService, grace_seconds: float, poll_seconds: float = 0.5) -> None:
        """Block until the child is gone (what a Celery task does)."""
        while True:
            try:
                if self.check(events, grace_seconds):
                    return
            except Exception:  # a database blip must not orphan the child
                log.exception("supervising %s failed; will retry", self.experiment_id)
            self.process.join(poll_seconds)


def _kind(run: SupervisedRun) -> str:
    return "coordinators" if run.coordinator else "runs"


# What LocalExecutor names its runs' workers: `host:pid:local-N` (pid: the executor's process).
_WORKER_NAME = re.compile(r"^(?P<host>.+):(?P<pid>\d+):local-(?P<n>\d+)$")


class _WorkerNames:
    """The names this process's executors gave their runs: numbered across all of them, and
    those in use now, so a name with this process's pid is known to be ours or not."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last = 0
        self.held: set[str] = set()

    def take(self, host: str) -> str:
        with self._lock:
            self._last += 1
            name = f"{host}:{os.getpid()}:local-{self._last}"
            self.held.add(name)
            return name

    def release(self, name: str) -> None:
        with self._lock:
            self.held.discard(name)

    def skip_past(self, number: int) -> None:
        with self._lock:
            self._last = max(self._last, number)


_names = _WorkerNames()


def _process_gone(pid: int) -> bool:
    """Whether no process `pid` runs on this machine."""
    if pid <= 0 or os.name == "nt":  # kill(0, 0) means the process group; on Windows, kill
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: another user's process, alive
        return False
    return False


class LocalExecutor:
    """Runs queued experiments in child processes.

    With an `InProcessEventBus` (embedded mode) the children's events are relayed to it
    through a queue; with Redis they publish there directly.

    On start it recovers the runs an earlier embedded process of this machine held when it
    died (SIGKILL, power loss): its run children died with it (see lifeline.py), so waiting
    `lost_after_seconds` for the reaper would only show them as live workers meanwhile.
    """

    def __init__(
        self,
        settings: Settings,
        store: ExperimentStore,
        bus: EventBus,
        *,
        max_workers: int = 1,
        poll_seconds: float = 1.0,
        cancel_grace_seconds: float | None = None,
        runs: Literal["all", "plain", "coordinators"] = "all",
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        # Coordinators (studies) get slots of their own, so one never holds the slot its
        # children wait for. "coordinators": a Celery worker's executor, which leaves plain
        # runs (and reaping) to Celery; "plain": the children of a foreground `run`.
        self.runs = runs
        self.coordinator_slots = settings.coordinator_slots
        self.settings = settings
        self.store = store
        self.bus = bus
        self.events = EventService(store, bus)
        self.lifecycle = Lifecycle(self.events)
        self.max_workers = max_workers
        self.poll_seconds = poll_seconds
        self.cancel_grace_seconds = (
            settings.cancel_grace_seconds if cancel_grace_seconds is None else cancel_grace_seconds
        )
        self._relay: Any = _mp.Queue() if isinstance(bus, InProcessEventBus) else None
        self._running: dict[str, SupervisedRun] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._host = socket.gethostname()
        self._last_reap = 0.0
        self._orphans: dict[str, str] = {}  # experiment id -> the dead process's worker name

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> LocalExecutor:
        try:
            self._orphans = self._find_orphans()
            self._recover_orphans()  # before the API answers: health never counts them
        except Exception:  # the periodic reaper recovers them later
            log.exception("looking for runs of a dead earlier process failed")
        warm_up()
        self._count_slots(+1)
        dispatcher = threading.Thread(target=self._dispatch_loop, name="azf-dispatch", daemon=True)
        self._threads = [dispatcher]
        if self._relay is not None:
            self._threads.append(
                threading.Thread(target=self._relay_loop, name="azf-relay", daemon=True)
            )
        else:
            self._threads.append(
                threading.Thread(target=self._watch_queued, name="azf-wake", daemon=True)
            )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop dispatching; wait for running children (then terminate them)."""
        if not self._stopping.is_set() and self._threads:
            self._count_slots(-1)
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            if thread.name in ("azf-dispatch", "azf-wake"):  # before the caller closes the bus
                thread.join(timeout)
        for run in list(self._running.values()):
            run.process.join(timeout)
            if run.process.is_alive():
                run.process.terminate()
                run.process.join(5)
        self._supervise()
        if self._relay is not None:
            self._relay.put(None)
            for thread in self._threads:
                thread.join(timeout)
            self._relay.close()
            self._relay.join_thread()

    def _count_slots(self, sign: int) -> None:
        if self.runs != "coordinators":
            WORKER_SLOTS.labels("runs").inc(sign * self.max_workers)
        if self.runs != "plain":
            WORKER_SLOTS.labels("coordinators").inc(sign * self.coordinator_slots)

    def __enter__(self) -> LocalExecutor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def submit(self, experiment_id: str) -> None:
        """Hint that `experiment_id` was queued (the dispatcher also finds it by polling)."""
        self._wake.set()

    @property
    def running(self) -> list[str]:
        return list(self._running)

    # -- internals ------------------------------------------------------------------------
    def _dispatch_loop(self) -> None:
        lost_after = timedelta(seconds=self.settings.lost_after_seconds)
        while not self._stopping.is_set():
            try:
                self._supervise()
                if self._orphans:
                    self._recover_orphans()
                reaps = self.runs != "coordinators"  # a Celery worker's reaper re-sends tasks
                if reaps and time.monotonic() - self._last_reap >= self.settings.reap_seconds:
                    # runs of any process that died silently (another executor, a CLI run)
                    self.lifecycle.reap_lost(lost_after)
                    self._last_reap = time.monotonic()
                self._launch_queued()
            except Exception:  # keep dispatching through a database hiccup
                log.exception("dispatcher iteration failed; retrying")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _launch_queued(self) -> None:
        if self.runs != "coordinators":
            self._launch(coordinator=False, slots=self.max_workers)
        if self.runs != "plain":
            self._launch(coordinator=True, slots=self.coordinator_slots)

    def _launch(self, *, coordinator: bool, slots: int) -> None:
        held = sum(1 for run in self._running.values() if run.coordinator is coordinator)
        free = slots - held
        if free <= 0:
            return
        page = self.store.list_experiments(
            status=ExperimentStatus.queued.value,
            coordinator=coordinator,
            sort="created_at",
            descending=False,
            limit=free + held,
        )
        for exp in page.items:
            if free <= 0:
                break
            if exp.id in self._running:
                continue
            worker = _names.take(self._host)
            try:
                run = SupervisedRun(self.settings, exp.id, worker, self._relay).start()
            except BaseException:
                _names.release(worker)
                raise
            run.coordinator = coordinator
            self._running[exp.id] = run
            RUNS_SUPERVISED.labels(_kind(run)).inc()
            free -= 1

    def _find_orphans(self) -> dict[str, str]:
        """Active runs that an embedded executor of this machine held, in a process that is
        gone. One with this process's pid that no executor here holds counts too: an earlier
        process had the same pid (PID 1 of a restarted container); new names are numbered
        past its ones, never to be confused with them."""
        orphans: dict[str, str] = {}
        cursor: str | None = None
        while True:
            page = self.store.list_experiments(
                status=[ExperimentStatus.running.value, ExperimentStatus.cancelling.value],
                limit=1000,
                cursor=cursor,
            )
            for exp in page.items:
                found = _WORKER_NAME.match(exp.worker or "")
                if found is None or found["host"] != self._host:
                    continue
                pid, worker = int(found["pid"]), str(exp.worker)
                if pid == os.getpid():
                    if worker in _names.held:  # another executor of this process runs it
                        continue
                    _names.skip_past(int(found["n"]))
                elif not _process_gone(pid):
                    continue
                orphans[exp.id] = worker
            cursor = page.next_cursor
            if cursor is None:
                return orphans

    def _recover_orphans(self) -> None:
        """Recover the orphans silent for two beats. One still beating stays an orphan to
        look at again: its owner's pid may only be invisible from here (another container
        with this host name), or a child outlived its parent where nothing ties it to it."""
        beats = min(2 * self.settings.heartbeat_seconds, self.settings.lost_after_seconds)
        silent_since = datetime.now(UTC) - timedelta(seconds=beats)
        for exp_id, worker in list(self._orphans.items()):
            try:
                record = self.lifecycle.recover(
                    exp_id,
                    worker=worker,
                    heartbeat_before=silent_since,
                    reason=f"the process of worker {worker} is gone (found when the platform "
                    f"started again on {self._host})",
                )
                current = self.store.get(exp_id) if record is None else record
            except ExperimentNotFoundError:  # deleted meanwhile
                del self._orphans[exp_id]
                continue
            if record is not None:
                log.warning("run %s of the dead worker %s: %s", exp_id, worker, record.status)
            if record is not None or current.status not in _ACTIVE or current.worker != worker:
                del self._orphans[exp_id]

    def _supervise(self) -> None:
        """Cancels past their grace are terminated; finished children are forgotten (and
        their runs recovered if they died without an outcome)."""
        for exp_id, run in list(self._running.items()):
            if run.check(self.events, self.cancel_grace_seconds):
                del self._running[exp_id]
                RUNS_SUPERVISED.labels(_kind(run)).dec()
                _names.release(run.worker)

    def _wake_if_queued(self, event: EventRecord) -> None:
        # A run queued by anyone (the API, another process, a study submitting its trials)
        # starts now rather than at the next poll: a study's trials follow each other closely.
        if event.payload.get("status") == ExperimentStatus.queued.value:
            self._wake.set()

    def _watch_queued(self) -> None:
        """With a shared bus (Redis) queued runs announce themselves on the status topic."""
        while not self._stopping.is_set():
            try:
                with self.bus.subscribe_status() as statuses:
                    while not self._stopping.is_set():
                        event = statuses.get(timeout=1.0)
                        if event is not None:
                            self._wake_if_queued(event)
            except Exception:  # the bus is down: polling still finds queued runs
                log.warning("status subscription failed; queued runs start on the next poll")
                self._stopping.wait(self.poll_seconds * 5)

    def _relay_loop(self) -> None:
        while True:
            try:
                item = self._relay.get(timeout=1.0)
            except queue.Empty:
                if self._stopping.is_set() and not self._running:
                    return
                continue
            if item is None:
                return
            topic, data = item
            event = EventRecord.from_dict(data)
            if topic == "status":
                self.bus.publish_status(event)
                self._wake_if_queued(event)
            else:
                self.bus.publish(event)
