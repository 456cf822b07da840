"""The two WebSockets: an experiment's events, and every experiment's status changes.

`WS /experiments/{id}/events?after=SEQ`: the stored backlog after SEQ, then live events.
Messages are JSON. Stored events carry `seq` (monotonic per experiment): a client that
reconnects with `after=<last seq it saw>` misses nothing and sees nothing twice. Control
messages have no `seq`: `{"type": "ping"}` every `ws_ping_seconds` of silence (so proxies keep
idle sockets), `{"type": "end", "status", "last_seq"}` before the server closes the socket
once the experiment has ended, and `{"type": "error", "error": {...}}` before closing with
code 4401 (no valid credential), 4404 (unknown or deleted experiment), 1008 (invalid query
parameter, see api/errors.py) or 1011 (internal error: the details go to the server log,
never to the client).

`WS /events/status`: every experiment's status changes as they happen, for tables of
experiments: `{"type": "subscribed"}` once the subscription is active (refetch the table
then: nothing after it is missed), then `{"type": "status", "id", "status", "seq", "time",
"payload"}` per status event (drop one whose seq is not above the row's `last_event_seq`),
and pings as above. Delivery is live only (no backlog): a client that reconnects refetches.
Any signed-in user may follow it, as any signed-in user may list every experiment.

Authentication: browsers offer the subprotocols `azuraforge.v1` and
`azuraforge.token.<token from POST /auth/ws-token>`; other clients may send
`Authorization: Bearer <API token>` on the handshake. A foreign Origin is refused before the
handshake completes (HostOriginMiddleware).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.api.deps import SQL_INT_MAX
from azuraforge_platform.api.errors import error_payload
from azuraforge_platform.api.live import FINAL, AsyncEventStream
from azuraforge_platform.api.security import authenticate_websocket
from azuraforge_platform.api.services import Services
from azuraforge_platform.store import ExperimentNotFoundError
from azuraforge_platform.telemetry.metrics import WEBSOCKETS

router = APIRouter(tags=["experiments"])
log = logging.getLogger(__name__)


def _ping() -> dict[str, str]:
    return {"type": "ping", "time": datetime.now(UTC).isoformat()}


def _is_final_event(event_type: str, payload: dict[str, Any]) -> bool:
    return event_type == "status" and payload.get("status") in {s.value for s in FINAL}


async def _pump(websocket: WebSocket, services: Services, experiment_id: str, after: int) -> None:
    store = services.store
    try:
        await run_in_threadpool(store.get, experiment_id)
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
            # quiet: is the run over (with every stored event delivered)? The topic's shared
            # poll knows, so a quiet socket reads nothing itself
            if subscription.gone:
                message = f"experiment {experiment_id} was deleted"
                await websocket.send_json({"type": "error", **error_payload(404, message)})
                await websocket.close(code=4404)
                return
            final = subscription.status
            if final is not None and final in FINAL:
                await stream.fill()
                if not stream.has_pending:
                    status = final.value
                    break
                continue
            await websocket.send_json(_ping())
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


async def _pump_status(websocket: WebSocket, services: Services) -> None:
    subscription = await services.hub.subscribe_status()
    ping = services.settings.ws_ping_seconds
    try:
        await websocket.send_json({"type": "subscribed"})
        while True:
            try:
                _, text = await asyncio.wait_for(subscription.queue.get(), ping)
            except TimeoutError:
                await websocket.send_json(_ping())
                continue
            await websocket.send_text(text)
    finally:
        subscription.close()


async def _serve(
    websocket: WebSocket, pump: Coroutine[Any, Any, None], what: str, stream: str
) -> None:
    """Authenticates, then runs `pump` until it ends or the client goes away (counted in
    `azuraforge_websocket_connections{stream}` meanwhile)."""
    principal, subprotocol = await authenticate_websocket(websocket)
    await websocket.accept(subprotocol=subprotocol)
    if principal is None:
        pump.close()
        # accepted first so that a browser sees the reason (4401: sign in again)
        message = "sign in first: send a token from POST /auth/ws-token as the subprotocol"
        await websocket.send_json({"type": "error", **error_payload(401, message)})
        await websocket.close(code=4401)
        return
    connections = WEBSOCKETS.labels(stream)
    connections.inc()
    pumping = asyncio.create_task(pump)
    drain = asyncio.create_task(_drain(websocket))
    try:
        done, _ = await asyncio.wait({pumping, drain}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        connections.dec()
        for task in (pumping, drain):
            task.cancel()
        for task in (pumping, drain):
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, Exception):
                await task
    if pumping in done and pumping.exception() is not None:
        exc = pumping.exception()
        if not isinstance(exc, WebSocketDisconnect | RuntimeError):
            log.error("%s failed", what, exc_info=exc)
            with contextlib.suppress(Exception):
                message = "internal error; see the server log"
                await websocket.send_json({"type": "error", **error_payload(500, message)})
                await websocket.close(code=1011, reason=message)


@router.websocket("/experiments/{experiment_id}/events")
async def experiment_events(
    websocket: WebSocket,
    experiment_id: str,
    after: Annotated[int, Query(ge=0, le=SQL_INT_MAX, description="Last seq already seen")] = 0,
) -> None:
    services: Services = websocket.app.state.services
    pump = _pump(websocket, services, experiment_id, after)
    await _serve(websocket, pump, f"event stream of {experiment_id}", "events")


@router.websocket("/events/status")
async def status_events(websocket: WebSocket) -> None:
    """Every experiment's status changes (see the module's docstring)."""
    services: Services = websocket.app.state.services
    await _serve(websocket, _pump_status(websocket, services), "status stream", "status")
