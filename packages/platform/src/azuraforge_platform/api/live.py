"""Live events for WebSockets: one bus subscription per topic per API process, fanned out to
any number of asyncio clients (a thread per client would not scale to hundreds).

Topics are an experiment's events, and the status topic (every experiment's status events,
for tables of experiments). An experiment's topic also owns the store poll that catches
events whose publish never happened: when the topic was quiet for `poll_interval`, it reads
the experiment once and, only if the store is ahead of what the topic saw, the missing
events, and hands them to every client like live ones. A thousand quiet sockets on one
experiment cost one read per interval, not a thousand."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence

from starlette.concurrency import run_in_threadpool

from azuraforge_platform.events import EventService, Subscription
from azuraforge_platform.events.service import StreamCursor
from azuraforge_platform.store import (
    EventRecord,
    ExperimentNotFoundError,
    ExperimentStatus,
    ExperimentStore,
)

__all__ = ["AsyncEventStream", "LiveHub", "LiveSubscription", "status_message"]

log = logging.getLogger(__name__)

# Events travel with their JSON text, made once per event and not once per client.
Delivery = tuple[EventRecord, str]
_Listener = tuple[asyncio.AbstractEventLoop, "asyncio.Queue[Delivery]"]

FINAL = frozenset({ExperimentStatus.succeeded, ExperimentStatus.failed, ExperimentStatus.cancelled})


def _event_json(event: EventRecord) -> str:
    return json.dumps(event.to_dict())


def status_message(event: EventRecord) -> str:
    """A status event as the status stream sends it: the experiment's id and new status on
    top (all a table needs), the seq to drop stale ones, the payload for the rest."""
    return json.dumps(
        {
            "type": "status",
            "id": event.experiment_id,
            "status": event.payload.get("status"),
            "seq": event.seq,
            "time": event.time.isoformat(),
            "payload": event.payload,
        }
    )


def _deliver(queues: list[asyncio.Queue[Delivery]], deliveries: Sequence[Delivery]) -> None:
    for queue in queues:
        for delivery in deliveries:
            queue.put_nowait(delivery)


class _Topic:
    """The subscription thread of one topic: bus -> every registered asyncio queue."""

    poll_interval: float | None = None  # a topic with a store behind it polls when quiet

    def __init__(
        self,
        name: str,
        subscribe: Callable[[], Subscription],
        render: Callable[[EventRecord], str] = _event_json,
    ) -> None:
        self.name = name
        self._subscribe = subscribe
        self._render = render
        self.listeners: set[_Listener] = set()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, name=f"azf-live-{name[:8]}", daemon=True)

    def start(self) -> _Topic:
        self.thread.start()
        return self

    def _started(self) -> None:
        """Runs once, after the first subscription is active (before any client is told)."""

    def _seen(self, event: EventRecord) -> None:
        """Every event the bus delivered."""

    def _poll(self) -> None:
        """The topic was quiet for `poll_interval`."""

    def _run(self) -> None:
        first = True
        while not self.stopping.is_set():
            try:
                subscription = self._subscribe()
            except BaseException as exc:
                if first:  # reported to the waiting clients
                    self.error = exc
                    self.ready.set()
                    return
                log.warning("re-subscribing to %s failed: %s", self.name, exc)
                self.stopping.wait(1.0)
                continue
            try:
                if first:
                    try:
                        self._started()
                    except BaseException as exc:
                        self.error = exc
                        self.ready.set()
                        return
                    self.ready.set()
                # after a broken subscription, look at once for what was published meanwhile
                self._forward(subscription, poll_now=not first)
            except Exception as exc:
                # Clients keep receiving from the store (gap fill and polling) meanwhile.
                if not self.stopping.is_set():
                    log.warning("live subscription to %s broke (%s); re-subscribing",
                                self.name, exc)  # fmt: skip
                    self.stopping.wait(0.2)
            finally:
                first = False
                with contextlib.suppress(Exception):
                    subscription.close()

    def _forward(self, subscription: Subscription, *, poll_now: bool) -> None:
        interval = self.poll_interval
        last_activity = 0.0 if poll_now else time.monotonic()
        while not self.stopping.is_set():
            wait = 0.5
            if interval is not None:
                wait = min(wait, max(0.0, last_activity + interval - time.monotonic()))
            event = subscription.get(timeout=wait)
            if event is not None:
                last_activity = time.monotonic()
                self._seen(event)
                self.broadcast([event])
            elif interval is not None and time.monotonic() - last_activity >= interval:
                self._poll()
                last_activity = time.monotonic()

    def broadcast(self, events: Sequence[EventRecord]) -> None:
        """Hands `events` to every client registered now. Callers read from the store BEFORE
        calling this: a client that registers after this snapshot reads its backlog later,
        so whatever was stored before the read reaches it that way."""
        if not events:
            return
        deliveries = [(e, self._render(e)) for e in events]
        by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Queue[Delivery]]] = {}
        with self.lock:
            for loop, queue in self.listeners:
                by_loop.setdefault(loop, []).append(queue)
        # one wake-up per event loop, not one per client
        for loop, queues in by_loop.items():
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_deliver, queues, deliveries)


class _ExperimentTopic(_Topic):
    """One experiment's events, and the one store poll its clients share: what the store
    holds past the highest seq this topic saw is read and handed out when the bus was quiet.

    Seqs commit in order and are published after their commit, so everything up to
    `known_seq` was stored before the topic saw it: a client's own backlog read (done after
    it registers) covers it. Past `known_seq`, a client gets each event from the bus or this
    poll; a live event that skips ahead makes the client read the gap itself."""

    def __init__(self, events: EventService, experiment_id: str, poll_interval: float) -> None:
        super().__init__(experiment_id, lambda: events.bus.subscribe(experiment_id))
        self.store = events.store
        self.experiment_id = experiment_id
        self.poll_interval = poll_interval
        self.known_seq = 0
        self.status: ExperimentStatus | None = None  # as of the last poll or status event
        self.gone = False  # deleted while clients watched
        self.polls = 0

    def _note_status(self, status: ExperimentStatus) -> None:
        if self.status not in FINAL:  # final states never change: an old read cannot undo one
            self.status = status

    def _started(self) -> None:
        # after subscribing: nothing stored later can be missed
        record = self.store.get(self.experiment_id)
        self.known_seq = record.last_event_seq
        self._note_status(record.status)

    def _seen(self, event: EventRecord) -> None:
        self.known_seq = max(self.known_seq, event.seq)
        if event.type == "status":
            with contextlib.suppress(ValueError):
                self._note_status(ExperimentStatus(str(event.payload.get("status"))))

    def _poll(self) -> None:
        self.polls += 1
        try:
            record = self.store.get(self.experiment_id)
            while record.last_event_seq > self.known_seq:  # stored, but never published
                batch = self.store.events_after(
                    self.experiment_id, self.known_seq, limit=StreamCursor.READ_LIMIT
                )
                if not batch:
                    break
                for event in batch:
                    self._seen(event)
                self.broadcast(batch)
                if len(batch) < StreamCursor.READ_LIMIT:
                    break
            self._note_status(record.status)
        except ExperimentNotFoundError:
            self.gone = True
        except Exception as exc:  # the store is down: clients wait, the next poll retries
            log.warning("polling the events of %s failed: %s", self.experiment_id, exc)


class LiveSubscription:
    def __init__(self, hub: LiveHub, key: str | None, topic: _Topic, listener: _Listener) -> None:
        self._hub = hub
        self._key = key
        self._topic = topic
        self._listener = listener
        self.queue = listener[1]

    @property
    def status(self) -> ExperimentStatus | None:
        """The experiment's status as its topic last saw it (None for the status topic)."""
        return self._topic.status if isinstance(self._topic, _ExperimentTopic) else None

    @property
    def gone(self) -> bool:
        """The experiment was deleted while this subscription was open."""
        return isinstance(self._topic, _ExperimentTopic) and self._topic.gone

    def close(self) -> None:
        self._hub._remove(self._key, self._topic, self._listener)


