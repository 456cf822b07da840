"""The HTTP API (FastAPI): `create_app(settings)` serves /api/v1 and the WebSocket events."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azuraforge_platform.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]


def __getattr__(name: str) -> Any:
    # The app (FastAPI and every route) is imported only where it is served: the client and
    # the CLI import `api.schemas`, the shapes they share with it, and start faster.
    if name in __all__:
        from azuraforge_platform.api import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
