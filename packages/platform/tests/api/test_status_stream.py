"""`WS /api/v1/events/status`: every experiment's status changes, pushed to tables of
experiments, for signed-in callers only, from whichever process emitted them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from websockets.sync.client import connect

from azuraforge_platform.api import create_app
from azuraforge_platform.events import EventService, RedisEventBus
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStore

from .conftest import LiveServer, add_user, bearer, make_settings

API = "/api/v1"
STATUS = f"{API}/events/status"


@pytest.fixture
def settings(tmp_path: Path, trainer: str) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
def anonymous(settings: Settings) -> Iterator[TestClient]:
    """The app without workers; the client itself sends no credential."""
    add_user(settings, "admin")
    with TestClient(create_app(settings, run_jobs=False, serve_dashboard=False)) as client:
        yield client


def _next_status(ws: Any) -> dict[str, Any]:
    """The next status message, skipping pings."""
    while True:
        message: dict[str, Any] = ws.receive_json()
        if message["type"] != "ping":
            return message


def test_the_status_stream_needs_a_credential(anonymous: TestClient, settings: Settings) -> None:
    with anonymous.websocket_connect(STATUS) as ws:
        message = ws.receive_json()
        closing = ws.receive()
    assert message["type"] == "error" and message["error"]["code"] == "unauthenticated"
    assert closing["type"] == "websocket.close" and closing["code"] == 4401
    forged = ["azuraforge.v1", "azuraforge.token.not-a-token"]
    with anonymous.websocket_connect(STATUS, subprotocols=forged) as ws:
        assert ws.receive_json()["error"]["code"] == "unauthenticated"
    # a viewer may follow it: every signed-in user may list every experiment
    viewer = add_user(settings, "vera", role="viewer")
    token = anonymous.post(f"{API}/auth/ws-token", headers=bearer(viewer)).json()["token"]
    with anonymous.websocket_connect(
        STATUS, subprotocols=["azuraforge.v1", f"azuraforge.token.{token}"]
    ) as ws:
        assert ws.accepted_subprotocol == "azuraforge.v1"
        assert ws.receive_json() == {"type": "subscribed"}


@pytest.mark.timeout(120)  # a message that never comes would block receive_json for good
def test_every_status_event_reaches_the_stream(
    anonymous: TestClient, settings: Settings, trainer: str
) -> None:
    services = anonymous.app.state.services  # type: ignore[attr-defined]
    admin = bearer(add_user(settings, "admin"))
    with anonymous.websocket_connect(STATUS, headers=admin) as ws:
        assert ws.receive_json() == {"type": "subscribed"}
        # a new experiment from the API is announced as queued
        created = anonymous.post(
            f"{API}/experiments", json={"pipeline_id": trainer, "config": {}}, headers=admin
        )
        assert created.status_code == 201, created.text
        exp_id = created.json()["id"]
        queued = _next_status(ws)
        assert (queued["type"], queued["id"], queued["status"]) == ("status", exp_id, "queued")
        # what a worker emits: only its status events come through
        services.events.emit(exp_id, "metrics", {"loss": 0.5, "step": 1})
        services.events.emit(exp_id, "status", {"status": "running", "attempt": 1})
        running = _next_status(ws)
        assert (running["id"], running["status"], running["payload"]["attempt"]) == (
            exp_id,
            "running",
            1,
        )
        assert running["seq"] == queued["seq"] + 2  # the metrics event came in between
        cancelled = anonymous.post(
            f"{API}/experiments/{exp_id}/cancel", headers={**admin, "Origin": "http://testserver"}
        )
        assert cancelled.status_code == 200, cancelled.text
        # (the store still had it queued: a queued run is cancelled at once)
        assert _next_status(ws)["status"] == cancelled.json()["status"] == "cancelled"
    record = anonymous.get(f"{API}/experiments", headers=admin).json()["items"][0]
    assert record["id"] == exp_id and record["last_event_seq"] == running["seq"] + 1


@pytest.mark.integration
def test_status_changes_from_another_process_arrive_through_redis(
    tmp_path: Path, trainer: str, redis_url: str, channel_prefix: str
) -> None:
    settings = make_settings(tmp_path, redis_url=redis_url, event_channel_prefix=channel_prefix)
    with LiveServer(settings, run_jobs=False) as server:
        # a worker elsewhere: its own store connection and its own bus
        store = ExperimentStore.from_settings(settings)
        bus = RedisEventBus(redis_url, prefix=channel_prefix)
        try:
            exp = store.create(pipeline_id=trainer, config={})
            url = f"ws://127.0.0.1:{server.port}{STATUS}"
            with connect(url, open_timeout=30, additional_headers=server.headers) as ws:
                assert json.loads(ws.recv(timeout=30)) == {"type": "subscribed"}
                EventService(store, bus).emit(exp.id, "status", {"status": "running"})
                while (message := json.loads(ws.recv(timeout=30)))["type"] == "ping":
                    pass
            assert (message["id"], message["status"], message["seq"]) == (exp.id, "running", 1)
        finally:
            bus.close()
            store.close()
