"""The search space: what a user may ask to tune, checked against the target pipeline's own
config model, and its translation into Optuna distributions.

A parameter names a top-level field of the target's config. Its range ends (or each choice)
are validated by that config model itself, merged into the fixed rest of the config, so a
bound the pipeline would refuse is refused here, before a single trial runs, with the
pipeline's own message.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from azuraforge_pipeline import ConfigError, FieldError, PathPolicy, Pipeline

__all__ = ["MAX_GRID", "ParamSpec", "check_space", "distributions", "grid", "params_of"]

MAX_GRID = 10_000  # grid points a study may enumerate

Scalar = str | int | float | bool | None


def _invalid(message: str) -> PydanticCustomError:
    # the message as the user reads it, without pydantic's "Value error, " in front
    return PydanticCustomError("invalid_parameter", message)


class ParamSpec(BaseModel):
    """One tuned parameter: an integer or float range (optionally log-scaled or stepped), or
    a list of choices (any JSON values, e.g. `[[16, 32], [32, 64]]` for a list field)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["int", "float", "choice"] = Field(
        description="int or float: a range from low to high; choice: one of `choices`."
    )
    low: float | None = Field(None, description="Lowest value (int and float).")
    high: float | None = Field(None, description="Highest value (int and float).")
    log: bool = Field(False, description="Sample on a log scale (needs low > 0).")
    step: float | None = Field(
        None, gt=0, description="Only values low + k*step (a grid search needs one for floats)."
    )
    choices: list[Any] | None = Field(
        None, min_length=1, max_length=1000, description="The values to choose from (choice)."
    )

    @model_validator(mode="after")
    def _shape(self) -> ParamSpec:
        if self.type == "choice":
            if self.choices is None:
                raise _invalid("a choice parameter needs `choices`")
            if self.low is not None or self.high is not None or self.log or self.step:
                raise _invalid("a choice parameter takes only `choices`")
            if len({_key(c) for c in self.choices}) != len(self.choices):
                raise _invalid("choices must differ from each other")
            return self
        if self.choices is not None:
            raise _invalid(f"an {self.type} range takes low/high, not choices")
        if self.low is None or self.high is None:
            raise _invalid(f"an {self.type} range needs low and high")
        if not (math.isfinite(self.low) and math.isfinite(self.high)):
            raise _invalid("low and high must be finite numbers")
        if self.low > self.high:
            raise _invalid(f"low ({self.low:g}) is above high ({self.high:g})")
        if self.log and self.low <= 0:
            raise _invalid("a log scale needs low > 0")
        if self.log and self.step is not None:
            raise _invalid("choose either a log scale or a step, not both")
        if self.type == "int":
            for name in ("low", "high", "step"):
                value = getattr(self, name)
                if value is not None and value != int(value):
                    raise _invalid(f"an int range needs a whole {name} (got {value:g})")
        return self

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.type == "choice":
            assert self.choices is not None
            return optuna.distributions.CategoricalDistribution([_key(c) for c in self.choices])
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step) if self.step is not None else 1
            return optuna.distributions.IntDistribution(
                int(self.low), int(self.high), log=self.log, step=step
            )
        return optuna.distributions.FloatDistribution(
            self.low, self.high, log=self.log, step=self.step
        )

    def value(self, suggested: Any) -> Any:
        """The config value of an Optuna suggestion."""
        if self.type == "choice":
            return _unkey(suggested)
        return int(suggested) if self.type == "int" else float(suggested)

    def suggestion(self, value: Any) -> Any:
        """The Optuna value of a config value (a resumed trial's)."""
        if self.type == "choice":
            return _key(value)
        return int(value) if self.type == "int" else float(value)

    def points(self) -> list[Any] | None:
        """Every value, for a grid search; None for a continuous range."""
        if self.type == "choice":
            assert self.choices is not None
            return [_key(c) for c in self.choices]
        assert self.low is not None and self.high is not None
        if self.type == "int":
            step = int(self.step) if self.step is not None else 1
            return list(range(int(self.low), int(self.high) + 1, step))
        if self.step is None:
            return None
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [round(self.low + k * self.step, 12) for k in range(count)]

    def ends(self) -> list[Any]:
        """The values to check against the target's config model."""
        if self.type == "choice":
            assert self.choices is not None
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.type == "int":
            return [int(self.low), int(self.high)]
        return [self.low, self.high]


