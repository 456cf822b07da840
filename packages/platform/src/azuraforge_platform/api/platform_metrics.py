"""What an API process reads at scrape time: the platform's state as the store and the queue
know it, the same whichever API process answers (so a dashboard takes `max`, not `sum`,
across API instances). Nothing here is counted by hand: each scrape asks afresh."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from azuraforge_platform.api.worker_census import idle_workers
from azuraforge_platform.store import ExperimentStatus

if TYPE_CHECKING:
    from azuraforge_platform.api.services import Services

__all__ = ["PlatformCollector", "worker_process"]

log = logging.getLogger(__name__)


def worker_process(worker: str) -> str:
    """The process a run's worker name belongs to: `host:pid`. Runs are named
    `celery@host:pid:N` (a Celery task), `host:pid:local-N` (an executor's child) or
    `host:pid[:cli]`; one worker process's tasks and coordinators share its key."""
    parts = worker.split(":")
    if len(parts) < 2 or not parts[1].isdigit():
        return worker
    return f"{parts[0].rpartition('@')[2]}:{parts[1]}"


class PlatformCollector(Collector):
    """`azuraforge_experiments`, `azuraforge_queue_depth`,
    `azuraforge_runs_active` and `azuraforge_workers_alive` (docs/observability.md)."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._from_store()
        except Exception as exc:  # a scrape still answers, without the database's families
            log.warning("metrics: reading the store failed: %s", exc)
        try:
            depth = self._queue_depth()
        except Exception as exc:
            log.warning("metrics: reading the queue failed: %s", exc)
        else:
            if depth is not None:
                yield depth

    def _from_store(self) -> Iterator[Metric]:
        store = self.services.store
        counts = store.count_by_status()
        experiments = GaugeMetricFamily(
            "azuraforge_experiments",
            "Experiments in the store now, by status and pipeline.",
            labels=["status", "pipeline"],
        )
        for pipeline in sorted({p for _, p in counts}):
            for status in ExperimentStatus:
                experiments.add_metric(
                    [status.value, pipeline], counts.get((status.value, pipeline), 0)
                )
        yield experiments

        lost_after = timedelta(seconds=self.services.settings.lost_after_seconds)
        cutoff = datetime.now(UTC) - lost_after
        fresh = stale = 0
        busy: set[str] = set()
        for worker, beat in store.active_heartbeats():
            if beat is not None and beat >= cutoff:
                fresh += 1
                if worker:
                    busy.add(worker)
            else:
                stale += 1
        active = GaugeMetricFamily(
            "azuraforge_runs_active",
            "Running or cancelling experiments, by whether their worker beat within "
            "lost_after_seconds (stale ones are about to be declared lost).",
            labels=["heartbeat"],
        )
        active.add_metric(["fresh"], fresh)
        active.add_metric(["stale"], stale)
        yield active
        alive = {worker_process(w) for w in busy} | idle_workers(self.services, busy)
        yield GaugeMetricFamily(
            "azuraforge_workers_alive",
            "Worker processes alive: busy ones (beat for a run within lost_after_seconds) "
            "plus idle ones (answered a Celery ping, or this process's embedded executor).",
            value=len(alive),
        )
        if self.services.mode != "distributed":
            queued = sum(n for (status, _), n in counts.items() if status == "queued")
            yield self._depth("embedded", queued)

    def _queue_depth(self) -> GaugeMetricFamily | None:
        """Distributed mode: the messages waiting in the Celery queue (Redis)."""
        celery = self.services.celery
        if self.services.mode != "distributed" or celery is None:
            return None
        from kombu.exceptions import ChannelError

        name = self.services.settings.celery_queue
        with celery.connection_for_read() as conn:
            try:
                declared = conn.default_channel.queue_declare(queue=name, passive=True)
                waiting = int(declared.message_count)
            except ChannelError:  # Redis keeps no empty list: an empty queue "does not exist"
                waiting = 0
        return self._depth(name, waiting)

    @staticmethod
    def _depth(queue: str, value: int) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "azuraforge_queue_depth",
            "Runs waiting for a worker: the Celery queue's messages (distributed mode) or "
            "the queued experiments (embedded mode, queue=embedded).",
            labels=["queue"],
        )
        family.add_metric([queue], value)
        return family
