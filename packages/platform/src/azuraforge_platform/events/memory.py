"""In-process bus for the embedded mode (API and runner threads in one process)."""

from __future__ import annotations

import queue
import threading
from collections import defaultdict

from azuraforge_platform.events.base import EventBus, Subscription
from azuraforge_platform.store import EventRecord

__all__ = ["InProcessEventBus"]


class _QueueSubscription(Subscription):
    def __init__(self, bus: InProcessEventBus, experiment_id: str) -> None:
        self._bus = bus
        self.experiment_id = experiment_id
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
        self._subscribers: defaultdict[str, set[_QueueSubscription]] = defaultdict(set)

    def publish(self, event: EventRecord) -> None:
        with self._lock:
            targets = list(self._subscribers.get(event.experiment_id, ()))
        for sub in targets:
            sub.queue.put(event)

    def subscribe(self, experiment_id: str) -> Subscription:
        sub = _QueueSubscription(self, experiment_id)
        with self._lock:
            self._subscribers[experiment_id].add(sub)
        return sub

    def _remove(self, sub: _QueueSubscription) -> None:
        with self._lock:
            subs = self._subscribers.get(sub.experiment_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[sub.experiment_id]
