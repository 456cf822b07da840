"""`create_app(settings)`: the FastAPI application under /api/v1 (and the dashboard at /)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from starlette.staticfiles import StaticFiles

from azuraforge_platform import __version__
from azuraforge_platform.api.errors import AUTH_ERRORS, ERRORS, ApiError, install_error_handlers
from azuraforge_platform.api.middleware import BodyLimitMiddleware, StripTrailingSlashMiddleware
from azuraforge_platform.api.observe import RequestObserver, RouteSpy
from azuraforge_platform.api.routes import (
    audit,
    auth,
    events,
    experiments,
    health,
    metrics,
    models,
    pipelines,
    tokens,
    uploads,
    users,
)
from azuraforge_platform.api.security import (
    HostOriginMiddleware,
    allowed_hosts,
    current_principal,
    require_admin,
    require_writer_for_changes,
)
from azuraforge_platform.api.services import Services
from azuraforge_platform.settings import Settings, get_settings

__all__ = ["API_PREFIX", "create_app", "default_dashboard_dir"]

API_PREFIX = "/api/v1"


def default_dashboard_dir(settings: Settings) -> Path | None:
    """settings.dashboard_dir, else the repository's dashboard/dist when it was built."""
    if settings.dashboard_dir is not None:
        return settings.dashboard_dir
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "dashboard" / "dist"
        if (candidate / "index.html").is_file():
            return candidate
    return None


def api_router() -> APIRouter:
    """Every route needs a credential except /health and /auth/login. Viewers may only read
    the resources (any other method needs a member); users and the audit log are for admins.
    The WebSocket authenticates itself (events.py): browsers cannot send its headers."""
    router = APIRouter(prefix=API_PREFIX, responses=ERRORS, redirect_slashes=False)
    router.include_router(health.router)
    router.include_router(auth.public_router)
    signed_in = [Depends(current_principal)]
    for module in (auth, tokens):
        router.include_router(module.router, dependencies=signed_in, responses=AUTH_ERRORS)
    for module in (pipelines, experiments, models, uploads):
        router.include_router(
            module.router,
            dependencies=[Depends(require_writer_for_changes)],
            responses=AUTH_ERRORS,
        )
    router.include_router(events.router)
    for module in (users, audit):
        router.include_router(
            module.router, dependencies=[Depends(require_admin)], responses=AUTH_ERRORS
        )
    return router


class _App(FastAPI):
    """FastAPI with `RequestObserver` outside everything, Starlette's error middleware
    included: a 500 and a refused Host get a request id and are measured too."""

    access_log = False

    def build_middleware_stack(self) -> Any:
        return RequestObserver(super().build_middleware_stack(), access_log=self.access_log)


def create_app(
    settings: Settings | None = None,
    *,
    run_jobs: bool = True,
    serve_dashboard: bool = True,
) -> FastAPI:
    """The API. Embedded mode (no Redis URL): with `run_jobs` the process owns a
    `LocalExecutor` that runs queued experiments in child processes. Distributed mode:
    experiments are sent to the Celery workers and this process runs no training."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = Services.start(settings, run_jobs=run_jobs)
        app.state.services = services
        try:
            yield
        finally:
            services.close()
            if settings.prometheus_multiproc_dir is not None:
                from prometheus_client import multiprocess

                # this process's live gauges (open WebSockets) stop counting
                multiprocess.mark_process_dead(os.getpid(), str(settings.prometheus_multiproc_dir))

    app = _App(
        title="AzuraForge",
        version=__version__,
        description="Run, watch and compare machine-learning experiments. Every error answers "
        '`{"error": {"code", "message", "fields": [{"path", "message"}]}}`. '
        "Two WebSockets, which this document cannot describe, stream live events: "
        "`WS /api/v1/experiments/{id}/events?after=SEQ` (one experiment's events, backlog "
        "then live) and `WS /api/v1/events/status` (every experiment's status changes, for "
        "tables); both need a credential (see docs/live-updates.md in the repository).",
        # served below, behind authentication like every other route
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.router.redirect_slashes = False
    app.access_log = settings.access_log
    install_error_handlers(app)
    app.include_router(api_router())
    app.include_router(metrics.router)  # /metrics, outside /api/v1 (before the dashboard's /*)
    _mount_api_docs(app)

    dashboard = default_dashboard_dir(settings) if serve_dashboard else None
    if dashboard is not None and (dashboard / "index.html").is_file():
        _mount_dashboard(app, dashboard)

    app.add_middleware(RouteSpy)  # innermost: sees the route the router matched
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
        )
    upload_path = f"{API_PREFIX}/uploads"
    json_limit, upload_limit = settings.api_max_body_bytes, settings.upload_max_bytes + 64 * 1024
    app.add_middleware(
        BodyLimitMiddleware,
        limit_for=lambda path: upload_limit if path.startswith(upload_path) else json_limit,
    )
    app.add_middleware(StripTrailingSlashMiddleware, prefix=API_PREFIX)
    # outermost of these: a request for a foreign Host or from a foreign Origin goes no further
    app.add_middleware(
        HostOriginMiddleware, hosts=allowed_hosts(settings), trusted_origins=settings.cors_origins
    )
    return app


def _mount_api_docs(app: FastAPI) -> None:
    """The OpenAPI document and its interactive pages, for signed-in callers (the dashboard's
    session cookie is enough to browse them)."""
    signed_in = [Depends(current_principal)]
    schema_url = f"{API_PREFIX}/openapi.json"

    @app.get(schema_url, include_in_schema=False, dependencies=signed_in)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(f"{API_PREFIX}/docs", include_in_schema=False, dependencies=signed_in)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=schema_url, title=f"{app.title} API")

    @app.get(f"{API_PREFIX}/redoc", include_in_schema=False, dependencies=signed_in)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=schema_url, title=f"{app.title} API")


def _mount_dashboard(app: FastAPI, folder: Path) -> None:
    """The built single-page dashboard: real files as they are, any other path gets
    index.html so the client-side router can take over."""
    index = folder / "index.html"
    assets = folder / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="dashboard-assets")
    root = folder.resolve()

    @app.get("/{path:path}", include_in_schema=False)
    async def dashboard(path: str) -> FileResponse:
        if path.startswith(API_PREFIX.strip("/") + "/"):
            # unknown API paths are 404 JSON, never the dashboard's page
            raise ApiError(404, f"no such route /{path}; see {API_PREFIX}/docs")
        candidate = (root / path).resolve()
        if path and candidate.is_relative_to(root) and candidate.is_file():
            return FileResponse(candidate)
        return FileResponse(index, headers={"cache-control": "no-cache"})
