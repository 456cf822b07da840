"""In-process bus for the embedded mode (API and runner threads in one process)."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict

from azuraforge_platform.events.base import EventBus, Subscription
from azuraforge_platform.store import EventRecord

__all__ = ["InProcessEventBus"]

# Topics are experiment ids, or this key for the status topic (a tuple: no id can equal it).
_STATUS_TOPIC = ("status",)
_Topic = str | tuple[str]


class _QueueSubscription(Subscription):
    def __init__(self, bus: InProcessEventBus, topic: _Topic) -> None:
        self._bus = bus
        self.topic = topic
        self.queue: queue.SimpleQueue[EventRecord] = queue.SimpleQueue()

    def get(self, timeout: float | None = None) -> EventRecord | None:
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self._bus._remove(self)


class InProcessEventBus(EventBus):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: defaultdict[_Topic, set[_QueueSubscription]] = defaultdict(set)

    def _publish(self, topic: _Topic, event: EventRecord) -> None:
        with self._lock:
            targets = list(self._subscribers.get(topic, ()))
        for sub in targets:
            sub.queue.put(event)

    def _subscribe(self, topic: _Topic) -> Subscription:
        sub = _QueueSubscription(self, topic)
        with self._lock:
            self._subscribers[topic].add(sub)
        return sub

    def publish(self, event: EventRecord) -> None:
        self._publish(event.experiment_id, event)

    def subscribe(self, experiment_id: str) -> Subscription:
        return self._subscribe(experiment_id)

    def publish_status(self, event: EventRecord) -> None:
        self._publish(_STATUS_TOPIC, event)

    def subscribe_status(self) -> Subscription:
        return self._subscribe(_STATUS_TOPIC)

    def _remove(self, sub: _QueueSubscription) -> None:
        with self._lock:
            subs = self._subscribers.get(sub.topic)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[sub.topic]
