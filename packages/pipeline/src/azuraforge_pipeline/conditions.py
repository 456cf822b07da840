"""`x-applies-when`: a JSON Schema extension that says a config field matters only for some
values of its sibling fields (a ticker only for the online dataset, a CSV path only for `csv`).

A field declares it with `Field(..., json_schema_extra=applies_when(dataset=["csv"]))`; its
schema property then carries `"x-applies-when": {"dataset": ["csv"]}`. The field applies when
every named sibling (a property of the same object) holds one of the listed values; a field
whose controlling sibling does not apply does not apply either. A form hides a field that does
not apply and leaves it out of the config it submits, so the pipeline gets the field's default:
such a field must have one. The extension is presentation only: validation stays with the
config's validators (a `model_validator` still demands `csv_path` when the dataset is `csv`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import to_jsonable_python

__all__ = ["APPLIES_WHEN", "applies_when", "applies_when_problems"]

APPLIES_WHEN = "x-applies-when"


def applies_when(**conditions: Iterable[Any]) -> dict[str, Any]:
    """The `json_schema_extra` of a field that applies only while each named sibling holds
    one of the given values: `applies_when(dataset=["csv"])`, `applies_when(augment=[True])`."""
    if not conditions:
        raise ValueError("applies_when needs at least one condition, e.g. dataset=['csv']")
    out: dict[str, list[Any]] = {}
    for name, values in conditions.items():
        if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
            raise TypeError(f"applies_when({name}=...) takes a list of values, got {values!r}")
        listed = [to_jsonable_python(v) for v in values]
        if not listed:
            raise ValueError(f"applies_when({name}=[]) lists no value, so the field never applies")
        out[name] = listed
    return {APPLIES_WHEN: out}


def applies_when_problems(config: type[BaseModel]) -> list[str]:
    """What is wrong with the `x-applies-when` conditions of `config` (and its nested models):
    a condition that names no sibling field, a value that sibling does not accept, or a
    conditional field without a default. Empty when all is well; for a plugin's tests."""
    problems: list[str] = []
    _check(config, "", problems, set())
    return problems


def _check(model: type[BaseModel], prefix: str, problems: list[str], seen: set[type]) -> None:
    if model in seen:
        return
    seen.add(model)
    for name, info in model.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and APPLIES_WHEN in extra:
            problems.extend(_field_problems(model, name, extra[APPLIES_WHEN], prefix))
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
            _check(info.annotation, f"{prefix}{name}.", problems, seen)


def _field_problems(model: type[BaseModel], name: str, conditions: Any, prefix: str) -> list[str]:
    path, fields = f"{prefix}{name}", model.model_fields
    if not isinstance(conditions, dict) or not conditions:
        return [f"{path}: {APPLIES_WHEN} must map sibling fields to value lists"]
    problems = []
    if fields[name].is_required():
        problems.append(
            f"{path}: a field that may not apply needs a default (a form leaves it out)"
        )
    for sibling, values in conditions.items():
        if sibling == name or sibling not in fields:
            problems.append(f"{path}: {APPLIES_WHEN} names {sibling!r}, not a sibling field")
            continue
        if not isinstance(values, list) or not values:
            problems.append(f"{path}: {APPLIES_WHEN}[{sibling!r}] must be a non-empty list")
            continue
        annotation = fields[sibling].annotation
        adapter: TypeAdapter[Any] = TypeAdapter(Any if annotation is None else annotation)
        for value in values:
            try:  # as the form compares them: JSON values, no coercion ("yes" is no bool)
                adapter.validate_json(json.dumps(value), strict=True)
            except ValidationError:
                problems.append(
                    f"{path}: {APPLIES_WHEN}[{sibling!r}] lists {value!r}, which {sibling} "
                    "does not accept"
                )
    return problems
