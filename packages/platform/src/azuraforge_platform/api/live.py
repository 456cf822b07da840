"""Live events for WebSockets: one bus subscription per experiment per API process, fanned
out to any number of asyncio clients (a thread per client would not scale to hundreds)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time

from starlette.concurrency import run_in_threadpool

from azuraforge_platform.events import EventService, Subscription
from azuraforge_platform.events.service import StreamCursor
from azuraforge_platform.store import EventRecord, ExperimentStore

__all__ = ["AsyncEventStream", "LiveHub", "LiveSubscription"]

log = logging.getLogger(__name__)

# Events travel with their JSON text, made once per event and not once per client.
Delivery = tuple[EventRecord, str]
_Listener = tuple[asyncio.AbstractEventLoop, "asyncio.Queue[Delivery]"]


def _deliver(queues: list[asyncio.Queue[Delivery]], delivery: Delivery) -> None:
    for queue in queues:
        queue.put_nowait(delivery)


class _Topic:
    """The subscription thread of one experiment: bus -> every registered asyncio queue."""

    def __init__(self, events: EventService, experiment_id: str) -> None:
        self.events = events
        self.experiment_id = experiment_id
        self.listeners: set[_Listener] = set()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.thread = threading.Thread(
            target=self._run, name=f"azf-live-{experiment_id[:8]}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        first = True
        while not self.stopping.is_set():
            try:
                subscription = self.events.bus.subscribe(self.experiment_id)
            except BaseException as exc:
                if first:  # reported to the waiting clients
                    self.error = exc
                    self.ready.set()
                    return
                log.warning("re-subscribing to %s failed: %s", self.experiment_id, exc)
                self.stopping.wait(1.0)
                continue
            first = False
            self.ready.set()
            try:
                self._forward(subscription)
            except Exception as exc:
                # Clients keep receiving from the store (gap fill and polling) meanwhile.
                if not self.stopping.is_set():
                    log.warning("live subscription to %s broke (%s); re-subscribing",
                                self.experiment_id, exc)  # fmt: skip
                    self.stopping.wait(0.2)
            finally:
                with contextlib.suppress(Exception):
                    subscription.close()

    def _forward(self, subscription: Subscription) -> None:
        while not self.stopping.is_set():
            event = subscription.get(timeout=0.5)
            if event is None:
                continue
            delivery = (event, json.dumps(event.to_dict()))
            by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Queue[Delivery]]] = {}
            with self.lock:
                for loop, queue in self.listeners:
                    by_loop.setdefault(loop, []).append(queue)
            # one wake-up per event loop, not one per client
            for loop, queues in by_loop.items():
                with contextlib.suppress(RuntimeError):  # that loop has closed
                    loop.call_soon_threadsafe(_deliver, queues, delivery)


class LiveSubscription:
    def __init__(self, hub: LiveHub, topic: _Topic, listener: _Listener) -> None:
        self._hub = hub
        self._topic = topic
        self._listener = listener
        self.queue = listener[1]

    def close(self) -> None:
        self._hub._remove(self._topic, self._listener)


class LiveHub:
    def __init__(self, events: EventService) -> None:
        self.events = events
        self._topics: dict[str, _Topic] = {}
        self._lock = threading.Lock()

    async def subscribe(self, experiment_id: str) -> LiveSubscription:
        """Returns once the bus subscription is active: nothing published later is missed."""
        listener: _Listener = (asyncio.get_running_loop(), asyncio.Queue())
        with self._lock:
            topic = self._topics.get(experiment_id)
            if topic is None or topic.stopping.is_set():
                topic = self._topics[experiment_id] = _Topic(self.events, experiment_id)
            with topic.lock:
                topic.listeners.add(listener)
        subscription = LiveSubscription(self, topic, listener)
        if not topic.ready.is_set():
            await run_in_threadpool(topic.ready.wait, 30.0)
        if topic.error is not None or not topic.ready.is_set():
            subscription.close()
            raise ConnectionError(f"cannot subscribe to live events: {topic.error}")
        return subscription

    def _remove(self, topic: _Topic, listener: _Listener) -> None:
        with self._lock, topic.lock:
            topic.listeners.discard(listener)
            if not topic.listeners:
                topic.stopping.set()
                if self._topics.get(topic.experiment_id) is topic:
                    del self._topics[topic.experiment_id]

    def close(self) -> None:
        with self._lock:
            topics = list(self._topics.values())
            self._topics.clear()
        for topic in topics:
            topic.stopping.set()
        for topic in topics:  # before the bus closes under them
            topic.thread.join(5)


class AsyncEventStream:
    """`EventStream` for asyncio: the stored backlog after `after`, then live events, each
    exactly once and in seq order (gaps are filled from the store, which commits seqs in
    order; a quiet stream re-reads the store every `poll_interval`)."""

    def __init__(
        self,
        store: ExperimentStore,
        subscription: LiveSubscription,
        experiment_id: str,
        after: int,
        *,
        poll_interval: float = 2.0,
    ) -> None:
        self._store = store
        self._subscription = subscription
        self.experiment_id = experiment_id
        self._state: StreamCursor[Delivery] = StreamCursor(after)
        self._poll_interval = poll_interval

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
            lambda e: (e, json.dumps(e.to_dict())),
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
            now = time.monotonic()
            if now >= deadline:
                return None
            if now - state.last_poll >= self._poll_interval:
                await self.fill()
                continue
            wait = min(state.last_poll + self._poll_interval, deadline) - now
            try:
                delivery = await asyncio.wait_for(queue.get(), max(wait, 0.001))
            except TimeoutError:
                continue
            await self._offer(delivery)
        return state.pending.popleft()

    def close(self) -> None:
        self._subscription.close()
