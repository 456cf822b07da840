"""The `Pipeline` base class every plugin subclasses, and the base of its config model."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import to_jsonable_python

from azuraforge_pipeline.paths import PATH_POLICY_KEY, PathNotAllowedError, PathPolicy

if TYPE_CHECKING:
    from azuraforge_pipeline.context import RunContext

__all__ = [
    "ConfigError",
    "ConfigT",
    "FieldError",
    "Pipeline",
    "PipelineConfig",
    "PredictionNotSupportedError",
    "RunResult",
]

# What `Pipeline.run` returns: JSON-serialisable summary results (final metrics, paths, ...).
RunResult = Mapping[str, Any] | None


class PipelineConfig(BaseModel):
    """Base of every pipeline's `Config`.

    Its JSON Schema (titles, descriptions, bounds, enum choices, defaults) is what a dashboard
    builds its form from, so give every field a `Field(description=..., ge=..., le=...)`.
    Unknown keys are rejected so a typo in `--set epcohs=3` is an error, not silently ignored.
    """

    model_config = ConfigDict(extra="forbid", validate_default=True)


ConfigT = TypeVar("ConfigT", bound=PipelineConfig)
"""A pipeline's own config model, as `Pipeline[ConfigT]` declares it."""


class ConfigError(ValueError):
    """A config that does not validate; `errors` lists `(field path, message)` pairs."""

    def __init__(self, pipeline_id: str, errors: list[tuple[str, str]]) -> None:
        self.pipeline_id = pipeline_id
        self.errors = errors
        lines = "; ".join(f"{path or '<root>'}: {msg}" for path, msg in errors)
        super().__init__(f"invalid config for pipeline {pipeline_id!r}: {lines}")


class PredictionNotSupportedError(NotImplementedError):
    """The pipeline has no `predict`: its saved models cannot serve predictions."""

    def __init__(self, pipeline_id: str) -> None:
        self.pipeline_id = pipeline_id
        super().__init__(f"pipeline {pipeline_id!r} does not support prediction")


class FieldError(ValueError):
    """Raise from a config's model validator to blame one field of a cross-field rule, so the
    error lands next to that field: `raise FieldError("data_path", "is required for ...")`."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def _field_error(err: Mapping[str, Any]) -> tuple[str, str]:
    path = [str(p) for p in err["loc"]]
    cause = (err.get("ctx") or {}).get("error")
    if isinstance(cause, FieldError):
        return ".".join([*path, cause.field]), str(cause)
    if isinstance(cause, PathNotAllowedError):
        return ".".join(path), str(cause)
    return ".".join(path), str(err["msg"])


class Pipeline(ABC, Generic[ConfigT]):
    """A unit of work the platform can run: a training job, a tuning sweep, ...

    Subclasses set the class attributes, define a nested `Config(PipelineConfig)` and implement
    `run`. The platform validates the user's config, builds a `RunContext` and calls `run` in a
    worker process; the pipeline reports progress, metrics, logs and events through the context.

    Name the config model as the type argument too, and `run` is type-checked against it:
    `class Forecaster(Pipeline[ForecasterConfig])` with `Config = ForecasterConfig` and
    `def run(self, config: ForecasterConfig, context)`. (A class variable cannot be generic,
    so the two are written out; a plain `Pipeline` subclass works as well, untyped.)
    """

    id: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[str] = "0.1.0"
    # True for a pipeline whose runs start child runs and wait on them (a hyperparameter
    # study): the platform runs them beside the worker slots, never in one its children need.
    coordinator: ClassVar[bool] = False
    Config: ClassVar[type[PipelineConfig]] = PipelineConfig

    @abstractmethod
    def run(self, config: ConfigT, context: RunContext) -> RunResult:
        """Do the work. `config` is an instance of `self.Config`, already validated."""

    @classmethod
    def predict(cls, model_path: str | os.PathLike[str], inputs: Any) -> Any:
        """Predictions of the model saved at `model_path` (an artifact of one of this
        pipeline's runs) for RAW `inputs` in the dataset's own form (price rows, weather rows,
        0-255 images, ...), or a `pathlib.Path` to a file (an upload). A `str` is data, never
        a file to open: it may come from a client. The result must be JSON-serialisable.
        Pipelines that save a usable model override this; the default says prediction is not
        supported."""
        raise PredictionNotSupportedError(cls.id)

    @classmethod
    def validate_config(
        cls,
        raw: Mapping[str, Any] | PipelineConfig | None,
        *,
        path_policy: PathPolicy | None = None,
    ) -> PipelineConfig:
        """Turn user input into a `Config` instance, raising `ConfigError` with field paths.
        `path_policy` checks (and at run time resolves) every `DataPath` field."""
        if isinstance(raw, cls.Config) and path_policy is None:
            return raw
        data = raw.model_dump() if isinstance(raw, BaseModel) else dict(raw or {})
        context = {PATH_POLICY_KEY: path_policy} if path_policy is not None else None
        try:
            return cls.Config.model_validate(data, context=context)
        except ValidationError as exc:
            raise ConfigError(cls.id, [_field_error(err) for err in exc.errors()]) from None

    @classmethod
    def config_schema(cls) -> dict[str, Any]:
        """JSON Schema of the config, the source of a dashboard's form."""
        return cls.Config.model_json_schema()

    @classmethod
    def default_config(cls) -> dict[str, Any]:
        """The defaults as JSON values (fields without a default are left out)."""
        return {
            name: to_jsonable_python(field.get_default(call_default_factory=True))
            for name, field in cls.Config.model_fields.items()
            if not field.is_required()
        }

    @classmethod
    def describe(cls) -> dict[str, Any]:
        """Everything a catalog or an API needs to show this pipeline."""
        return {
            "id": cls.id,
            "name": cls.name,
            "description": cls.description,
            "version": cls.version,
            "config_schema": cls.config_schema(),
            "default_config": cls.default_config(),
        }
