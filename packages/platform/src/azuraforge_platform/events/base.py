"""The event bus interface: live delivery of already-persisted experiment events."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from azuraforge_platform.store import EventRecord

__all__ = ["EventBus", "Subscription"]


class Subscription(ABC):
    """Live events of one experiment, from the moment `EventBus.subscribe` returned."""

    @abstractmethod
    def get(self, timeout: float | None = None) -> EventRecord | None:
        """The next live event, or None after `timeout` seconds (None = wait forever)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class EventBus(ABC):
    """Publish/subscribe per experiment, plus one topic that carries every experiment's
    status events (for lists of experiments). Publishing never persists: events reach the bus
    only after the store gave them their `seq` (see `EventService`)."""

    @abstractmethod
    def publish(self, event: EventRecord) -> None: ...

    @abstractmethod
    def subscribe(self, experiment_id: str) -> Subscription:
        """Returns once the subscription is active: nothing published afterwards is missed."""

    @abstractmethod
    def publish_status(self, event: EventRecord) -> None:
        """Publish a status event (already published per experiment) on the status topic."""

    @abstractmethod
    def subscribe_status(self) -> Subscription:
        """The status events of all experiments, from the moment this returns."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""
