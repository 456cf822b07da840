"""Runs whose worker is gone: marked `lost`, then re-queued (while attempts remain), failed,
or cancelled (when a cancel was in flight), with a `status` event for each step so live
views follow along.

Who calls this:
- embedded mode: the `LocalExecutor` dispatcher, for its own children that exit without an
  outcome (at once), for the runs of an earlier embedded process of this machine that died
  (when it starts, once they are silent for two beats) and for any run that stopped
  heart-beating (`reap_lost_runs`);
- distributed mode: every Celery worker's reaper thread (`worker/app.py`), which also re-sends
  the task of each re-queued run; the same supervision as embedded mode covers the children
  of a live worker. Conditional UPDATEs make concurrent reapers harmless: one wins per run.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from azuraforge_platform.events import EventService
from azuraforge_platform.store import ExperimentRecord, ExperimentStatus

__all__ = ["recover_run", "reap_lost_runs"]


def _announce(events: EventService, record: ExperimentRecord) -> None:
    events.emit(record.id, "status", {"status": ExperimentStatus.lost.value, "error": record.error})
    events.emit(
        record.id,
        "status",
        {"status": record.status.value, "error": record.error, "attempt": record.attempts},
    )


def recover_run(
    events: EventService,
    experiment_id: str,
    *,
    worker: str,
    reason: str,
    heartbeat_before: datetime | None = None,
) -> ExperimentRecord | None:
    """`worker`'s run ended without an outcome: recover it (None if it had one after all,
    another worker holds it now, or it beat since `heartbeat_before`)."""
    record = events.store.recover(
        experiment_id, worker=worker, reason=reason, heartbeat_before=heartbeat_before
    )
    if record is not None:
        _announce(events, record)
    return record


def reap_lost_runs(events: EventService, silent_for: timedelta) -> list[ExperimentRecord]:
    """Recover every run silent for `silent_for`; returns their new records."""
    records = [events.store.get(i) for i in events.store.reap_lost(silent_for)]
    for record in records:
        _announce(events, record)
    return records