class LiveHub:
    """The API process's topics: one per watched experiment, and the status topic (key
    None). A topic lives while it has clients."""

    def __init__(self, events: EventService, *, poll_interval: float = 2.0) -> None:
        self.events = events
        self.poll_interval = poll_interval
        self._topics: dict[str | None, _Topic] = {}
        self._retired: list[_Topic] = []  # stopped topics whose threads may still run
        self._lock = threading.Lock()

    def _topic(self, key: str | None) -> _Topic:
        if key is None:
            return _Topic("status", self.events.bus.subscribe_status, status_message)
        return _ExperimentTopic(self.events, key, self.poll_interval)

    async def _subscribe(self, key: str | None) -> LiveSubscription:
        listener: _Listener = (asyncio.get_running_loop(), asyncio.Queue())
        with self._lock:
            topic = self._topics.get(key)
            if topic is None or topic.stopping.is_set():
                topic = self._topics[key] = self._topic(key).start()
            with topic.lock:
                topic.listeners.add(listener)
        subscription = LiveSubscription(self, key, topic, listener)
        if not topic.ready.is_set():
            await run_in_threadpool(topic.ready.wait, 30.0)
        if topic.error is not None or not topic.ready.is_set():
            subscription.close()
            raise ConnectionError(f"cannot subscribe to live events: {topic.error}")
        return subscription

    async def subscribe(self, experiment_id: str) -> LiveSubscription:
        """Returns once the bus subscription is active: nothing published later is missed."""
        return await self._subscribe(experiment_id)

    async def subscribe_status(self) -> LiveSubscription:
        """Every experiment's status events from now on (their JSON is `status_message`)."""
        return await self._subscribe(None)

    def _remove(self, key: str | None, topic: _Topic, listener: _Listener) -> None:
        with self._lock, topic.lock:
            topic.listeners.discard(listener)
            if not topic.listeners:
                topic.stopping.set()
                if self._topics.get(key) is topic:
                    del self._topics[key]
                # its thread may be in the middle of a store read: close() waits for it
                self._retired = [t for t in self._retired if t.thread.is_alive()] + [topic]

    def close(self) -> None:
        with self._lock:
            topics = list(self._topics.values()) + self._retired
            self._topics.clear()
            self._retired = []
        for topic in topics:
            topic.stopping.set()
        for topic in topics:  # before the bus and the store close under them
            topic.thread.join(5)


