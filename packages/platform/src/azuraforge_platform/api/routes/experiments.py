"""Experiments: create (validated), list (filter, search, sort, keyset pages both ways, an
estimated total), detail, metrics (downsampled), logs, events, artifacts, cancel, delete,
re-run."""

from __future__ import annotations

import json
import logging
import mimetypes
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from azuraforge_pipeline import ConfigError, UnknownPipelineError
from azuraforge_platform.accounts import Principal
from azuraforge_platform.api.deps import (
    SQL_INT_MAX,
    ExperimentDep,
    ExperimentId,
    ServicesDep,
    StoreDep,
    experiment_or_404,
)
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.metric_series import metric_series_json
from azuraforge_platform.api.routes.uploads import upload_guard
from azuraforge_platform.api.schemas import (
    ArtifactList,
    ArtifactPublic,
    EventPublic,
    ExperimentCreate,
    ExperimentList,
    ExperimentPublic,
    ExperimentRerun,
    ExperimentSummary,
    LogLinePublic,
    LogList,
    MetricsPublic,
)
from azuraforge_platform.api.security import PrincipalDep, audit
from azuraforge_platform.api.services import Services
from azuraforge_platform.lifecycle import QueueUnavailableError
from azuraforge_platform.paths import client_path_policy
from azuraforge_platform.store import (
    ArtifactNotFoundError,
    ArtifactPathError,
    ArtifactRangeError,
    ExperimentRecord,
    ExperimentStatus,
    ExperimentStore,
    InvalidTransitionError,
    one_byte_range,
)

router = APIRouter(prefix="/experiments", tags=["experiments"])
log = logging.getLogger(__name__)

S = ExperimentStatus


class SortField(StrEnum):
    created_at = "created_at"
    name = "name"
    pipeline_id = "pipeline_id"
    status = "status"


class SortOrder(StrEnum):
    asc = "asc"
    desc = "desc"


def _public(record: ExperimentRecord) -> ExperimentPublic:
    return ExperimentPublic.model_validate(record)


def _create(
    services: Services,
    *,
    pipeline_id: str,
    config: Mapping[str, Any],
    name: str | None,
    tags: list[str],
    max_attempts: int | None,
    principal: Principal,
    parent_id: str | None = None,
) -> ExperimentRecord:
    registry = services.pipelines()
    try:
        cls = registry.get(pipeline_id)
    except UnknownPipelineError as exc:
        raise ApiError(404, str(exc), code="unknown_pipeline") from None
    try:
        # data paths must name one of the caller's uploads or a file in a data root (kept as
        # the client wrote them)
        guard = upload_guard(services.settings, services.uploads, principal)
        policy = client_path_policy(services.settings, guard)
        validated = cls.validate_config(config, path_policy=policy)
    except ConfigError as exc:
        fields = [(f"config.{p}" if p else "config", m) for p, m in exc.errors]
        raise ApiError(422, str(exc), code="invalid_config", fields=fields) from None
    try:
        return services.lifecycle.submit(
            pipeline_id=pipeline_id,
            config=validated.model_dump(mode="json"),
            pipeline_version=cls.version,
            name=name,
            tags=tags,
            parent_id=parent_id,
            max_attempts=max_attempts or services.settings.max_attempts,
            owner=principal.username,
            coordinator=cls.coordinator,
        )
    except QueueUnavailableError as exc:
        raise ApiError(
            503, f"the job queue is unavailable: {exc}", code="queue_unavailable"
        ) from None


@router.post(
    "",
    status_code=201,
    response_model=ExperimentPublic,
    responses=responses(404, 422, 503),
    summary="Queue a run of a pipeline (config validated against its model)",
)
async def create_experiment(
    body: ExperimentCreate, services: ServicesDep, principal: PrincipalDep
) -> ExperimentPublic:
    record = await run_in_threadpool(
        lambda: _create(
            services,
            pipeline_id=body.pipeline_id,
            config=body.config,
            name=body.name,
            tags=body.tags,
            max_attempts=body.max_attempts,
            principal=principal,
        )
    )
    return _public(record)


