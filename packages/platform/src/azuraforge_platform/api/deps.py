"""Annotated dependencies the routes declare (`ServicesDep`, `StoreDep`, `ExperimentDep`, ...);
the caller's identity is `api.security.PrincipalDep`."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.api.errors import ApiError
from azuraforge_platform.api.services import Services
from azuraforge_platform.events import EventService
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import (
    ExperimentNotFoundError,
    ExperimentRecord,
    ExperimentStore,
    ModelRegistry,
    UploadStore,
)

__all__ = [
    "SQL_INT_MAX",
    "EventsDep",
    "ExperimentDep",
    "ExperimentId",
    "ModelsDep",
    "ServicesDep",
    "SettingsDep",
    "StoreDep",
    "UploadsDep",
    "experiment_or_404",
    "get_services",
]


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def _settings(services: ServicesDep) -> Settings:
    return services.settings


def _store(services: ServicesDep) -> ExperimentStore:
    return services.store


def _events(services: ServicesDep) -> EventService:
    return services.events


def _models(services: ServicesDep) -> ModelRegistry:
    return services.models


def _uploads(services: ServicesDep) -> UploadStore:
    return services.uploads


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[ExperimentStore, Depends(_store)]
EventsDep = Annotated[EventService, Depends(_events)]
ModelsDep = Annotated[ModelRegistry, Depends(_models)]
UploadsDep = Annotated[UploadStore, Depends(_uploads)]


# The largest integer every database column takes (signed 64 bits): integer query parameters
# that reach SQL are bounded by it, so a larger one is a 422 rather than an overflow (500).
SQL_INT_MAX = 2**63 - 1

ExperimentId = Annotated[
    str, Path(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]+$", description="Experiment id")
]


def experiment_or_404(store: ExperimentStore, experiment_id: str) -> ExperimentRecord:
    try:
        return store.get(experiment_id)
    except ExperimentNotFoundError as exc:
        raise ApiError(404, str(exc)) from None


async def _experiment(experiment_id: ExperimentId, store: StoreDep) -> ExperimentRecord:
    return await run_in_threadpool(experiment_or_404, store, experiment_id)


ExperimentDep = Annotated[ExperimentRecord, Depends(_experiment)]
