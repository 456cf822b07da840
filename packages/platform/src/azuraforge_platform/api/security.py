"""Who is calling, and from where: the credential on each request (bearer token or the
dashboard's session cookie), role checks, the Host and Origin checks, and audit records.

Browsers attach cookies to cross-site requests, so a cookie-authenticated request that changes
state must show an Origin (or Referer) of this very host; bearer tokens cannot be sent by
another site's page, so scripts need no Origin. WebSockets carry a short-lived signed token
as a subprotocol (browsers cannot set their headers, and a URL ends up in logs).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterable
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, Request, WebSocket
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.accounts import LOCAL_USER, Principal
from azuraforge_platform.api.errors import ApiError, error_payload
from azuraforge_platform.api.services import Services
from azuraforge_platform.settings import Settings

__all__ = [
    "SESSION_COOKIE",
    "WS_PROTOCOL",
    "WS_TOKEN_PROTOCOL_PREFIX",
    "AdminDep",
    "HostOriginMiddleware",
    "PrincipalDep",
    "allowed_hosts",
    "audit",
    "authenticate_websocket",
    "current_principal",
    "require_admin",
    "require_writer_for_changes",
]

SESSION_COOKIE = "azuraforge_session"
WS_PROTOCOL = "azuraforge.v1"
WS_TOKEN_PROTOCOL_PREFIX = "azuraforge.token."
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_WILDCARDS = {"0.0.0.0", "::", ""}


def _services(request: Request | WebSocket) -> Services:
    services: Services = request.app.state.services
    return services


def _unauthenticated(message: str = "sign in first: this route needs a credential") -> ApiError:
    return ApiError(401, message, code="unauthenticated", headers={"WWW-Authenticate": "Bearer"})


async def current_principal(request: Request) -> Principal:
    """The caller, or 401. A bearer token wins over the cookie."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    services = _services(request)
    if not services.settings.auth_enabled:
        principal: Principal | None = LOCAL_USER
    else:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, secret = header.partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                raise _unauthenticated("the Authorization header must be 'Bearer <token>'")
            principal = await _authenticate(services, secret.strip())
            if principal is None:
                raise _unauthenticated("the token is unknown, expired or revoked")
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            if not cookie:
                raise _unauthenticated()
            principal = await _authenticate(services, cookie)
            if principal is None or principal.auth != "session":
                raise _unauthenticated("the session has ended; sign in again")
            if request.method not in SAFE_METHODS and not _same_origin_browser(request):
                raise ApiError(
                    403,
                    "cross-site request refused: a change made with the session cookie must "
                    "come from this site's own pages",
                    code="forbidden",
                )
    assert principal is not None
    request.state.principal = principal
    return principal


async def _authenticate(services: Services, secret: str) -> Principal | None:
    # a caller seen a moment ago needs no trip to a worker thread (nor to the database)
    principal = services.accounts.cached(secret)
    if principal is None:
        principal = await run_in_threadpool(services.accounts.authenticate, secret)
    return principal