def _json(body: BaseModel) -> Response:
    """`body` serialised once, by pydantic-core. Returning the model instead would have FastAPI
    re-validate it against `response_model` and encode it with the stdlib json module, which for
    a page of experiments or thousands of metric points cost more than the database."""
    return Response(body.model_dump_json(), media_type="application/json")


@router.get(
    "",
    response_model=ExperimentList,
    responses=responses(400, 422),
    summary="Filter, search, sort and paginate experiments",
)
async def list_experiments(
    store: StoreDep,
    pipeline_id: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[list[ExperimentStatus] | None, Query(description="Any of these")] = None,
    tag: Annotated[list[str] | None, Query(description="All of these tags")] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="Name contains / id starts")] = None,
    parent_id: Annotated[str | None, Query(max_length=32)] = None,
    sort: SortField = SortField.created_at,
    order: SortOrder = SortOrder.desc,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[
        str | None, Query(max_length=2000, description="From `next_cursor` or `prev_cursor`")
    ] = None,
    offset: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    with_total: Annotated[bool, Query(description="Count every match (`total`)")] = False,
    estimate_total: Annotated[
        bool, Query(description="About how many match (`estimated_total`), fast at any size")
    ] = False,
) -> Response:
    for when in (created_after, created_before):
        if when is not None and when.tzinfo is None:
            raise ApiError(422, "dates need a timezone, e.g. 2026-01-01T00:00:00Z")
    try:
        page = await run_in_threadpool(
            store.list_experiments,
            pipeline_id=pipeline_id,
            status=[s.value for s in status] if status else None,
            tags=tag,
            created_after=created_after,
            created_before=created_before,
            search=q,
            parent_id=parent_id,
            sort=sort.value,
            descending=order is SortOrder.desc,
            limit=limit,
            offset=offset,
            cursor=cursor,
            with_total=with_total,
            estimate_total=estimate_total,
        )
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    body = ExperimentList(
        items=[ExperimentSummary.model_validate(r) for r in page.items],
        next_cursor=page.next_cursor,
        prev_cursor=page.prev_cursor,
        total=page.total,
        estimated_total=page.estimated_total,
        estimate_exact=page.estimate_exact,
        limit=limit,
    )
    return _json(body)


@router.get(
    "/{experiment_id}",
    response_model=ExperimentPublic,
    responses=responses(404),
    summary="One experiment",
)
async def get_experiment(experiment: ExperimentDep) -> ExperimentPublic:
    return _public(experiment)


# Finished runs never change: their downsampled series are kept (keyed by everything that
# could change them, including the last event seq that every metrics report bumps), as the
# response's JSON bytes: one object per entry, where thousands of live floats and lists per
# entry made every full garbage collection walk them (tail latencies of 100+ ms).
_cache: OrderedDict[tuple[Any, ...], bytes] = OrderedDict()
_CACHE_SIZE = 256
_FINAL = frozenset({S.succeeded, S.failed, S.cancelled})


def _metrics_json(
    store: ExperimentStore, experiment_id: str, names: list[str] | None, max_points: int
) -> bytes:
    record = experiment_or_404(store, experiment_id)
    key = (id(store), experiment_id, tuple(sorted(names or ())), max_points, record.last_event_seq)
    if record.status in _FINAL and key in _cache:
        _cache.move_to_end(key)
        return _cache[key]
    series = metric_series_json(store, experiment_id, names, max_points)
    # MetricsPublic, spliced from the series' own JSON
    data = b'{"experiment_id":%s,"max_points":%d,"series":[%s]}' % (
        json.dumps(experiment_id).encode(),
        max_points,
        b",".join(series),
    )
    if record.status in _FINAL:
        _cache[key] = data
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return data