def _key(choice: Any) -> Scalar:
    """Optuna takes only scalars as categories: anything else travels as its JSON text."""
    if choice is None or isinstance(choice, str | int | float | bool):
        return choice
    return "json:" + json.dumps(choice, sort_keys=True)


def _unkey(key: Any) -> Any:
    if isinstance(key, str) and key.startswith("json:"):
        return json.loads(key[5:])
    return key


def _field_kinds(target: type[Pipeline]) -> dict[str, set[str]]:
    """The JSON types each top-level field of the target's config accepts."""
    schema = target.Config.model_json_schema()
    defs = schema.get("$defs", {})
    kinds: dict[str, set[str]] = {}

    def types_of(node: Mapping[str, Any]) -> set[str]:
        if "$ref" in node:
            return types_of(defs.get(node["$ref"].rsplit("/", 1)[-1], {}))
        found: set[str] = set()
        for key in ("anyOf", "oneOf", "allOf"):
            for part in node.get(key, []):
                found |= types_of(part)
        kind = node.get("type")
        if isinstance(kind, str):
            found.add(kind)
        elif isinstance(kind, list):
            found.update(kind)
        if "enum" in node or "const" in node:
            found.add("enum")
        return found

    for name, node in schema.get("properties", {}).items():
        kinds[name] = types_of(node)
    return kinds


def check_space(
    space: Mapping[str, ParamSpec],
    target: type[Pipeline],
    base_config: Mapping[str, Any],
    path_policy: PathPolicy | None,
) -> None:
    """Raise `FieldError` (blaming `space.<name>`) for a parameter the target does not have,
    a range its type cannot take, or a value its config model refuses."""
    kinds = _field_kinds(target)
    for name, spec in space.items():
        where = f"space.{name}"
        if name not in kinds:
            known = ", ".join(sorted(kinds))
            raise FieldError(where, f"pipeline {target.id!r} has no setting {name!r} ({known})")
        if name in base_config:
            raise FieldError(where, f"{name!r} is tuned, so it cannot be fixed in base_config too")
        accepted = kinds[name]
        if spec.type == "int" and not accepted & {"integer", "number"}:
            raise FieldError(where, f"{name!r} is not a number, so it takes no int range")
        if spec.type == "float" and "number" not in accepted:
            hint = " (use type int)" if "integer" in accepted else ""
            raise FieldError(where, f"{name!r} takes no fractional values{hint}")
        for value in spec.ends():
            try:
                target.validate_config({**base_config, name: value}, path_policy=path_policy)
            except ConfigError as exc:
                about = [m for p, m in exc.errors if p == name or p.startswith(f"{name}.")]
                message = about[0] if about else "; ".join(m for _, m in exc.errors)
                raise FieldError(
                    where, f"{json.dumps(value)} is not a valid {name}: {message}"
                ) from None


def distributions(space: Mapping[str, ParamSpec]) -> dict[str, Any]:
    return {name: spec.distribution() for name, spec in space.items()}


def grid(space: Mapping[str, ParamSpec]) -> dict[str, list[Any]]:
    """The grid of a grid search (`FieldError` when a parameter is continuous or the grid is
    too big to enumerate)."""
    points: dict[str, list[Any]] = {}
    size = 1
    for name, spec in space.items():
        values = spec.points()
        if values is None:
            raise FieldError(
                f"space.{name}", "a grid search needs a step for a float range (or choices)"
            )
        points[name] = values
        size *= len(values)
        if size > MAX_GRID:
            raise FieldError("space", f"the grid has more than {MAX_GRID:,} points")
    return points


def params_of(space: Mapping[str, ParamSpec], config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Optuna params of a trial's config (None when it lacks one, or one is off the
    space: such a trial cannot be told to this study's sampler)."""
    params = {}
    for name, spec in space.items():
        if name not in config:
            return None
        try:
            value = spec.suggestion(config[name])
        except (TypeError, ValueError):
            return None
        if spec.type == "choice":
            if value not in (spec.points() or []):
                return None
        elif not (
            spec.low is not None and spec.high is not None and spec.low <= value <= spec.high
        ):
            return None
        params[name] = value
    return params
