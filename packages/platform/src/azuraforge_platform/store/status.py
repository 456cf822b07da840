"""The status machine: which moves are legal, claiming a run, cancelling, heart-beats and
recovering runs whose worker went away. Every change is a conditional UPDATE, so two workers
can never both claim or finish the same experiment."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from azuraforge_platform.store.base import StoreBase, utc_now
from azuraforge_platform.store.records import (
    ExperimentNotFoundError,
    ExperimentRecord,
    StoreError,
)
from azuraforge_platform.store.tables import Experiment, ExperimentStatus

__all__ = ["ACTIVE", "ALLOWED_TRANSITIONS", "TERMINAL", "InvalidTransitionError", "LifecycleMixin"]

S = ExperimentStatus
TERMINAL = frozenset({S.succeeded, S.failed, S.cancelled})
ACTIVE = frozenset({S.running, S.cancelling})

# Every legal move; anything else is refused (e.g. succeeded -> running).
ALLOWED_TRANSITIONS: Mapping[ExperimentStatus, frozenset[ExperimentStatus]] = {
    S.queued: frozenset({S.running, S.cancelled, S.failed}),
    S.running: frozenset({S.succeeded, S.failed, S.cancelling, S.cancelled, S.lost}),
    S.cancelling: frozenset({S.cancelled, S.succeeded, S.failed, S.lost}),
    S.lost: frozenset({S.queued, S.failed, S.cancelled}),
    S.succeeded: frozenset(),
    S.failed: frozenset(),
    S.cancelled: frozenset(),
}


class InvalidTransitionError(StoreError):
    def __init__(self, experiment_id: str, current: str, target: str, reason: str = "") -> None:
        self.experiment_id = experiment_id
        self.current = current
        self.target = target
        allowed = sorted(ALLOWED_TRANSITIONS[ExperimentStatus(current)])
        detail = reason or f"allowed from {current}: {', '.join(allowed) or 'none (final state)'}"
        super().__init__(
            f"experiment {experiment_id} cannot go from {current} to {target} ({detail})"
        )


class LifecycleMixin(StoreBase):
    """State changes of an experiment, each checked against `ALLOWED_TRANSITIONS`."""

    def transition(
        self,
        experiment_id: str,
        target: str | ExperimentStatus,
        *,
        expected: str | ExperimentStatus | None = None,
        worker: str | None = None,
        error: str | None = None,
        traceback: str | None = None,
        summary: Mapping[str, Any] | None = None,
    ) -> ExperimentRecord:
        """Move to `target` if that is legal from the current state (and, when given, only
        from `expected` / only if `worker` holds it). Raises `InvalidTransitionError`."""
        target = ExperimentStatus(target)
        for _ in range(5):  # re-read on a lost race; a real conflict raises below
            current = self.get(experiment_id)
            if expected is not None and current.status != ExperimentStatus(expected):
                raise InvalidTransitionError(
                    experiment_id, current.status, target, f"expected it to be {expected}"
                )
            if target not in ALLOWED_TRANSITIONS[current.status]:
                raise InvalidTransitionError(experiment_id, current.status, target)
            if worker is not None and current.worker not in (None, worker):
                raise InvalidTransitionError(
                    experiment_id, current.status, target, f"held by worker {current.worker}"
                )
            values = self._values_for(target, current, worker, error, traceback, summary)
            conditions = [Experiment.id == experiment_id, Experiment.status == current.status]
            if worker is not None and current.worker is not None:
                conditions.append(Experiment.worker == worker)
            with self._write() as session:
                result = session.execute(update(Experiment).where(*conditions).values(**values))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                return self.get(experiment_id)
        raise StoreError(
            f"experiment {experiment_id} keeps changing; transition to {target} gave up"
        )

    @staticmethod
    def _values_for(
        target: ExperimentStatus,
        current: ExperimentRecord,
        worker: str | None,
        error: str | None,
        traceback: str | None,
        summary: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        now = utc_now()
        values: dict[str, Any] = {"status": target.value, "updated_at": now}
        if target is S.running:
            values.update(
                started_at=now,
                heartbeat_at=now,
                worker=worker,
                attempts=Experiment.attempts + 1,
                error=None,
                traceback=None,
            )
        elif target is S.queued:
            values.update(worker=None, heartbeat_at=None)
        if target in TERMINAL:
            values["finished_at"] = now
        if error is not None:
            values["error"] = error
        if traceback is not None:
            values["traceback"] = traceback
        if summary is not None:
            values["summary"] = dict(summary)
        return values

    def claim(self, experiment_id: str, worker: str) -> ExperimentRecord | None:
        """queued -> running for `worker`; None when someone else got it first (or it is
        not queued). One conditional UPDATE, so exactly one concurrent claimer wins."""
        now = utc_now()
        with self._write() as session:
            result = session.execute(
                update(Experiment)
                .where(Experiment.id == experiment_id, Experiment.status == S.queued.value)
                .values(
                    status=S.running.value,
                    worker=worker,
                    started_at=now,
                    heartbeat_at=now,
                    updated_at=now,
                    attempts=Experiment.attempts + 1,
                    error=None,
                    traceback=None,
                )
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        return self.get(experiment_id)

    def request_cancel(self, experiment_id: str) -> ExperimentRecord:
        """queued/lost -> cancelled at once; running -> cancelling (the worker stops it)."""
        for _ in range(5):
            current = self.get(experiment_id)
            if current.status is S.cancelling:
                return current
            if current.status in TERMINAL:
                raise InvalidTransitionError(
                    experiment_id, current.status, S.cancelled, "it already finished"
                )
            target = S.cancelling if current.status is S.running else S.cancelled
            try:
                return self.transition(experiment_id, target, expected=current.status)
            except InvalidTransitionError:
                continue  # it moved underneath us; look again
        raise StoreError(f"experiment {experiment_id} keeps changing; cancel gave up")

    def heartbeat(self, experiment_id: str, worker: str) -> ExperimentStatus:
        """Record that `worker` is alive on this run; returns the current status, so the
        worker learns about a cancel (`cancelling`) or that it lost the job."""
        now = utc_now()
        with self._write() as session:
            session.execute(
                update(Experiment)
                .where(
                    Experiment.id == experiment_id,
                    Experiment.worker == worker,
                    Experiment.status.in_([s.value for s in ACTIVE]),
                )
                .values(heartbeat_at=now)
            )
            status = session.scalar(select(Experiment.status).where(Experiment.id == experiment_id))
        if status is None:
            raise ExperimentNotFoundError(experiment_id)
        return ExperimentStatus(status)

    def reap_lost(self, silent_for: timedelta) -> list[str]:
        """Runs whose worker stopped heart-beating for `silent_for`: see `recover`."""
        cutoff = utc_now() - silent_for
        with self._read() as session:
            stale = list(
                session.scalars(
                    select(Experiment.id).where(
                        Experiment.status.in_([s.value for s in ACTIVE]),
                        Experiment.heartbeat_at < cutoff,
                    )
                )
            )
        return [
            exp_id for exp_id in stale if self.recover(exp_id, heartbeat_before=cutoff) is not None
        ]

    def recover(
        self,
        experiment_id: str,
        *,
        worker: str | None = None,
        heartbeat_before: datetime | None = None,
        reason: str | None = None,
    ) -> ExperimentRecord | None:
        """A run whose worker is gone: mark it `lost`, then re-queue it while attempts remain
        (else `failed`; `cancelled` if a cancel was in flight). Only acts while the run is
        still active (and still held by `worker` / still silent since `heartbeat_before`),
        so a concurrent finish wins. Returns the new record, or None if it did not apply."""
        before = self.get(experiment_id)
        if before.status not in ACTIVE:
            return None
        # Conditional on the status we read, so running -> cancelling meanwhile is not missed.
        conditions = [Experiment.id == experiment_id, Experiment.status == before.status.value]
        if worker is not None:
            conditions.append(Experiment.worker == worker)
        if heartbeat_before is not None:
            conditions.append(Experiment.heartbeat_at < heartbeat_before)
        with self._write() as session:
            result = session.execute(
                update(Experiment)
                .where(*conditions)
                .values(status=S.lost.value, updated_at=utc_now())
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return None
        record = self.get(experiment_id)
        message = reason or f"worker {record.worker} stopped heart-beating"
        if before.status is S.cancelling:
            return self.transition(experiment_id, S.cancelled, expected=S.lost, error=message)
        if record.attempts < record.max_attempts:
            return self.transition(experiment_id, S.queued, expected=S.lost, error=message)
        return self.transition(experiment_id, S.failed, expected=S.lost, error=message)
