"""`GET /metrics`: Prometheus's text format, outside /api/v1 (docs/observability.md).

Readable with the metrics token (`AZURAFORGE_METRICS_TOKEN`, what Prometheus sends as its
bearer token) or an admin's own credential; anyone else gets 401 (403 for a signed-in
non-admin)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.api.deps import ServicesDep
from azuraforge_platform.api.errors import AUTH_ERRORS, ApiError
from azuraforge_platform.api.platform_metrics import PlatformCollector
from azuraforge_platform.api.security import current_principal
from azuraforge_platform.telemetry.metrics import CONTENT_TYPE_LATEST, exposition, token_ok

router = APIRouter(tags=["metrics"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (the metrics token or an admin)",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        **AUTH_ERRORS,
    },
)
async def metrics(request: Request, services: ServicesDep) -> Response:
    if not token_ok(services.settings, request.headers.get("authorization")):
        principal = await current_principal(request)  # 401 without a credential
        if not principal.is_admin:
            raise ApiError(
                403, "only an admin, or Prometheus with the metrics token, may read /metrics"
            )
    body = await run_in_threadpool(exposition, services.settings, [PlatformCollector(services)])
    return Response(body, media_type=CONTENT_TYPE_LATEST)
