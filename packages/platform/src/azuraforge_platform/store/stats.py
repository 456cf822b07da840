"""Counts for monitoring, read whole in one query each (Prometheus asks every few seconds)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from azuraforge_platform.store.base import StoreBase
from azuraforge_platform.store.tables import Experiment, ExperimentStatus

__all__ = ["StatsMixin"]

_ACTIVE = (ExperimentStatus.running.value, ExperimentStatus.cancelling.value)


class StatsMixin(StoreBase):
    def count_by_status(self) -> dict[tuple[str, str], int]:
        """(status, pipeline id) -> how many experiments are in that status now."""
        query = select(Experiment.status, Experiment.pipeline_id, func.count()).group_by(
            Experiment.status, Experiment.pipeline_id
        )
        with self.engine.connect() as conn:
            return {(status, pipeline): int(n) for status, pipeline, n in conn.execute(query)}

    def active_heartbeats(self) -> list[tuple[str | None, datetime | None]]:
        """(worker, last heartbeat) of every running or cancelling experiment."""
        query = select(Experiment.worker, Experiment.heartbeat_at).where(
            Experiment.status.in_(_ACTIVE)
        )
        with self.engine.connect() as conn:
            return [(worker, beat) for worker, beat in conn.execute(query)]
