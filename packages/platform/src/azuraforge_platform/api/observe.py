"""What the API records about each request: its id (`X-Request-ID`, on every log line the
request causes and on its response), its latency and status by route template (Prometheus),
and, with `access_log`, one log line.

`RequestObserver` wraps the whole application, Starlette's error middleware included, so a
500 and a refused Host get an id too. The route template is known only once the router
matched, inside the middleware that copy the request's scope (StripTrailingSlash), so
`RouteSpy`, the innermost middleware, hands it out through a dict they share.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Any

from azuraforge_platform.telemetry.logs import bound, request_id_from
from azuraforge_platform.telemetry.metrics import HTTP_REQUEST_SECONDS, HTTP_REQUESTS

__all__ = ["REQUEST_ID_HEADER", "RequestObserver", "RouteSpy", "route_template"]

Scope = dict[str, Any]
ASGIApp = Callable[..., Any]

REQUEST_ID_HEADER = "X-Request-ID"
_HOLDER = "azuraforge.observed"  # the scope key of the dict the route is handed out in
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_PARAMETER = re.compile(r"{([^}:]+)(?::[^}]*)?}")
UNMATCHED = "unmatched"  # no route answered (404, refused Host): one label, not every path

access_log = logging.getLogger("azuraforge_platform.access")


def route_template(scope: Scope) -> str:
    """`/api/v1/experiments/{experiment_id}`, never the path a client sent (the label's
    values must stay few). A route of an included router knows only its part of the path;
    the part before it is a router's prefix, which has no parameters in this API."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not template:
        return UNMATCHED
    template = str(template)
    params = scope.get("path_params") or {}
    rendered = _PARAMETER.sub(lambda m: str(params.get(m.group(1), m.group(0))), template)
    path = str(scope.get("path", ""))
    prefix = path[: len(path) - len(rendered)] if path.endswith(rendered) else ""
    return prefix + template


class RouteSpy:
    """Innermost: notes which route the router matched for the observer outside."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            holder = scope.get(_HOLDER)
            if holder is not None and scope.get("route") is not None:
                holder["route"] = route_template(scope)


class RequestObserver:
    """Outermost: the request id, the request's metrics and its access-log line."""

    def __init__(self, app: ASGIApp, *, access_log: bool) -> None:
        self.app = app
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = None
        for name, value in scope.get("headers", []):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = request_id_from(incoming)
        if scope["type"] == "websocket":  # its log lines carry the id; no latency to speak of
            with bound(request_id=request_id):
                await self.app(scope, receive, send)
            return
        holder: dict[str, str] = {}
        scope = {**scope, _HOLDER: holder}
        status = 500  # unless a response starts
        header = (REQUEST_ID_HEADER.lower().encode(), request_id.encode())

        async def send_with_id(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        started = time.perf_counter()
        with bound(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                self._record(scope, holder.get("route", UNMATCHED), status, started)

    def _record(self, scope: Scope, route: str, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        method = scope.get("method", "GET")
        label = method if method in _METHODS else "other"
        HTTP_REQUESTS.labels(label, route, str(status)).inc()
        HTTP_REQUEST_SECONDS.labels(label, route).observe(elapsed)
        if self.access_log:
            access_log.info(
                "%s %s %s %.1f ms",
                label,
                scope.get("path", ""),
                status,
                elapsed * 1000,
                extra={
                    "method": label,
                    "path": scope.get("path", ""),
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                },
            )
