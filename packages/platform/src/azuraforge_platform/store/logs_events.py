"""A run's log lines and its structured events (each with the experiment's next `seq`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update

from azuraforge_platform.store.base import StoreBase, utc_now
from azuraforge_platform.store.records import EventRecord, ExperimentNotFoundError, LogRecord
from azuraforge_platform.store.tables import Event, Experiment, LogLine, json_safe

__all__ = ["LogsEventsMixin"]


class LogsEventsMixin(StoreBase):
    """Append-only logs and events of an experiment, read back in order from a position."""

    def append_logs(
        self, experiment_id: str, lines: Sequence[tuple[str, str] | tuple[str, str, datetime]]
    ) -> None:
        """Append `(level, message)` or `(level, message, time)` lines in order."""
        now = utc_now()
        rows = [
            {
                "experiment_id": experiment_id,
                "level": line[0],
                "message": line[1],
                "time": line[2] if len(line) > 2 else now,
            }
            for line in lines
        ]
        if not rows:
            return
        with self._fk_guard(experiment_id), self._write() as session:
            session.connection().execute(insert(LogLine), rows)

    def logs(self, experiment_id: str, *, after_id: int = 0, limit: int = 1000) -> list[LogRecord]:
        query = (
            select(LogLine)
            .where(LogLine.experiment_id == experiment_id, LogLine.id > after_id)
            .order_by(LogLine.id)
            .limit(limit)
        )
        with self._read() as session:
            return [
                LogRecord(id=r.id, time=r.time, level=r.level, message=r.message)
                for r in session.scalars(query)
            ]

    def append_event(
        self, experiment_id: str, type: str, payload: Mapping[str, Any]
    ) -> EventRecord:
        return self.append_events(experiment_id, [(type, payload)])[0]

    def append_events(
        self, experiment_id: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[EventRecord]:
        """Persist events with the next seqs of this experiment, atomically: the counter bump
        locks the experiment's row, so seqs are gap-free and commit in seq order."""
        if not items:
            return []
        now = utc_now()
        with self._write() as session:
            last = session.scalar(
                update(Experiment)
                .where(Experiment.id == experiment_id)
                .values(last_event_seq=Experiment.last_event_seq + len(items))
                .returning(Experiment.last_event_seq)
            )
            if last is None:
                raise ExperimentNotFoundError(experiment_id)
            first = last - len(items) + 1
            records = [
                EventRecord(experiment_id, first + i, type_, json_safe(dict(payload)), now)
                for i, (type_, payload) in enumerate(items)
            ]
            session.connection().execute(
                insert(Event),
                [
                    {
                        "experiment_id": r.experiment_id,
                        "seq": r.seq,
                        "type": r.type,
                        "payload": r.payload,
                        "time": r.time,
                    }
                    for r in records
                ],
            )
        return records

    def events_after(
        self, experiment_id: str, after_seq: int = 0, *, limit: int = 1000
    ) -> list[EventRecord]:
        query = (
            select(Event)
            .where(Event.experiment_id == experiment_id, Event.seq > after_seq)
            .order_by(Event.seq)
            .limit(limit)
        )
        with self._read() as session:
            return [
                EventRecord(e.experiment_id, e.seq, e.type, dict(e.payload), e.time)
                for e in session.scalars(query)
            ]
