"""Registered models: register an experiment's model artifact under a name, predict with it."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from azuraforge_pipeline import PredictionNotSupportedError, UnknownPipelineError
from azuraforge_platform.api.deps import ModelsDep, ServicesDep
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.routes.experiments import artifact_file
from azuraforge_platform.api.routes.uploads import upload_file
from azuraforge_platform.api.schemas import (
    ModelCreate,
    ModelList,
    ModelPublic,
    PredictRequest,
    PredictResponse,
)
from azuraforge_platform.api.security import PrincipalDep, audit
from azuraforge_platform.paths import redact_paths
from azuraforge_platform.store import (
    ExperimentNotFoundError,
    ExperimentStatus,
    ModelExistsError,
    ModelNotFoundError,
    ModelRecord,
    ModelRegistry,
)
from azuraforge_platform.store.models import json_safe

router = APIRouter(prefix="/models", tags=["models"])

ModelName = Annotated[str, Path(min_length=1, max_length=100)]


def _get(models: ModelRegistry, name: str) -> ModelRecord:
    try:
        return models.get(name)
    except ModelNotFoundError as exc:
        raise ApiError(404, str(exc)) from None


@router.get("", response_model=ModelList, summary="Registered models")
async def list_models(models: ModelsDep) -> ModelList:
    records = await run_in_threadpool(models.list)
    return ModelList(items=[ModelPublic.model_validate(r) for r in records])


@router.post(
    "",
    status_code=201,
    response_model=ModelPublic,
    responses=responses(400, 404, 409, 422),
    summary="Register a trained model (an artifact of a succeeded experiment) under a name",
)
async def register_model(
    body: ModelCreate, services: ServicesDep, principal: PrincipalDep, request: Request
) -> ModelPublic:
    def register() -> ModelRecord:
        store = services.store
        try:
            experiment = store.get(body.experiment_id)
        except ExperimentNotFoundError as exc:
            raise ApiError(404, str(exc)) from None
        if experiment.status is not ExperimentStatus.succeeded:
            raise ApiError(
                409,
                f"experiment {experiment.id} is {experiment.status.value}; only a succeeded "
                "run's model can be registered",
                code="invalid_state",
            )
        path = body.artifact_path
        if path is None:
            candidates = [a.path for a in store.artifacts(experiment.id) if a.kind == "model"]
            if not candidates:
                raise ApiError(
                    422,
                    f"experiment {experiment.id} saved no model artifact; name one with "
                    "artifact_path",
                    fields=[("artifact_path", "required: the run has no `model` artifact")],
                )
            path = candidates[0]
        artifact_file(store, experiment.id, path)  # exists, inside the folder
        try:
            record = services.models.register(
                body.name,
                experiment_id=experiment.id,
                artifact_path=path,
                description=body.description,
                metrics=experiment.summary,
                owner=principal.username,
            )
        except ModelExistsError as exc:
            raise ApiError(409, str(exc), code="exists") from None
        detail = {"experiment_id": experiment.id, "artifact_path": path}
        audit(request, "model.register", target=body.name, detail=detail)
        return record

    return ModelPublic.model_validate(await run_in_threadpool(register))


@router.get("/{name}", response_model=ModelPublic, responses=responses(404), summary="One model")
async def get_model(name: ModelName, models: ModelsDep) -> ModelPublic:
    return ModelPublic.model_validate(await run_in_threadpool(_get, models, name))


@router.delete(
    "/{name}",
    status_code=204,
    response_class=Response,
    responses=responses(404),
    summary="Forget a registered model (its experiment and file stay)",
)
async def delete_model(
    name: ModelName, models: ModelsDep, principal: PrincipalDep, request: Request
) -> Response:
    def delete() -> None:
        record = _get(models, name)
        if not principal.may_manage(record.owner):
            raise ApiError(
                403,
                f"only an admin or its owner may delete model {name!r} "
                f"(owned by {record.owner or 'nobody'})",
                code="forbidden",
            )
        try:
            models.delete(name)
        except ModelNotFoundError as exc:
            raise ApiError(404, str(exc)) from None
        detail = {"experiment_id": record.experiment_id, "owner": record.owner}
        audit(request, "model.delete", target=name, detail=detail)

    await run_in_threadpool(delete)
    return Response(status_code=204)


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    responses=responses(400, 404, 422),
    summary="Predict with a registered model from RAW inputs",
)
async def predict(
    name: ModelName, body: PredictRequest, services: ServicesDep, principal: PrincipalDep
) -> PredictResponse:
    def run() -> PredictResponse:
        record = _get(services.models, name)
        try:
            cls = services.pipelines().get(record.pipeline_id)
        except UnknownPipelineError as exc:
            raise ApiError(
                404, f"model {name!r} needs a pipeline that is not installed: {exc}"
            ) from None
        model_path = services.models.path(record)
        if not model_path.is_file():
            raise ApiError(404, f"the file of model {name!r} is gone ({record.artifact_path})")
        if (body.inputs is None) == (body.upload_id is None):
            raise ApiError(
                422,
                "give exactly one of inputs and upload_id",
                fields=[("inputs", "give inputs or upload_id")],
            )
        inputs: Any = body.inputs
        if body.upload_id is not None:
            # a Path: pipelines read files only from one (a JSON string is data, never a file)
            inputs = upload_file(services.settings, services.uploads, body.upload_id, principal)
        try:
            result = cls.predict(model_path, inputs)
        except PredictionNotSupportedError as exc:
            raise ApiError(400, str(exc), code="prediction_not_supported") from None
        except (ValueError, TypeError, KeyError, IndexError, LookupError) as exc:
            reason = redact_paths(str(exc), services.settings.data_dir.resolve())
            raise ApiError(
                422, f"the inputs do not suit model {name!r}: {reason}", code="bad_inputs"
            ) from None
        try:
            predictions = json_safe(result)
            json.dumps(predictions)
        except (TypeError, ValueError) as exc:
            raise ApiError(500, f"pipeline returned non-JSON predictions: {exc}") from None
        return PredictResponse(model=name, pipeline_id=record.pipeline_id, predictions=predictions)

    return await run_in_threadpool(run)
