"""Registered models: register an experiment's model artifact under a name, predict with it
(in the prediction sandbox: `azuraforge_platform.execution.predict`)."""

from __future__ import annotations

import logging
from pathlib import Path as FsPath
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from azuraforge_pipeline import PathNotAllowedError, UnknownPipelineError, check_path
from azuraforge_platform.api.deps import ModelsDep, ServicesDep
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.routes.experiments import check_artifact
from azuraforge_platform.api.routes.uploads import upload_file, upload_guard
from azuraforge_platform.api.schemas import (
    ModelCreate,
    ModelList,
    ModelPublic,
    PredictRequest,
    PredictResponse,
)
from azuraforge_platform.api.security import PrincipalDep, audit
from azuraforge_platform.execution.predict import PredictionFailedError
from azuraforge_platform.paths import client_path_policy
from azuraforge_platform.store import (
    ExperimentNotFoundError,
    ExperimentStatus,
    ModelExistsError,
    ModelNotFoundError,
    ModelRecord,
    ModelRegistry,
)

log = logging.getLogger(__name__)

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
        check_artifact(store, experiment.id, path)  # exists, inside the folder
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


_JSON = "application/json"
_MAX_PATH = 4096  # characters of a string `inputs` (PATH_MAX on Linux)

# How a sandboxed prediction's failure is answered: (status, error code); bad inputs also
# name the field, and the rest (a bug in the pipeline) is a 500 with its traceback logged.
_FAILURES = {
    "not_supported": (400, "prediction_not_supported"),
    "unknown_pipeline": (404, "not_found"),
    "timeout": (422, "prediction_timeout"),
    "out_of_memory": (422, "prediction_out_of_memory"),
    "killed": (422, "prediction_killed"),
    "too_large": (422, "prediction_too_large"),
    "busy": (503, "busy"),
    "client_gone": (400, "cancelled"),
}


@router.post(
    "/{name}/predict",
    response_model=PredictResponse,
    responses=responses(400, 404, 422, 503),
    summary="Predict with a registered model from RAW inputs",
    description="The prediction runs in a child process under a time limit "
    "(`predict_timeout_seconds`) and a memory limit (`predict_memory_mb`); a string `inputs` "
    "names a file in the uploads folder or a configured data root.",
)
async def predict(
    name: ModelName,
    body: PredictRequest,
    services: ServicesDep,
    principal: PrincipalDep,
    request: Request,
) -> Response:
    settings = services.settings

    def prepare() -> tuple[str, FsPath, Any, dict[str, str]]:
        record = _get(services.models, name)
        try:
            services.pipelines().get(record.pipeline_id)
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
        label = f"the file of model {name!r}"
        shown = {str(model_path): label, str(model_path.resolve()): label}
        inputs: Any = body.inputs
        if body.upload_id is not None:
            # a Path: pipelines read files only from one (a JSON string is data, never a file)
            inputs = upload_file(settings, services.uploads, body.upload_id, principal)
            shown[str(inputs)] = f"upload {body.upload_id!r}"
        elif isinstance(inputs, str):  # a file on the server: only where clients may read
            if len(inputs) > _MAX_PATH:
                message = f"a path of {len(inputs)} characters is too long (at most {_MAX_PATH})"
                raise ApiError(422, message, fields=[("inputs", message)])
            guard = upload_guard(settings, services.uploads, principal)
            try:
                inputs = check_path(inputs, client_path_policy(settings, guard))
            except PathNotAllowedError as exc:
                raise ApiError(422, str(exc), fields=[("inputs", str(exc))]) from None
            shown[str(inputs)] = repr(body.inputs)
        return record.pipeline_id, model_path, inputs, shown

    pipeline_id, model_path, inputs, shown = await run_in_threadpool(prepare)
    try:
        predictions = await services.predictions.predict(
            pipeline_id, model_path, inputs, shown=shown, client_gone=request.is_disconnected
        )
    except PredictionFailedError as exc:
        if exc.kind == "bad_inputs":
            message = f"the inputs do not suit model {name!r}: {exc.message}"
            fields = [("inputs", exc.message)]
            raise ApiError(422, message, code="bad_inputs", fields=fields) from None
        if exc.kind in _FAILURES:
            status, code = _FAILURES[exc.kind]
            raise ApiError(status, exc.message, code=code) from None
        if exc.kind == "bad_output":
            message = f"pipeline returned non-JSON predictions: {exc.message}"
            raise ApiError(500, message) from None
        log.error("prediction with model %r failed: %s\n%s", name, exc.message, exc.detail)
        raise ApiError(500, f"{exc.message}; see the server log") from None
    # The child's JSON goes out as it is: parsing and re-encoding a large answer here would
    # cost the API process what the sandbox spared it.
    head = PredictResponse(model=name, pipeline_id=pipeline_id, predictions=None)
    content = head.model_dump_json(exclude={"predictions"})[:-1].encode()
    return Response(content + b',"predictions":' + predictions + b"}", media_type=_JSON)
