"""Live events behind the WebSockets: backlog reads that do not chase a run which keeps
writing, one shared store poll per experiment, and the status topic."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest

from azuraforge_platform.api.live import AsyncEventStream, LiveHub
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.store import ExperimentStatus, ExperimentStore


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


def test_quiet_clients_of_one_experiment_share_one_store_poll(
    store: ExperimentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twenty quiet sockets on one experiment: the store is read by the experiment's topic
    alone (one thread), and an event whose publish never happened reaches all twenty through
    that topic's one read."""
    clients = 20
    exp = store.create(pipeline_id="alpha", config={})
    store.append_events(exp.id, [("log", {"i": i}) for i in range(3)])
    reads: dict[str, list[str]] = {"get": [], "events_after": []}
    for name in reads:
        real = getattr(store, name)

        def counted(*args: object, _real=real, _name=name, **kwargs: object):  # type: ignore[no-untyped-def]
            reads[_name].append(threading.current_thread().name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(store, name, counted)

    async def scenario() -> None:
        hub = LiveHub(EventService(store, InProcessEventBus()), poll_interval=0.05)
        streams = [
            AsyncEventStream(store, await hub.subscribe(exp.id), exp.id, after=0)
            for _ in range(clients)
        ]
        try:
            for stream in streams:
                await stream.fill()
            for _ in range(3):
                backlog = await asyncio.gather(*(s.get(timeout=5) for s in streams))
                assert all(d is not None and d[0].type == "log" for d in backlog)
            # stored, never published (as when a worker dies between the two)
            store.append_event(exp.id, "unpublished", {})
            got = await asyncio.gather(*(s.get(timeout=30) for s in streams))
            assert [d[0].seq if d else None for d in got] == [4] * clients
            # stay quiet while the topic polls several more times
            polls_seen = len(reads["get"])
            deadline = asyncio.get_running_loop().time() + 60
            while len(reads["get"]) < polls_seen + 5:
                assert asyncio.get_running_loop().time() < deadline, "the topic stopped polling"
                quiet = await asyncio.gather(*(s.get(timeout=0.05) for s in streams))
                assert quiet == [None] * clients
        finally:
            for stream in streams:
                stream.close()
            hub.close()

    asyncio.run(scenario())
    topic_threads = {t for t in reads["get"]}
    assert len(topic_threads) == 1 and topic_threads.pop().startswith("azf-live-")
    topic = reads["get"][0]
    # each client read its own backlog once; the missing event was read once, for all
    assert len([t for t in reads["events_after"] if t != topic]) == clients
    assert len([t for t in reads["events_after"] if t == topic]) == 1


def test_the_status_topic_fans_out_status_events_only(store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="alpha", config={})
    events = EventService(store, InProcessEventBus())

    async def scenario() -> list[dict[str, object]]:
        hub = LiveHub(events)
        subscriptions = [await hub.subscribe_status() for _ in range(3)]
        try:
            events.emit(exp.id, "metrics", {"loss": 1.0})
            events.emit(exp.id, "status", {"status": "running", "attempt": 1})
            got = [await asyncio.wait_for(s.queue.get(), 10) for s in subscriptions]
            assert all(s.queue.empty() for s in subscriptions)
            assert len({id(text) for _, text in got}) == 1  # one JSON text for every client
            return [json.loads(text) for _, text in got]
        finally:
            for subscription in subscriptions:
                subscription.close()
            hub.close()

    messages = asyncio.run(scenario())
    assert messages[0] == messages[1] == messages[2]
    message = messages[0]
    assert (message["type"], message["id"], message["status"], message["seq"]) == (
        "status",
        exp.id,
        "running",
        2,
    )
    assert message["payload"] == {"status": "running", "attempt": 1}


def test_a_topic_notices_its_experiment_was_deleted_and_its_final_status(
    store: ExperimentStore,
) -> None:
    finished = store.create(pipeline_id="alpha", config={})
    store.transition(finished.id, "cancelled")
    doomed = store.create(pipeline_id="alpha", config={})

    async def scenario() -> None:
        hub = LiveHub(EventService(store, InProcessEventBus()), poll_interval=0.05)
        watching_finished = await hub.subscribe(finished.id)
        watching_doomed = await hub.subscribe(doomed.id)
        try:
            # known from the topic's first read: a quiet socket need not ask the store
            assert watching_finished.status is ExperimentStatus.cancelled
            assert watching_doomed.status is ExperimentStatus.queued
            assert not watching_doomed.gone
            store.delete(doomed.id)
            deadline = asyncio.get_running_loop().time() + 30
            while not watching_doomed.gone:
                assert asyncio.get_running_loop().time() < deadline, "the poll never noticed"
                await asyncio.sleep(0.02)
        finally:
            watching_finished.close()
            watching_doomed.close()
            hub.close()

    asyncio.run(scenario())
