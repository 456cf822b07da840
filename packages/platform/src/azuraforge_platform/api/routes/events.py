"""`WS /experiments/{id}/events?after=SEQ`: the stored backlog after SEQ, then live events.

Messages are JSON. Stored events carry `seq` (monotonic per experiment): a client that
reconnects with `after=<last seq it saw>` misses nothing and sees nothing twice. Control
messages have no `seq`: `{"type": "ping"}` every `ws_ping_seconds` of silence (so proxies keep
idle sockets), `{"type": "end", "status", "last_seq"}` before the server closes the socket
once the experiment has ended, and `{"type": "error", "error": {...}}` before closing with
code 4401 (no valid credential), 4404 (unknown experiment), 1008 (invalid query parameter, see
api/errors.py) or 1011 (internal error: the details go to the server log, never to the client).

Authentication: browsers offer the subprotocols `azuraforge.v1` and
`azuraforge.token.<token from POST /auth/ws-token>`; other clients may send
`Authorization: Bearer <API token>` on the handshake. A foreign Origin is refused before the
handshake completes (HostOriginMiddleware).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.api.deps import SQL_INT_MAX
from azuraforge_platform.api.errors import error_payload
from azuraforge_platform.api.live import AsyncEventStream
from azuraforge_platform.api.security import authenticate_websocket
from azuraforge_platform.api.services import Services
from azuraforge_platform.store import ExperimentNotFoundError, ExperimentStatus

router = APIRouter(prefix="/experiments", tags=["experiments"])
log = logging.getLogger(__name__)

FINAL = frozenset({ExperimentStatus.succeeded, ExperimentStatus.failed, ExperimentStatus.cancelled})


def _is_final_event(event_type: str, payload: dict[str, Any]) -> bool:
    return event_type == "status" and payload.get("status") in {s.value for s in FINAL}


async def _pump(websocket: WebSocket, services: Services, experiment_id: str, after: int) -> None:
    store = services.store
    try:
        record = await run_in_threadpool(store.get, experiment_id)
    except ExperimentNotFoundError as exc:
        await websocket.send_json({"type": "error", **error_payload(404, str(exc))})
        await websocket.close(code=4404)
        return
    subscription = await services.hub.subscribe(experiment_id)
    stream = AsyncEventStream(store, subscription, experiment_id, after)
    ping = services.settings.ws_ping_seconds
    try:
        await stream.fill()
        while True:
            delivery = await stream.get(timeout=ping)
            if delivery is not None:
                event, text = delivery
                await websocket.send_text(text)
                if _is_final_event(event.type, event.payload) and not stream.has_pending:
                    status = str(event.payload["status"])
                    break
                continue
            # quiet: is the run over (with every stored event delivered)?
            record = await run_in_threadpool(store.get, experiment_id)
            if record.status in FINAL:
                await stream.fill()
                if not stream.has_pending:
                    status = record.status.value
                    break
                continue
            await websocket.send_json({"type": "ping", "time": datetime.now(UTC).isoformat()})
        end = {"type": "end", "status": status, "last_seq": stream.last_seq}
        await websocket.send_json(end)
        await websocket.close(code=1000)
    finally:
        stream.close()


async def _drain(websocket: WebSocket) -> None:
    # Clients only listen; reading notices a disconnect while the pump is waiting.
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/{experiment_id}/events")
async def experiment_events(
    websocket: WebSocket,
    experiment_id: str,
    after: Annotated[int, Query(ge=0, le=SQL_INT_MAX, description="Last seq already seen")] = 0,
) -> None:
    services: Services = websocket.app.state.services
    principal, subprotocol = await authenticate_websocket(websocket)
    await websocket.accept(subprotocol=subprotocol)
    if principal is None:
        # accepted first so that a browser sees the reason (4401: sign in again)
        message = "sign in first: send a token from POST /auth/ws-token as the subprotocol"
        await websocket.send_json({"type": "error", **error_payload(401, message)})
        await websocket.close(code=4401)
        return
    pump = asyncio.create_task(_pump(websocket, services, experiment_id, after))
    drain = asyncio.create_task(_drain(websocket))
    try:
        done, _ = await asyncio.wait({pump, drain}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (pump, drain):
            task.cancel()
        for task in (pump, drain):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
    if pump in done and pump.exception() is not None:
        exc = pump.exception()
        if not isinstance(exc, WebSocketDisconnect | RuntimeError):
            log.error("event stream of %s failed", experiment_id, exc_info=exc)
            with contextlib.suppress(Exception):
                message = "internal error; see the server log"
                await websocket.send_json({"type": "error", **error_payload(500, message)})
                await websocket.close(code=1011, reason=message)
