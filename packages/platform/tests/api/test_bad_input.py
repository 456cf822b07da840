"""Bad input is a 4xx naming the problem, never a 5xx: integers past what a database column
holds, crafted pagination cursors, invalid WebSocket query parameters; and an internal error
on the event stream reaches the client as a generic message, its details only in the log."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from azuraforge_platform.store import ExperimentStore

from .conftest import LiveServer

API = "/api/v1"
INT64_MAX = 2**63 - 1


def _store(api: TestClient) -> ExperimentStore:
    store: ExperimentStore = api.app.state.services.store  # type: ignore[attr-defined]
    return store


def _field_error(response: Any, field: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert "Traceback" not in response.text
    assert [f["path"] for f in error["fields"]] == [field], error
    assert field in error["message"]
    return str(error["fields"][0]["message"])


@pytest.mark.parametrize(
    ("route", "param"),
    [("events", "after"), ("logs", "after_id"), ("events", "limit"), ("logs", "limit")],
)
def test_integer_query_parameters_past_64_bits_are_422_naming_the_field(
    api: TestClient, route: str, param: str
) -> None:
    exp = _store(api).create(pipeline_id="anything", config={})
    url = f"{API}/experiments/{exp.id}/{route}"
    for value in (2**63, 2**64 + 5, 10**30):
        _field_error(api.get(url, params={param: value}), f"query.{param}")
    if param.startswith("after"):  # the largest 64-bit value is fine: there is nothing after it
        assert api.get(url, params={param: INT64_MAX}).status_code == 200


def test_list_offset_and_limit_past_64_bits_are_422(api: TestClient) -> None:
    for param in ("offset", "limit"):
        _field_error(api.get(f"{API}/experiments", params={param: 2**63}), f"query.{param}")


def _cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("sort", "value", "last_id"),
    [
        ("created_at", "2026-01-01T00:00:00+00:00", 2**64),  # an id past 64 bits
        ("created_at", 5, "abc"),  # not a date string
        ("created_at", "yesterday", "abc"),
        ("name", 2**64, "abc"),
        ("name", {"a": 1}, "abc"),  # not something SQL can bind
        ("status", "queued", None),
    ],
)
def test_crafted_cursors_are_400_not_500(
    api: TestClient, sort: str, value: Any, last_id: Any
) -> None:
    _store(api).create(pipeline_id="anything", config={}, name="one")
    cursor = _cursor(sort, False, value, last_id)
    response = api.get(
        f"{API}/experiments", params={"cursor": cursor, "sort": sort, "order": "asc"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"] == "malformed pagination cursor"


@pytest.mark.parametrize(
    ("after", "problem"),
    [("-1", "greater than or equal to 0"), ("abc", "valid integer"), (str(2**63), "less than")],
)
def test_websocket_with_a_bad_after_closes_with_1008_naming_the_field(
    live: LiveServer, after: str, problem: str
) -> None:
    url = f"ws://127.0.0.1:{live.port}{API}/experiments/abc123/events?after={after}"
    # A real handshake: it used to answer HTTP 500 (or, past 64 bits, close with 1011).
    with connect(url, open_timeout=30) as ws:
        message = json.loads(ws.recv(timeout=30))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=30)
    assert message["type"] == "error" and message["error"]["code"] == "validation_error"
    assert [f["path"] for f in message["error"]["fields"]] == ["query.after"]
    assert problem in message["error"]["fields"][0]["message"]
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    assert "query.after" in closed.value.rcvd.reason and problem in closed.value.rcvd.reason


def test_an_internal_error_on_the_event_stream_sends_no_details(
    api: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store(api)
    exp = store.create(pipeline_id="anything", config={})
    with store.engine.begin() as conn:  # a real database failure on the backlog read
        conn.execute(text("ALTER TABLE events RENAME TO events_gone"))
    with (
        caplog.at_level(logging.ERROR),
        api.websocket_connect(f"{API}/experiments/{exp.id}/events") as ws,
    ):
        message = ws.receive_json()
        closing = ws.receive()
    assert message == {
        "type": "error",
        "error": {
            "code": "internal_error",
            "message": "internal error; see the server log",
            "fields": [],
        },
    }
    assert closing["type"] == "websocket.close" and closing["code"] == 1011
    assert "events" not in closing.get("reason", "")
    # the details are in the server log instead
    assert any("no such table" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
