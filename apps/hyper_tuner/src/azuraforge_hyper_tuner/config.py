"""The config of a study: the target pipeline, what to optimise, the search space, the fixed
rest of the target's config, and how to search."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from azuraforge_pipeline import (
    ConfigError,
    FieldError,
    Pipeline,
    PipelineConfig,
    UnknownPipelineError,
    applies_when,
    discover,
)
from azuraforge_pipeline.paths import PATH_POLICY_KEY

from .space import ParamSpec, check_space, grid

__all__ = ["TARGETS_KEY", "HyperTunerConfig", "resolve_target"]

# Validation-context key: pipelines to tune by id, instead of the installed ones (tests).
TARGETS_KEY = "azuraforge_tuner_targets"


def resolve_target(pipeline_id: str, context: Any = None) -> type[Pipeline]:
    """The class of the pipeline to tune (`FieldError` on `target` when unknown)."""
    given = context.get(TARGETS_KEY) if isinstance(context, dict) else None
    if given is not None:
        if pipeline_id not in given:
            raise FieldError("target", f"unknown pipeline {pipeline_id!r}")
        cls: type[Pipeline] = given[pipeline_id]
        return cls
    found = discover(only=[pipeline_id])
    try:
        return found.get(pipeline_id)
    except UnknownPipelineError:
        if found.errors:
            error = found.errors[0].error
            raise FieldError(
                "target", f"pipeline {pipeline_id!r} failed to load: {error}"
            ) from None
        known = ", ".join(p for p in discover().ids() if p != "hyper_tuner")
        raise FieldError(
            "target", f"no installed pipeline {pipeline_id!r} (installed: {known})"
        ) from None


class HyperTunerConfig(PipelineConfig):
    target: str = Field(
        "image_classifier",
        min_length=1,
        max_length=100,
        title="Pipeline to tune",
        description="Id of an installed pipeline; each trial is a run of it.",
    )
    objective: str = Field(
        "val_accuracy",
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.\-/]+$",
        title="Objective metric",
        description=(
            "A validation metric the target reports (its final value, or its best per-epoch "
            "value), e.g. val_accuracy or val_mae. Test metrics are refused: a score tuned on "
            "the test split says nothing about new data."
        ),
    )
    direction: Literal["minimize", "maximize"] = Field(
        "maximize", title="Direction", description="Whether a lower or a higher objective wins."
    )
    space: dict[str, ParamSpec] = Field(
        default_factory=lambda: {
            "learning_rate": ParamSpec.model_validate(
                {"type": "float", "low": 3e-4, "high": 1e-2, "log": True}
            ),
            "hidden_units": ParamSpec.model_validate(
                {"type": "int", "low": 32, "high": 256, "step": 32}
            ),
        },
        min_length=1,
        max_length=32,
        title="Search space",
        description="Per setting of the target: an int or float range (log scale or step "
        "optional) or a list of choices.",
    )
    base_config: dict[str, Any] = Field(
        default_factory=dict,
        title="Fixed settings",
        description="The rest of the target's config, the same for every trial.",
    )
    sampler: Literal["tpe", "random", "grid"] = Field(
        "tpe",
        title="Sampler",
        description="tpe: learns from finished trials (Optuna's TPE, with a constant liar so "
        "parallel trials differ); random; grid: every combination (needs discrete values).",
    )
    pruner: Literal["none", "median", "successive_halving"] = Field(
        "none",
        title="Pruning",
        description="Stop unpromising trials early from their per-epoch objective: median "
        "(below the median of earlier trials at the same epoch) or successive halving.",
    )
    n_trials: int = Field(20, ge=1, le=1000, title="Trials", description="How many to run.")
    parallel: int = Field(
        2, ge=1, le=64, title="Parallel trials", description="How many run at once."
    )
    timeout_minutes: float | None = Field(
        None,
        gt=0,
        le=10080,
        title="Time budget (minutes)",
        description="Start no new trial after this long; empty means no limit.",
    )
    seed: int | None = Field(
        0,
        ge=0,
        le=2**31 - 1,
        title="Seed",
        description="Seeds the sampler: a study of one trial at a time repeats exactly.",
    )
    startup_trials: int = Field(
        5,
        ge=0,
        le=100,
        title="Startup trials",
        description="Random trials before TPE models the space (and before pruning starts).",
        json_schema_extra=applies_when(sampler=["tpe"]),
    )

    @model_validator(mode="after")
    def _against_target(self, info: ValidationInfo) -> HyperTunerConfig:
        if self.objective.startswith("test_") or ".test" in self.objective:
            raise FieldError(
                "objective",
                "tune on a validation metric (val_...), never on the test split",
            )
        target = resolve_target(self.target, info.context)
        if target.coordinator:
            raise FieldError("target", f"{self.target!r} runs studies itself; tune a model")
        policy = info.context.get(PATH_POLICY_KEY) if isinstance(info.context, dict) else None
        try:
            validated = target.validate_config(self.base_config, path_policy=policy)
        except ConfigError as exc:
            path, message = exc.errors[0]
            raise FieldError(f"base_config.{path}" if path else "base_config", message) from None
        # the given settings as the target stores them (a local run's paths made absolute)
        stored = validated.model_dump(mode="json")
        self.base_config = {key: stored.get(key, value) for key, value in self.base_config.items()}
        check_space(self.space, target, self.base_config, policy)
        if self.sampler == "grid":
            grid(self.space)
        return self
