"""`GET /pipelines` (catalog + installed) and `GET /pipelines/{id}` (config schema)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from starlette.concurrency import run_in_threadpool

from azuraforge_pipeline import Pipeline, applications
from azuraforge_platform.api.deps import ServicesDep
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.schemas import (
    PipelineDetail,
    PipelineList,
    PipelineLoadError,
    PipelineSummary,
)
from azuraforge_platform.paths import redact_paths

router = APIRouter(prefix="/pipelines", tags=["pipelines"])


def supports_prediction(cls: type[Pipeline]) -> bool:
    return getattr(cls.predict, "__func__", None) is not getattr(Pipeline.predict, "__func__", 0)


@router.get("", response_model=PipelineList, summary="Official catalog and installed pipelines")
async def list_pipelines(
    services: ServicesDep,
    refresh: Annotated[bool, Query(description="Discover installed plugins again")] = False,
) -> PipelineList:
    registry = await run_in_threadpool(services.pipelines, refresh=refresh)
    return PipelineList(
        items=[PipelineSummary.model_validate(a.to_dict()) for a in applications(registry)],
        load_errors=[
            # an import error names the plugin's files by absolute path; the log keeps them
            PipelineLoadError(name=e.name, distribution=e.distribution, error=redact_paths(e.error))
            for e in registry.errors
        ],
    )


@router.get(
    "/{pipeline_id}",
    response_model=PipelineDetail,
    responses=responses(404),
    summary="A pipeline with its config JSON Schema and defaults",
)
async def get_pipeline(
    services: ServicesDep, pipeline_id: Annotated[str, Path(max_length=100)]
) -> PipelineDetail:
    registry = services.pipelines()
    for app in applications(registry):
        if app.id != pipeline_id:
            continue
        if not app.installed:
            raise ApiError(
                404,
                f"pipeline {pipeline_id!r} is not installed; install the package {app.package}",
                code="not_installed",
            )
        cls = registry.get(pipeline_id)
        return PipelineDetail(
            **app.to_dict(),
            config_schema=cls.config_schema(),
            default_config=cls.default_config(),
            supports_prediction=supports_prediction(cls),
        )
    known = ", ".join(registry.ids()) or "none installed"
    raise ApiError(404, f"unknown pipeline {pipeline_id!r}; known pipelines: {known}")
