"""Persist-then-publish, and gap-free, duplicate-free streams of an experiment's events."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

from azuraforge_platform.events.base import EventBus
from azuraforge_platform.store.repository import EventRecord, ExperimentStore

__all__ = ["EventService", "EventStream"]


class EventService:
    def __init__(self, store: ExperimentStore, bus: EventBus) -> None:
        self.store = store
        self.bus = bus

    def emit(self, experiment_id: str, type: str, payload: Mapping[str, Any]) -> EventRecord:
        """Store the event (which assigns its seq), then publish it."""
        return self.emit_many(experiment_id, [(type, payload)])[0]

    def emit_many(
        self, experiment_id: str, items: Sequence[tuple[str, Mapping[str, Any]]]
    ) -> list[EventRecord]:
        records = self.store.append_events(experiment_id, items)
        for record in records:
            self.bus.publish(record)
        return records

    def stream(
        self, experiment_id: str, after: int = 0, *, poll_interval: float = 2.0
    ) -> EventStream:
        """Events with seq > `after`: the stored backlog, then live ones."""
        return EventStream(self, experiment_id, after, poll_interval=poll_interval)


class EventStream:
    """Delivers every event after `after` exactly once, in seq order.

    It subscribes BEFORE reading the backlog, so nothing published meanwhile is missed, and
    drops live events it already delivered. Seqs commit in order, so a live event that skips
    ahead (publishers racing, or a publish lost when a worker died) means the store already
    holds the missing ones: they are read from there. A stream quiet for `poll_interval`
    seconds re-reads the store, which catches events whose publish never happened.
    """

    def __init__(
        self, service: EventService, experiment_id: str, after: int, *, poll_interval: float
    ) -> None:
        self._store = service.store
        self.experiment_id = experiment_id
        self._subscription = service.bus.subscribe(experiment_id)
        self._pending: deque[EventRecord] = deque()
        self._cursor = after  # highest seq delivered or queued for delivery
        self._poll_interval = poll_interval
        self._last_poll = time.monotonic()
        self._fill()

    @property
    def last_seq(self) -> int:
        """Seq of the last event handed out (or queued): resume with `after=last_seq`."""
        return self._cursor - len(self._pending)

    def _fill(self) -> None:
        # Up to a short batch, not an empty one: a run that keeps writing is not chased
        # while the events already read wait.
        limit = 1000
        while True:
            batch = self._store.events_after(self.experiment_id, self._cursor, limit=limit)
            if batch:
                self._pending.extend(batch)
                self._cursor = batch[-1].seq
            if len(batch) < limit:
                break
        self._last_poll = time.monotonic()

    def _offer(self, event: EventRecord) -> None:
        if event.seq <= self._cursor:
            return  # already delivered from the backlog or an earlier fill
        if event.seq > self._cursor + 1:
            self._fill()
            if event.seq <= self._cursor:
                return
        self._pending.append(event)
        self._cursor = event.seq
        self._last_poll = time.monotonic()  # the live path works: poll only after silence

    def get(self, timeout: float | None = None) -> EventRecord | None:
        """The next event, or None if none came within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._pending:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            if now - self._last_poll >= self._poll_interval:
                self._fill()
                continue
            wait = self._last_poll + self._poll_interval - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            event = self._subscription.get(timeout=max(wait, 0.0))
            if event is not None:
                self._offer(event)
        return self._pending.popleft()

    async def aget(self, timeout: float | None = None) -> EventRecord | None:
        """`get` for async code (a WebSocket handler): waits in a worker thread."""
        return await asyncio.to_thread(self.get, timeout)

    def __iter__(self) -> Iterator[EventRecord]:
        while True:
            event = self.get()
            if event is not None:
                yield event

    def close(self) -> None:
        self._subscription.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
