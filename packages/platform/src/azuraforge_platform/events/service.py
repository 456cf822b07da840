"""Persist-then-publish, and gap-free, duplicate-free streams of an experiment's events."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar

from azuraforge_platform.events.base import EventBus
from azuraforge_platform.store import EventRecord, ExperimentStore

__all__ = ["EventService", "EventStream", "StreamCursor"]

T = TypeVar("T")


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
            if record.type == "status":  # lists of experiments follow this topic alone
                self.bus.publish_status(record)
        return records

    def stream(
        self, experiment_id: str, after: int = 0, *, poll_interval: float = 2.0
    ) -> EventStream:
        """Events with seq > `after`: the stored backlog, then live ones."""
        return EventStream(self, experiment_id, after, poll_interval=poll_interval)


class StreamCursor(Generic[T]):
    """The exactly-once bookkeeping of an event stream (sync here, asyncio in the API): the
    items queued for delivery and the highest seq delivered or queued. Items are whatever
    the stream hands out (events, or events with their JSON text)."""

    READ_LIMIT = 1000  # events per store read

    def __init__(self, after: int) -> None:
        self.pending: deque[T] = deque()
        self.cursor = after
        self.last_poll = 0.0  # when the store or the live path last proved up to date

    @property
    def last_seq(self) -> int:
        return self.cursor - len(self.pending)

    def add_backlog(self, batch: Sequence[EventRecord], wrap: Callable[[EventRecord], T]) -> bool:
        """Queue a store read after `cursor`; True while there may be more to read. A short
        batch ends the read, not an empty one: chasing a run that keeps writing would hold
        back the events already read (with 100 WebSocket clients reading at once, each read
        was slow enough for a client to chase for seconds)."""
        if batch:
            self.pending.extend(wrap(e) for e in batch)
            self.cursor = batch[-1].seq
        if len(batch) < self.READ_LIMIT:
            self.last_poll = time.monotonic()
            return False
        return True

    def is_old(self, seq: int) -> bool:
        return seq <= self.cursor  # delivered from the backlog or an earlier read

    def is_ahead(self, seq: int) -> bool:
        """Seqs commit in order: a live event past the next seq means the store holds the
        ones between (publishers raced, or a publish was lost), to be read from there."""
        return seq > self.cursor + 1

    def add_live(self, item: T, seq: int) -> None:
        self.pending.append(item)
        self.cursor = seq
        self.last_poll = time.monotonic()  # the live path works: poll only after silence


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
        self._state: StreamCursor[EventRecord] = StreamCursor(after)
        self._poll_interval = poll_interval
        self._fill()

    @property
    def last_seq(self) -> int:
        """Seq of the last event handed out (or queued): resume with `after=last_seq`."""
        return self._state.last_seq

    def _fill(self) -> None:
        state = self._state
        while state.add_backlog(
            self._store.events_after(self.experiment_id, state.cursor, limit=state.READ_LIMIT),
            lambda e: e,
        ):
            pass

    def _offer(self, event: EventRecord) -> None:
        state = self._state
        if state.is_old(event.seq):
            return
        if state.is_ahead(event.seq):
            self._fill()
            if state.is_old(event.seq):
                return
        state.add_live(event, event.seq)

    def get(self, timeout: float | None = None) -> EventRecord | None:
        """The next event, or None if none came within `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        state = self._state
        while not state.pending:
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return None
            if now - state.last_poll >= self._poll_interval:
                self._fill()
                continue
            wait = state.last_poll + self._poll_interval - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            event = self._subscription.get(timeout=max(wait, 0.0))
            if event is not None:
                self._offer(event)
        return state.pending.popleft()

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
