"""The one owner of an experiment's status: every change of it goes through `Lifecycle`, which
records it in the store and then emits the matching `status` event, so the store, the live
views and the status stream can never disagree about where a run is.

    submit  -> queued                    (and hand it to the workers)
    start   -> running                   (a worker's claim)
    finish  -> succeeded | failed | cancelled
    cancel  -> cancelling | cancelled    (and the runs a coordinator started, with it)
    recover -> lost -> queued | failed | cancelled   (a run whose worker is gone)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol

from azuraforge_platform.events import EventService
from azuraforge_platform.store import (
    ExperimentRecord,
    ExperimentStatus,
    ExperimentStore,
    InvalidTransitionError,
)

__all__ = ["Dispatcher", "Lifecycle", "QueueUnavailableError"]

log = logging.getLogger(__name__)
S = ExperimentStatus
_ACTIVE = frozenset({S.queued, S.running, S.cancelling, S.lost})


class Dispatcher(Protocol):
    """Hands a queued experiment to whatever runs it (Celery, or the embedded executor)."""

    def submit(self, experiment_id: str) -> None: ...


class QueueUnavailableError(Exception):
    """The experiment was recorded but could not be handed to the workers; it is `failed`."""


def _payload(record: ExperimentRecord, **extra: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {"status": record.status.value, **extra}
    if record.error is not None:
        payload["error"] = record.error
    return payload


class Lifecycle:
    def __init__(self, events: EventService, dispatcher: Dispatcher | None = None) -> None:
        self.events = events
        self.dispatcher = dispatcher

    @property
    def store(self) -> ExperimentStore:
        return self.events.store

    def _announce(self, record: ExperimentRecord, **extra: Any) -> ExperimentRecord:
        self.events.emit(record.id, "status", _payload(record, **extra))
        return record

    # -- submit ---------------------------------------------------------------------------
    def submit(
        self,
        *,
        pipeline_id: str,
        config: Mapping[str, Any],
        pipeline_version: str | None,
        owner: str | None,
        max_attempts: int,
        name: str | None = None,
        tags: Sequence[str] = (),
        parent_id: str | None = None,
        coordinator: bool = False,
    ) -> ExperimentRecord:
        """Record a new queued experiment and hand it to the workers. When that hand-over
        fails the experiment is failed (with its event) and `QueueUnavailableError` says why."""
        record = self.store.create(
            pipeline_id=pipeline_id,
            config=config,
            name=name,
            pipeline_version=pipeline_version,
            tags=tags,
            parent_id=parent_id,
            max_attempts=max_attempts,
            owner=owner,
            coordinator=coordinator,
        )
        self._announce(record)
        if self.dispatcher is None or coordinator:
            # Coordinators are not sent: the executors that run them look in the store.
            return record
        try:
            self.dispatcher.submit(record.id)
        except Exception as exc:
            log.exception("could not hand %s to the workers", record.id)
            self.finish(record.id, S.failed, error=f"could not enqueue: {exc}")
            raise QueueUnavailableError(str(exc)) from exc
        return record

    # -- a worker's side ------------------------------------------------------------------
    def start(self, experiment_id: str, worker: str) -> ExperimentRecord | None:
        """queued -> running for `worker`; None when another worker got it (or it is not
        queued any more)."""
        record = self.store.claim(experiment_id, worker)
        if record is None:
            return None
        return self._announce(record, worker=worker, attempt=record.attempts)

    def finish(
        self,
        experiment_id: str,
        status: ExperimentStatus,
        *,
        worker: str | None = None,
        **fields: Any,
    ) -> ExperimentRecord | None:
        """Record an outcome (`summary`, `error`, `traceback` in `fields`); None when the run
        was taken from `worker` meanwhile (declared lost and re-queued, ...)."""
        try:
            record = self.store.transition(experiment_id, status, worker=worker, **fields)
        except InvalidTransitionError:
            return None
        extra = {"summary": record.summary} if record.summary is not None else {}
        self._announce(record, **extra)
        self._end_orphans(record)
        return record

    def _end_orphans(self, record: ExperimentRecord) -> None:
        # A coordinator that ended leaves no child running for nobody.
        if record.coordinator and record.status in (S.succeeded, S.failed, S.cancelled):
            self.cancel_children(record.id)

    # -- cancel ---------------------------------------------------------------------------
    def cancel(self, experiment_id: str) -> ExperimentRecord:
        """queued/lost -> cancelled at once, running -> cancelling (its worker stops it).
        A coordinator's cancel also cancels the runs it started that are still active.
        Raises `InvalidTransitionError` when the run already finished."""
        before = self.store.get(experiment_id)
        record = self.store.request_cancel(experiment_id)
        if record.status is not before.status:
            self._announce(record)
        if record.coordinator:
            self.cancel_children(experiment_id)
        return record

    def cancel_children(self, experiment_id: str) -> list[ExperimentRecord]:
        cancelled = []
        for child in self.store.children(experiment_id, statuses=_ACTIVE):
            try:
                cancelled.append(self.cancel(child.id))
            except InvalidTransitionError:
                continue  # it finished meanwhile
        return cancelled

    def force_cancel(self, experiment_id: str, worker: str, error: str) -> ExperimentRecord | None:
        """The pipeline ignored its cancel: record `cancelled` now (its process is ended)."""
        return self.finish(experiment_id, S.cancelled, worker=worker, error=error)

    # -- runs whose worker is gone --------------------------------------------------------
    def _announce_recovery(self, record: ExperimentRecord) -> ExperimentRecord:
        self.events.emit(record.id, "status", {"status": S.lost.value, "error": record.error})
        self._announce(record, attempt=record.attempts)
        self._end_orphans(record)  # a re-queued coordinator adopts its children again
        return record

    def recover(
        self,
        experiment_id: str,
        *,
        worker: str,
        reason: str,
        heartbeat_before: Any = None,
    ) -> ExperimentRecord | None:
        """`worker`'s run ended without an outcome: mark it lost, then re-queue it (while
        attempts remain), fail or cancel it. None if it had an outcome after all, another
        worker holds it now, or it beat since `heartbeat_before`."""
        record = self.store.recover(
            experiment_id, worker=worker, reason=reason, heartbeat_before=heartbeat_before
        )
        return None if record is None else self._announce_recovery(record)

    def reap_lost(self, silent_for: timedelta) -> list[ExperimentRecord]:
        """Recover every run silent for `silent_for`; returns their new records. Concurrent
        reapers are harmless: a conditional UPDATE lets one win per run."""
        return [
            self._announce_recovery(self.store.get(i)) for i in self.store.reap_lost(silent_for)
        ]
