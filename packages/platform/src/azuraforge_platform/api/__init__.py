"""The HTTP API (FastAPI): `create_app(settings)` serves /api/v1 and the WebSocket events."""

from azuraforge_platform.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