def _same_origin_browser(request: Request) -> bool:
    """The Origin (or, lacking it, the Referer) names this host. The middleware already
    refused a foreign Origin; here a missing one counts as foreign."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source:
        return False
    return urlsplit(source).netloc.lower() == request.headers.get("host", "").lower()


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_writer_for_changes(request: Request, principal: PrincipalDep) -> Principal:
    """Viewers read: any method but GET/HEAD/OPTIONS needs a member or an admin."""
    if request.method not in SAFE_METHODS and not principal.can_write:
        raise ApiError(
            403, f"{principal.username} is a viewer: viewers can only read", code="forbidden"
        )
    return principal


async def require_admin(principal: PrincipalDep) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "only an admin may do this", code="forbidden")
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]


def client_ip(request: Request | WebSocket) -> str | None:
    return request.client.host if request.client else None


def audit(
    request: Request,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Records a destructive or administrative action (call it from a worker thread)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    _services(request).accounts.store.audit(
        action,
        actor=principal.username if principal else None,
        target=target,
        detail=detail,
        ip=client_ip(request),
    )


async def authenticate_websocket(websocket: WebSocket) -> tuple[Principal | None, str | None]:
    """(the caller or None, the subprotocol to accept with). Browsers offer
    `azuraforge.v1` plus `azuraforge.token.<token>`; other clients may send a bearer header."""
    services = _services(websocket)
    offered = [
        p.strip()
        for p in websocket.headers.get("sec-websocket-protocol", "").split(",")
        if p.strip()
    ]
    subprotocol = WS_PROTOCOL if WS_PROTOCOL in offered else None
    if not services.settings.auth_enabled:
        return LOCAL_USER, subprotocol
    for protocol in offered:
        if protocol.startswith(WS_TOKEN_PROTOCOL_PREFIX):
            token = protocol[len(WS_TOKEN_PROTOCOL_PREFIX) :]
            principal = await run_in_threadpool(services.accounts.verify_ws_token, token)
            return principal, subprotocol
    header = websocket.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        return await _authenticate(services, secret.strip()), subprotocol
    return None, subprotocol


# -- Host and Origin ------------------------------------------------------------------------


def allowed_hosts(settings: Settings) -> frozenset[str]:
    """Host names (without port) this server answers to; '*' in the set allows any."""
    if settings.allowed_hosts:
        return frozenset(h.lower().strip("[]") for h in settings.allowed_hosts)
    # This machine's own names and addresses are safe to allow: a DNS-rebinding page sends
    # the attacker's host name, never one of these.
    names = {"localhost", "127.0.0.1", "::1", settings.api_host}
    hostname = socket.gethostname()
    names.update({hostname, socket.getfqdn()})
    try:
        for info in socket.getaddrinfo(hostname, None):
            names.add(str(info[4][0]))
    except OSError:
        pass
    names -= _WILDCARDS
    return frozenset(n.lower().strip("[]") for n in names if n)


def _host_name(netloc: str) -> str:
    """`example.com:8000` -> `example.com`; `[::1]:8000` -> `::1`."""
    netloc = netloc.strip().lower()
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    if netloc.count(":") == 1:
        return netloc.split(":", 1)[0]
    return netloc


Scope = dict[str, Any]
ASGIApp = Callable[..., Any]


class HostOriginMiddleware:
    """Refuses a Host header that is not one of this server's names (a DNS-rebinding page
    would send its own), and an Origin of another site on any state-changing request and on
    every WebSocket handshake."""

    def __init__(
        self, app: ASGIApp, hosts: Iterable[str], trusted_origins: Iterable[str] = ()
    ) -> None:
        self.app = app
        self.hosts = frozenset(hosts)
        self.any_host = "*" in self.hosts
        self.trusted_origins = frozenset(o.rstrip("/").lower() for o in trusted_origins)

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not self.any_host and _host_name(host) not in self.hosts:
            await self._refuse(
                scope, receive, send, 400, "bad_host", f"unknown host {host[:100]!r}"
            )
            return
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method") not in SAFE_METHODS
        if changes and origin is not None and not self._origin_ok(origin, host):
            await self._refuse(
                scope, receive, send, 403, "forbidden", "cross-site request refused (Origin)"
            )
            return
        await self.app(scope, receive, send)

    def _origin_ok(self, origin: str, host: str) -> bool:
        origin = origin.rstrip("/").lower()
        if origin in self.trusted_origins:
            return True
        return origin != "null" and urlsplit(origin).netloc == host.lower()

    @staticmethod
    async def _refuse(
        scope: Scope, receive: Any, send: Any, status: int, code: str, message: str
    ) -> None:
        if scope["type"] == "websocket":
            # closing before accepting: the server answers the handshake with 403
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
            return
        body = json.dumps(error_payload(status, message, code)).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
