"""Events: persisted with a seq, published, and streamed as backlog + live with no gap/duplicate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from azuraforge_platform.events import (
    EventBus,
    EventService,
    InProcessEventBus,
    RedisEventBus,
    make_bus,
)
from azuraforge_platform.store import EventRecord, ExperimentStore


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.integration)])
def bus(request: pytest.FixtureRequest) -> Iterator[EventBus]:
    if request.param == "memory":
        b: EventBus = InProcessEventBus()
    else:
        url = request.getfixturevalue("redis_url")
        b = RedisEventBus(url, prefix=request.getfixturevalue("channel_prefix"))
    yield b
    b.close()


def _drain(stream, until_seq: int, timeout: float = 20.0) -> list[EventRecord]:  # type: ignore[no-untyped-def]
    got: list[EventRecord] = []
    deadline = time.monotonic() + timeout
    while not got or got[-1].seq < until_seq:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"stream stalled after {[e.seq for e in got]}"
        event = stream.get(timeout=remaining)
        if event is not None:
            got.append(event)
    return got


def test_live_subscriber_sees_published_events(bus: EventBus, store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    service = EventService(store, bus)
    with bus.subscribe(exp.id) as sub:
        sent = service.emit(exp.id, "metrics", {"loss": 0.5, "step": 3})
        got = sub.get(timeout=5)
    assert got == sent and got.seq == 1 and got.payload == {"loss": 0.5, "step": 3}
    assert store.events_after(exp.id) == [sent]


def test_late_subscriber_gets_backlog_then_live(bus: EventBus, store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    other = store.create(pipeline_id="p", config={})
    service = EventService(store, bus)
    for i in range(10):
        service.emit(exp.id, "tick", {"i": i})
    service.emit(other.id, "noise", {})  # another experiment's events never leak in

    started = threading.Event()

    def producer() -> None:
        started.wait()
        for i in range(10, 40):
            service.emit(exp.id, "tick", {"i": i})

    thread = threading.Thread(target=producer)
    thread.start()
    # the producer races with the backlog read: that is the interesting window
    started.set()
    with service.stream(exp.id, after=4, poll_interval=30) as stream:
        got = _drain(stream, until_seq=40)
        assert stream.get(timeout=0.2) is None
    thread.join()
    assert [e.seq for e in got] == list(range(5, 41))
    assert [e.payload["i"] for e in got] == list(range(4, 40))


def test_stream_fills_gaps_from_the_store(bus: EventBus, store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    service = EventService(store, bus)
    with service.stream(exp.id, after=0, poll_interval=30) as stream:
        # seq 1-2 were stored but their publish never happened (a worker died in between)
        store.append_events(exp.id, [("a", {}), ("b", {})])
        service.emit(exp.id, "c", {})
        got = _drain(stream, until_seq=3)
        assert [e.type for e in got] == ["a", "b", "c"]
        # out-of-order publishes from racing publishers: 5 arrives before 4
        e4, e5 = store.append_events(exp.id, [("d", {}), ("e", {})])
        bus.publish(e5)
        bus.publish(e4)
        got = _drain(stream, until_seq=5)
        assert [e.seq for e in got] == [4, 5]
        assert stream.last_seq == 5


def test_quiet_stream_polls_the_store(bus: EventBus, store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    service = EventService(store, bus)
    with service.stream(exp.id, poll_interval=0.1) as stream:
        store.append_event(exp.id, "unpublished", {})
        event = stream.get(timeout=5)
    assert event is not None and event.type == "unpublished"


def test_status_events_also_reach_the_status_topic(bus: EventBus, store: ExperimentStore) -> None:
    first = store.create(pipeline_id="p", config={})
    second = store.create(pipeline_id="p", config={})
    service = EventService(store, bus)
    with bus.subscribe_status() as statuses, bus.subscribe(first.id) as own:
        service.emit(first.id, "metrics", {"loss": 1.0})
        running = service.emit(first.id, "status", {"status": "running"})
        service.emit_many(second.id, [("log", {}), ("status", {"status": "failed", "error": "x"})])
        got = [statuses.get(timeout=5), statuses.get(timeout=5)]
        assert statuses.get(timeout=0.2) is None  # only status events, nothing else
        # the experiment's own topic still gets its status event too
        assert [own.get(timeout=5), own.get(timeout=5)][1] == running
    assert got[0] == running
    assert got[1] is not None and got[1].experiment_id == second.id
    assert (got[1].seq, got[1].payload) == (2, {"status": "failed", "error": "x"})


def test_make_bus_picks_mode() -> None:
    assert isinstance(make_bus(None), InProcessEventBus)
    assert isinstance(make_bus("redis://127.0.0.1:6379/0"), RedisEventBus)


def test_async_get_for_websocket_handlers(store: ExperimentStore) -> None:
    import asyncio

    exp = store.create(pipeline_id="p", config={})
    service = EventService(store, InProcessEventBus())
    service.emit(exp.id, "a", {})

    async def consume() -> list[int]:
        with service.stream(exp.id) as stream:
            first = await stream.aget(timeout=5)
            asyncio.get_running_loop().call_later(0.05, service.emit, exp.id, "b", {})
            second = await stream.aget(timeout=5)
            return [e.seq for e in (first, second) if e is not None]

    assert asyncio.run(consume()) == [1, 2]