class AsyncEventStream:
    """`EventStream` for asyncio: the stored backlog after `after`, then live events, each
    exactly once and in seq order. Gaps are filled from the store (which commits seqs in
    order); events whose publish never happened come from the topic's shared poll, so a
    quiet stream reads nothing itself."""

    def __init__(
        self,
        store: ExperimentStore,
        subscription: LiveSubscription,
        experiment_id: str,
        after: int,
    ) -> None:
        self._store = store
        self._subscription = subscription
        self.experiment_id = experiment_id
        self._state: StreamCursor[Delivery] = StreamCursor(after)

    @property
    def last_seq(self) -> int:
        return self._state.last_seq

    @property
    def has_pending(self) -> bool:
        return bool(self._state.pending)

    async def fill(self) -> None:
        """Read what the store holds after the cursor (see `StreamCursor.add_backlog`)."""
        state = self._state
        while state.add_backlog(
            await run_in_threadpool(
                self._store.events_after,
                self.experiment_id,
                state.cursor,
                limit=state.READ_LIMIT,
            ),
            lambda e: (e, _event_json(e)),
        ):
            pass

    async def _offer(self, delivery: Delivery) -> None:
        state, seq = self._state, delivery[0].seq
        if state.is_old(seq):
            return
        if state.is_ahead(seq):
            await self.fill()
            if state.is_old(seq):
                return
        state.add_live(delivery, seq)

    async def get(self, timeout: float) -> Delivery | None:
        """The next event and its JSON text, or None after `timeout` seconds of silence."""
        queue, state = self._subscription.queue, self._state
        while not state.pending and not queue.empty():  # fast path: no timer needed
            await self._offer(queue.get_nowait())
        deadline = time.monotonic() + timeout
        while not state.pending:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                delivery = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                return None
            await self._offer(delivery)
        return state.pending.popleft()

    def close(self) -> None:
        self._subscription.close()
