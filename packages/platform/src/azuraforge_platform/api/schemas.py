"""Request and response schemas of the HTTP API, one family per entity, kept apart from the
SQLAlchemy tables. Importing this module needs pydantic only (the client uses it too)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from azuraforge_platform.store.accounts import USERNAME_PATTERN
from azuraforge_platform.store.tables import ExperimentStatus

__all__ = [
    "ArtifactList",
    "AuditEventPublic",
    "AuditList",
    "LoginRequest",
    "LoginResponse",
    "Me",
    "TokenCreate",
    "TokenCreated",
    "TokenList",
    "TokenPublic",
    "UserCreate",
    "UserCreated",
    "UserList",
    "UserPublic",
    "UserUpdate",
    "WsToken",
    "ArtifactPublic",
    "ErrorBody",
    "ErrorField",
    "ErrorResponse",
    "EventPublic",
    "ExperimentCreate",
    "ExperimentList",
    "ExperimentPublic",
    "ExperimentRerun",
    "ExperimentSummary",
    "Health",
    "LogLinePublic",
    "LogList",
    "MetricSeries",
    "MetricsPublic",
    "ModelCreate",
    "ModelList",
    "ModelPublic",
    "PipelineDetail",
    "PipelineList",
    "PipelineLoadError",
    "PipelineSummary",
    "PredictRequest",
    "PredictResponse",
    "ServiceHealth",
    "UploadList",
    "UploadPublic",
    "WorkerHealth",
]

Tag = Annotated[str, Field(min_length=1, max_length=100)]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- errors ---------------------------------------------------------------------------------
class ErrorField(Schema):
    path: str = Field(description="Dotted path of the offending field, e.g. `config.epochs`.")
    message: str


class ErrorBody(Schema):
    code: str = Field(description="Stable machine-readable code, e.g. `not_found`.")
    message: str = Field(description="What went wrong, for a human.")
    fields: list[ErrorField] = Field(default_factory=list)


class ErrorResponse(Schema):
    """Every 4xx/5xx answer has this shape."""

    error: ErrorBody


# -- health ---------------------------------------------------------------------------------
class ServiceHealth(Schema):
    ok: bool
    kind: str = Field(description="sqlite, postgresql, embedded or redis")
    detail: str | None = None


class WorkerHealth(Schema):
    name: str
    experiment_id: str | None = None
    heartbeat_at: datetime | None = None
    alive: bool


class Health(Schema):
    status: Literal["ok", "degraded"]
    mode: Literal["embedded", "distributed"]
    version: str
    database: ServiceHealth
    queue: ServiceHealth
    storage: ServiceHealth = Field(
        description="Where artifacts are kept: the local folder, or the S3 bucket (reachable "
        "and existing: a missing bucket shows here, not at a run's first upload)."
    )
    workers_alive: int = Field(description="Workers that answered or beat recently.")
    workers: list[WorkerHealth]


# -- pipelines ------------------------------------------------------------------------------
class PipelineSummary(Schema):
    id: str
    name: str
    description: str
    package: str | None
    category: str
    official: bool
    installed: bool
    version: str | None


class PipelineLoadError(Schema):
    name: str
    distribution: str | None
    error: str


class PipelineList(Schema):
    items: list[PipelineSummary]
    load_errors: list[PipelineLoadError] = Field(
        default_factory=list, description="Installed plugins that failed to load (skipped)."
    )


class PipelineDetail(PipelineSummary):
    config_schema: dict[str, Any] = Field(description="JSON Schema of the pipeline's config.")
    default_config: dict[str, Any]
    supports_prediction: bool


# -- experiments ----------------------------------------------------------------------------
class ExperimentCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    pipeline_id: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    max_attempts: int | None = Field(default=None, ge=1, le=10)


class ExperimentRerun(Schema):
    """A new run of an existing experiment: its config with `config` merged over it."""

    model_config = ConfigDict(extra="forbid")

    config: dict[str, Any] = Field(default_factory=dict, description="Changes to the config.")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    tags: list[Tag] | None = Field(default=None, max_length=50)


class ExperimentSummary(Schema):
    id: str
    name: str
    pipeline_id: str
    pipeline_version: str | None
    status: ExperimentStatus
    tags: list[str]
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    max_attempts: int
    error: str | None
    summary: dict[str, Any] | None
    parent_id: str | None
    owner: str | None = Field(default=None, description="The username that submitted it.")
    last_event_seq: int = Field(
        description="Seq of its latest event: a live status event at or below it is stale."
    )


class ExperimentPublic(ExperimentSummary):
    config: dict[str, Any]
    heartbeat_at: datetime | None
    worker: str | None
    traceback: str | None


class ExperimentList(Schema):
    items: list[ExperimentSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")
    prev_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the previous page (None on the first)."
    )
    total: int | None = Field(description="Matching rows (only with `with_total=true`).")
    estimated_total: int | None = Field(
        default=None,
        description="About how many rows match (only with `estimate_total=true`): exact up to "
        "10,000, the query planner's estimate beyond that on PostgreSQL.",
    )
    estimate_exact: bool | None = Field(
        default=None, description="Whether `estimated_total` is an exact count."
    )
    limit: int


# -- metrics, logs, events, artifacts -------------------------------------------------------
class MetricSeries(Schema):
    name: str
    steps: list[int]
    values: list[float | None] = Field(description="null where the value was NaN or infinite")
    epochs: list[int | None]
    total_points: int = Field(description="Points stored for this metric.")
    downsampled: bool


class MetricsPublic(Schema):
    experiment_id: str
    max_points: int
    series: list[MetricSeries]


class LogLinePublic(Schema):
    id: int
    time: datetime
    level: str
    message: str


class LogList(Schema):
    items: list[LogLinePublic]
    next_after_id: int = Field(description="Pass as `after_id` to read on.")


class EventPublic(Schema):
    experiment_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    time: datetime


class ArtifactPublic(Schema):
    path: str
    size: int
    kind: str
    created_at: datetime
    url: str


class ArtifactList(Schema):
    items: list[ArtifactPublic]


# -- models ---------------------------------------------------------------------------------
class ModelCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
    experiment_id: str = Field(min_length=1, max_length=32)
    artifact_path: str | None = Field(
        default=None,
        max_length=500,
        description="The model file in the experiment's artifacts (default: its `model` one).",
    )
    description: str | None = Field(default=None, max_length=2000)


class ModelPublic(Schema):
    name: str
    experiment_id: str
    pipeline_id: str
    pipeline_version: str | None
    artifact_path: str
    description: str | None
    metrics: dict[str, Any] | None
    created_at: datetime
    owner: str | None = Field(default=None, description="The username that registered it.")


class ModelList(Schema):
    items: list[ModelPublic]


_MAX_INPUT_DEPTH = 32  # images are (N, H, W), rows a list of objects


class PredictRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    inputs: Any = Field(
        default=None,
        description="RAW inputs in the dataset's own form: price or weather rows (list of "
        "objects), images (lists of 0-255 pixel rows), ...",
    )
    upload_id: str | None = Field(
        default=None,
        max_length=64,
        description="Instead of `inputs`: an uploaded data file (`inputs` never names a file).",
    )

    @field_validator("inputs")
    @classmethod
    def _plain_numbers(cls, value: Any) -> Any:
        # Python's JSON reader accepts NaN, Infinity and 1e400; no model input means them,
        # and a count like `horizon` must not reach a pipeline as one. Deep nesting is no
        # model input either (and would not travel to the prediction process).
        stack = [(value, 0)]
        while stack:  # a loop, not recursion: the nesting is the client's to choose
            item, depth = stack.pop()
            if depth > _MAX_INPUT_DEPTH:
                raise ValueError(f"nested more than {_MAX_INPUT_DEPTH} levels deep")
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")
            if isinstance(item, dict):
                stack.extend((v, depth + 1) for v in item.values())
            elif isinstance(item, list):
                stack.extend((v, depth + 1) for v in item)
        return value


class PredictResponse(Schema):
    model: str
    pipeline_id: str
    predictions: Any


# -- uploads --------------------------------------------------------------------------------
class UploadPublic(Schema):
    id: str = Field(description="Server-generated; reference it from a config or predict.")
    path: str = Field(
        description="What a pipeline config names it by (`csv_path`, `data_path`): "
        "`uploads/<id>`, relative to the server's data folder."
    )
    filename: str = Field(description="The client's file name, for display only.")
    size: int
    sha256: str
    kind: str
    created_at: datetime | None = None
    owner: str | None = Field(default=None, description="The username that uploaded it.")


class UploadList(Schema):
    items: list[UploadPublic] = Field(description="The caller's uploads, newest first.")
    used_bytes: int = Field(description="Bytes the caller's uploads take.")
    quota_bytes: int = Field(description="Bytes the caller may keep.")


# -- authentication -------------------------------------------------------------------------
RoleName = Literal["admin", "member", "viewer"]
Username = Annotated[str, Field(min_length=1, max_length=64, pattern=USERNAME_PATTERN)]
Password = Annotated[str, Field(min_length=1, max_length=1024)]


class UserPublic(Schema):
    id: int
    username: str
    role: RoleName
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None


class UserList(Schema):
    items: list[UserPublic]


class UserCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    username: Username
    role: RoleName = "member"
    password: Password | None = Field(
        default=None, description="At least 10 characters; omit to have one generated."
    )


class UserCreated(Schema):
    user: UserPublic
    password: str | None = Field(description="The generated password, shown only here.")


class UserUpdate(Schema):
    model_config = ConfigDict(extra="forbid")

    role: RoleName | None = None
    disabled: bool | None = None
    password: Password | None = None


class LoginRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=200)]
    password: Password


class LoginResponse(Schema):
    user: UserPublic
    expires_at: datetime


class Me(UserPublic):
    auth: Literal["session", "token", "none"]


class WsToken(Schema):
    token: str = Field(description="Send as the WebSocket subprotocol `azuraforge.token.<token>`.")
    expires_in: int = Field(description="Seconds it stays valid.")


class TokenCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1, max_length=100)]
    expires_in_days: int = Field(default=90, ge=1, le=3650)


class TokenPublic(Schema):
    id: int
    name: str
    prefix: str = Field(description="The token's first characters, to recognise it.")
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    token: str = Field(description="The secret: shown only in this answer, kept only hashed.")


class TokenList(Schema):
    items: list[TokenPublic]


class AuditEventPublic(Schema):
    id: int
    at: datetime
    actor: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    ip: str | None


class AuditList(Schema):
    items: list[AuditEventPublic]
    next_before: int | None = Field(description="Pass as `before` for older events.")