@router.get(
    "/{experiment_id}/metrics",
    response_model=MetricsPublic,
    responses=responses(404),
    summary="Metric history, downsampled on the server keeping peaks (min/max per bucket)",
)
async def get_metrics(
    experiment_id: ExperimentId,
    store: StoreDep,
    name: Annotated[list[str] | None, Query(description="Only these metrics")] = None,
    max_points: Annotated[int, Query(ge=2, le=100_000)] = 1000,
) -> Response:
    data = await run_in_threadpool(_metrics_json, store, experiment_id, name, max_points)
    return Response(data, media_type="application/json")


@router.get(
    "/{experiment_id}/logs",
    response_model=LogList,
    responses=responses(404),
    summary="Log lines after `after_id`",
)
async def get_logs(
    experiment: ExperimentDep,
    store: StoreDep,
    after_id: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> LogList:
    lines = await run_in_threadpool(store.logs, experiment.id, after_id=after_id, limit=limit)
    return LogList(
        items=[LogLinePublic.model_validate(line) for line in lines],
        next_after_id=lines[-1].id if lines else after_id,
    )


@router.get(
    "/{experiment_id}/events",
    response_model=list[EventPublic],
    responses=responses(404),
    summary="Stored events after `after` (the WebSocket at the same path streams them live)",
)
async def get_events(
    experiment: ExperimentDep,
    store: StoreDep,
    after: Annotated[int, Query(ge=0, le=SQL_INT_MAX)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
) -> list[EventPublic]:
    events = await run_in_threadpool(store.events_after, experiment.id, after, limit=limit)
    return [EventPublic.model_validate(e) for e in events]


@router.get(
    "/{experiment_id}/artifacts",
    response_model=ArtifactList,
    responses=responses(404),
    summary="The files the run saved",
)
async def list_artifacts(
    experiment: ExperimentDep, store: StoreDep, request: Request
) -> ArtifactList:
    records = await run_in_threadpool(store.artifacts, experiment.id)
    base = str(request.url_for("list_artifacts", experiment_id=experiment.id).path)
    return ArtifactList(
        items=[
            ArtifactPublic(
                path=a.path,
                size=a.size,
                kind=a.kind,
                created_at=a.created_at,
                url=f"{base}/{a.path}",
            )
            for a in records
        ]
    )


def check_artifact(store: ExperimentStore, experiment_id: str, relative: str) -> None:
    """That `relative` names a file of the experiment (in its folder or its bucket keys):
    400 for a path outside it, 404 for no such file."""
    with _artifact_errors():
        store.check_artifact(experiment_id, relative)


@contextmanager
def _artifact_errors() -> Iterator[None]:
    try:
        yield
    except ArtifactPathError as exc:
        raise ApiError(400, str(exc), code="bad_path") from None
    except ArtifactNotFoundError as exc:
        raise ApiError(404, str(exc)) from None
    except ArtifactRangeError as exc:
        raise ApiError(416, str(exc), headers={"Content-Range": f"bytes */{exc.size}"}) from None


def _disposition(kind: str, filename: str) -> str:
    quoted = quote(filename)
    if quoted != filename:  # as Starlette's FileResponse says it
        return f"{kind}; filename*=utf-8''{quoted}"
    return f'{kind}; filename="{filename}"'


@router.get(
    "/{experiment_id}/artifacts/{path:path}",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        206: {"description": "The byte range asked for in a Range header"},
        **responses(400, 404, 416),
    },
    summary="Download one artifact",
)
async def download_artifact(
    experiment: ExperimentDep,
    store: StoreDep,
    request: Request,
    path: Annotated[str, Path(max_length=500)],
    download: Annotated[bool, Query(description="As an attachment")] = False,
) -> Response:
    disposition = "attachment" if download else "inline"
    bucket = store.bucket
    if bucket is None:  # Starlette answers Range requests itself (206, 416, several ranges)
        with _artifact_errors():
            target = store.artifact_file(experiment.id, path)
        return FileResponse(target, filename=target.name, content_disposition_type=disposition)
    # From the bucket, streamed: the API's machine keeps no copy of what it serves. A
    # Range header (a resumed download, a seek) becomes the bucket's own range request;
    # with If-Range the whole object is sent, which is always a correct answer.
    byte_range = None
    header = request.headers.get("range")
    if header is not None and "if-range" not in request.headers:
        try:
            byte_range = one_byte_range(header)
        except ValueError as exc:
            raise ApiError(400, str(exc), code="bad_range") from None
    with _artifact_errors():
        found = await run_in_threadpool(bucket.open, experiment.id, path, byte_range)
    name = PurePosixPath(path).name
    headers = {
        "Content-Length": str(found.size),
        "Content-Disposition": _disposition(disposition, name),
        "Accept-Ranges": "bytes",
    }
    if found.content_range:
        headers["Content-Range"] = found.content_range
    return StreamingResponse(
        found.chunks(),  # a sync iterator: Starlette reads it in its thread pool
        status_code=206 if found.content_range else 200,
        media_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
        headers=headers,
    )


@router.post(
    "/{experiment_id}/cancel",
    response_model=ExperimentPublic,
    responses=responses(404, 409),
    summary="Cancel: queued runs stop at once, running ones at their next check",
)
async def cancel_experiment(
    experiment: ExperimentDep, services: ServicesDep, principal: PrincipalDep, request: Request
) -> ExperimentPublic:
    _may_manage(principal, experiment, "cancel")

    def cancel() -> ExperimentRecord:
        try:
            services.lifecycle.cancel(experiment.id)
        except InvalidTransitionError as exc:
            raise ApiError(409, str(exc), code="invalid_state") from None
        audit(request, "experiment.cancel", target=experiment.id, detail=_audit_detail(experiment))
        return services.store.get(experiment.id)

    return _public(await run_in_threadpool(cancel))


@router.delete(
    "/{experiment_id}",
    status_code=204,
    response_class=Response,
    responses=responses(404, 409),
    summary="Delete an experiment, its records and its artifacts",
)
async def delete_experiment(
    experiment: ExperimentDep, store: StoreDep, principal: PrincipalDep, request: Request
) -> Response:
    _may_manage(principal, experiment, "delete")
    if experiment.status in (S.running, S.cancelling):
        raise ApiError(
            409,
            f"experiment {experiment.id} is {experiment.status.value}; cancel it first",
            code="invalid_state",
        )

    def delete() -> None:
        store.delete(experiment.id)
        audit(request, "experiment.delete", target=experiment.id, detail=_audit_detail(experiment))

    await run_in_threadpool(delete)
    return Response(status_code=204)


def _may_manage(principal: Principal, experiment: ExperimentRecord, action: str) -> None:
    if not principal.may_manage(experiment.owner):
        owner = experiment.owner or "nobody (a local run)"
        raise ApiError(
            403,
            f"only an admin or its owner may {action} experiment {experiment.id} "
            f"(owned by {owner})",
            code="forbidden",
        )


def _audit_detail(experiment: ExperimentRecord) -> dict[str, Any]:
    return {
        "name": experiment.name,
        "pipeline_id": experiment.pipeline_id,
        "owner": experiment.owner,
        "status": experiment.status.value,
    }


def _merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


@router.post(
    "/{experiment_id}/rerun",
    status_code=201,
    response_model=ExperimentPublic,
    responses=responses(404, 422, 503),
    summary="Queue a new run with this experiment's config and the given changes",
)
async def rerun_experiment(
    experiment: ExperimentDep, body: ExperimentRerun, services: ServicesDep, principal: PrincipalDep
) -> ExperimentPublic:
    name = body.name or f"{experiment.name} (re-run)"[:200]
    record = await run_in_threadpool(
        lambda: _create(
            services,
            pipeline_id=experiment.pipeline_id,
            config=_merge(experiment.config, body.config),
            name=name,
            tags=experiment.tags if body.tags is None else body.tags,
            max_attempts=experiment.max_attempts,
            principal=principal,
            parent_id=experiment.id,
        )
    )
    return _public(record)
