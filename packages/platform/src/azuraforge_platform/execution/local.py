"""Embedded execution: experiments run in worker processes the platform starts itself, so
training never blocks the API process. One dispatcher thread keeps up to `max_workers`
child processes busy with the oldest queued experiments."""

from __future__ import annotations

import logging
import multiprocessing
import queue
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from multiprocessing.context import SpawnProcess
from typing import Any

from azuraforge_platform.events import EventBus, EventService, InProcessEventBus, make_bus
from azuraforge_platform.execution.runner import run_experiment
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import EventRecord, ExperimentStatus, ExperimentStore

__all__ = ["LocalExecutor"]

log = logging.getLogger(__name__)

# spawn, not fork: the parent has threads (dispatcher, API server) and open connections.
_mp = multiprocessing.get_context("spawn")


class _RelayBus(EventBus):
    """Child side of an in-process bus: events travel to the parent over a queue."""

    def __init__(self, relay: Any) -> None:
        self._relay = relay

    def publish(self, event: EventRecord) -> None:
        self._relay.put(event.to_dict())

    def subscribe(self, experiment_id: str) -> Any:
        raise NotImplementedError("a worker process only publishes")


def _child_main(settings: Settings, experiment_id: str, worker: str, relay: Any | None) -> None:
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
        )
    finally:
        bus.close()
        store.close()


@dataclass
class _Running:
    process: SpawnProcess
    experiment_id: str
    worker: str
    cancel_seen_at: float | None = None


class LocalExecutor:
    """Runs queued experiments in child processes.

    With an `InProcessEventBus` (embedded mode) the children's events are relayed to it
    through a queue; with Redis they publish there directly.
    """

    def __init__(
        self,
        settings: Settings,
        store: ExperimentStore,
        bus: EventBus,
        *,
        max_workers: int = 1,
        poll_seconds: float = 1.0,
        cancel_grace_seconds: float = 30.0,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.settings = settings
        self.store = store
        self.bus = bus
        self.max_workers = max_workers
        self.poll_seconds = poll_seconds
        self.cancel_grace_seconds = cancel_grace_seconds
        self._relay: Any = _mp.Queue() if isinstance(bus, InProcessEventBus) else None
        self._running: dict[str, _Running] = {}
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._counter = 0
        self._host = socket.gethostname()

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> LocalExecutor:
        dispatcher = threading.Thread(target=self._dispatch_loop, name="azf-dispatch", daemon=True)
        self._threads = [dispatcher]
        if self._relay is not None:
            self._threads.append(
                threading.Thread(target=self._relay_loop, name="azf-relay", daemon=True)
            )
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop dispatching; wait for running children (then terminate them)."""
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            if thread.name == "azf-dispatch":
                thread.join(timeout)
        for run in list(self._running.values()):
            run.process.join(timeout)
            if run.process.is_alive():
                run.process.terminate()
                run.process.join(5)
        self._reap_children()
        if self._relay is not None:
            self._relay.put(None)
            for thread in self._threads:
                thread.join(timeout)
            self._relay.close()
            self._relay.join_thread()

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
                self._reap_children()
                self._enforce_cancels()
                self.store.reap_lost(lost_after)
                self._launch_queued()
            except Exception:  # keep dispatching through a database hiccup
                log.exception("dispatcher iteration failed; retrying")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def _launch_queued(self) -> None:
        free = self.max_workers - len(self._running)
        if free <= 0:
            return
        page = self.store.list_experiments(
            status=ExperimentStatus.queued.value,
            sort="created_at",
            descending=False,
            limit=free + len(self._running),
        )
        for exp in page.items:
            if free <= 0:
                break
            if exp.id in self._running:
                continue
            self._counter += 1
            worker = f"{self._host}:{multiprocessing.current_process().pid}:local-{self._counter}"
            process = _mp.Process(
                target=_child_main,
                args=(self.settings, exp.id, worker, self._relay),
                name=f"azf-run-{exp.id[:8]}",
                daemon=False,
            )
            process.start()
            self._running[exp.id] = _Running(process, exp.id, worker)
            free -= 1

    def _enforce_cancels(self) -> None:
        """A pipeline that ignores a cancel for `cancel_grace_seconds` is terminated."""
        now = time.monotonic()
        for run in list(self._running.values()):
            if self.store.get(run.experiment_id).status is not ExperimentStatus.cancelling:
                continue
            if run.cancel_seen_at is None:
                run.cancel_seen_at = now
            elif now - run.cancel_seen_at >= self.cancel_grace_seconds and run.process.is_alive():
                log.warning("terminating %s: it ignored a cancel", run.experiment_id)
                run.process.terminate()

    def _reap_children(self) -> None:
        for exp_id, run in list(self._running.items()):
            if run.process.is_alive():
                continue
            run.process.join()
            del self._running[exp_id]
            if run.process.exitcode != 0:
                # The child died without recording an outcome (killed, out of memory, ...):
                # re-queued while attempts remain, cancelled if a cancel was in flight.
                code = run.process.exitcode
                log.warning("worker for %s exited with code %s", exp_id, code)
                self.store.recover(
                    exp_id, worker=run.worker, reason=f"worker process exited with code {code}"
                )

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
            self.bus.publish(EventRecord.from_dict(item))
