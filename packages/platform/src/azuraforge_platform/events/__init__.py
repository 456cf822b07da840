"""Experiment events: persisted first (the store assigns `seq`), then published on a bus."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from azuraforge_platform.events.base import EventBus, Subscription
from azuraforge_platform.events.memory import InProcessEventBus
from azuraforge_platform.events.service import EventService, EventStream

if TYPE_CHECKING:
    from azuraforge_platform.events.redis import RedisEventBus

__all__ = [
    "EventBus",
    "EventService",
    "EventStream",
    "InProcessEventBus",
    "RedisEventBus",
    "Subscription",
    "make_bus",
]


def make_bus(redis_url: str | None, *, prefix: str = "azuraforge") -> EventBus:
    """Redis when a URL is configured (distributed mode), in-process otherwise (embedded)."""
    if not redis_url:
        return InProcessEventBus()
    from azuraforge_platform.events.redis import RedisEventBus

    return RedisEventBus(redis_url, prefix=prefix)


def __getattr__(name: str) -> Any:
    # redis-py is imported only where Redis is used: embedded workers start faster.
    if name == "RedisEventBus":
        from azuraforge_platform.events.redis import RedisEventBus

        return RedisEventBus
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
