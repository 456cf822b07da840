"""One JSON error shape for every failure: `{"error": {"code", "message", "fields"}}`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import RequestValidationError, WebSocketRequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.websockets import WebSocketState

from azuraforge_platform.api.schemas import ErrorResponse

__all__ = [
    "AUTH_ERRORS",
    "ERRORS",
    "ApiError",
    "error_payload",
    "install_error_handlers",
    "responses",
]

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by routes; rendered as the shared error shape with `status`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        fields: Iterable[tuple[str, str]] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.headers = headers
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.fields = list(fields)


def error_payload(
    status: int, message: str, code: str | None = None, fields: Sequence[tuple[str, str]] = ()
) -> dict[str, Any]:
    return {
        "error": {
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "fields": [{"path": p, "message": m} for p, m in fields],
        }
    }


def _loc_path(loc: Sequence[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":  # a body field is named as the client wrote it
        parts = parts[1:]
    return ".".join(parts) or "body"


def _validation_fields(errors: Sequence[Any]) -> list[tuple[str, str]]:
    return [(_loc_path(err.get("loc", ())), str(err.get("msg", "invalid"))) for err in errors]


def _close_reason(text: str) -> str:
    # A close frame carries at most 123 bytes of reason (125 minus the code).
    data = text.encode()
    if len(data) <= 123:
        return text
    return data[:120].decode(errors="ignore") + "..."


def install_error_handlers(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(
            error_payload(exc.status, exc.message, exc.code, exc.fields),
            status_code=exc.status,
            headers=exc.headers,
        )

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        fields = _validation_fields(exc.errors())
        listed = "; ".join(f"{p}: {m}" for p, m in fields[:5])
        return JSONResponse(
            error_payload(422, f"invalid request: {listed}", fields=fields), status_code=422
        )

    async def websocket_validation_error(websocket: WebSocket, exc: Exception) -> None:
        # Before the endpoint ran, so the socket is not accepted yet: accept it to say why
        # (a close before the handshake reaches the client as a bare HTTP 403), then close
        # with "policy violation".
        assert isinstance(exc, WebSocketRequestValidationError)
        fields = _validation_fields(exc.errors())
        listed = "; ".join(f"{p}: {m}" for p, m in fields[:5])
        if websocket.client_state is WebSocketState.CONNECTING:
            await websocket.accept()
        payload = error_payload(422, f"invalid request: {listed}", fields=fields)
        await websocket.send_json({"type": "error", **payload})
        await websocket.close(code=1008, reason=_close_reason(f"invalid {listed}"))

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = "no such route; see /api/v1/docs"
        return JSONResponse(
            error_payload(exc.status_code, message),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Never a traceback to the client: it is logged here instead.
        log.error("unhandled error", exc_info=exc)
        return JSONResponse(
            error_payload(500, f"internal error ({type(exc).__name__}); see the server log"),
            status_code=500,
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(WebSocketRequestValidationError, websocket_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


_DESCRIPTIONS = {
    400: "Bad request",
    401: "No valid credential (Authorization: Bearer TOKEN, or the dashboard's session)",
    403: "The credential does not allow this action",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Request body too large",
    416: "The byte range starts past the end (Content-Range: bytes */SIZE)",
    422: "Invalid input; `fields` names each offending field",
    503: "Busy: try again shortly",
}


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI declarations of the error answers a route can give."""
    return {
        s: {"model": ErrorResponse, "description": _DESCRIPTIONS.get(s, "Error")} for s in statuses
    }


# Every route can answer these (validation and body limits).
ERRORS = responses(413, 422)
# ... and every route behind authentication these.
AUTH_ERRORS = responses(401, 403)
