"""Redis pub/sub bus for the distributed mode (API and workers in separate processes)."""

from __future__ import annotations

import json
import time
from typing import Any

import redis as redis_lib

from azuraforge_platform.events.base import EventBus, Subscription
from azuraforge_platform.store import EventRecord

__all__ = ["RedisEventBus"]


class _RedisSubscription(Subscription):
    def __init__(self, client: redis_lib.Redis, channel: str, confirm_timeout: float) -> None:
        self._pubsub = client.pubsub()
        self._pubsub.subscribe(channel)
        # Wait for Redis to confirm: only then is every later PUBLISH guaranteed to reach us.
        deadline = time.monotonic() + confirm_timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self._pubsub.close()
                raise TimeoutError(f"Redis did not confirm the subscription to {channel}")
            message = self._pubsub.get_message(timeout=remaining)
            if message is not None and message["type"] == "subscribe":
                break

    def get(self, timeout: float | None = None) -> EventRecord | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = 3600.0 if deadline is None else max(0.0, deadline - time.monotonic())
            message: dict[str, Any] | None = self._pubsub.get_message(timeout=wait)
            if message is not None and message["type"] == "message":
                return EventRecord.from_dict(json.loads(message["data"]))
            if deadline is not None and time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        self._pubsub.close()


class RedisEventBus(EventBus):
    def __init__(self, url: str, *, prefix: str = "azuraforge", confirm_timeout: float = 5.0):
        self._client = redis_lib.Redis.from_url(url)
        self._prefix = prefix
        self._confirm_timeout = confirm_timeout

    def channel(self, experiment_id: str) -> str:
        return f"{self._prefix}:events:{experiment_id}"

    @property
    def status_channel(self) -> str:
        """Every experiment's status events (no experiment's channel can have this name)."""
        return f"{self._prefix}:status"

    def publish(self, event: EventRecord) -> None:
        self._client.publish(self.channel(event.experiment_id), json.dumps(event.to_dict()))

    def subscribe(self, experiment_id: str) -> Subscription:
        return _RedisSubscription(self._client, self.channel(experiment_id), self._confirm_timeout)

    def publish_status(self, event: EventRecord) -> None:
        self._client.publish(self.status_channel, json.dumps(event.to_dict()))

    def subscribe_status(self) -> Subscription:
        return _RedisSubscription(self._client, self.status_channel, self._confirm_timeout)

    def close(self) -> None:
        self._client.close()
