"""The WebSocket's event stream: backlog reads that do not chase a run which keeps writing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from azuraforge_platform.api.live import AsyncEventStream, LiveHub
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.store import ExperimentStore


def test_a_backlog_read_stops_at_what_was_stored_when_it_began(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each read lets the run store one more event (as a busy run does while reads queue
    up behind 100 clients). Reading until the store came back empty chased those events
    and held back everything already read, for seconds in the 100-client benchmark."""
    store = ExperimentStore(f"sqlite:///{tmp_path / 's.db'}", tmp_path)
    exp = store.create(pipeline_id="alpha", config={})
    store.append_events(exp.id, [("log", {"i": i}) for i in range(5)])
    reads = 0
    real_read = store.events_after

    def read_while_the_run_writes(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        nonlocal reads
        reads += 1
        batch = real_read(*args, **kwargs)  # type: ignore[arg-type]
        if reads <= 50:
            store.append_event(exp.id, "log", {"late": reads})
        return batch

    monkeypatch.setattr(store, "events_after", read_while_the_run_writes)

    async def scenario() -> list[int]:
        hub = LiveHub(EventService(store, InProcessEventBus()))
        stream = AsyncEventStream(store, await hub.subscribe(exp.id), exp.id, after=0)
        try:
            await stream.fill()
            return [(await stream.get(timeout=0.1))[0].seq for _ in range(5)]  # type: ignore[index]
        finally:
            stream.close()
            hub.close()

    assert asyncio.run(scenario()) == [1, 2, 3, 4, 5]
    assert reads == 1
    store.close()
