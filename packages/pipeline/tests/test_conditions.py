"""The x-applies-when schema extension: what `applies_when` declares and what
`applies_when_problems` catches before a form meets it."""

from __future__ import annotations

from datetime import date
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from azuraforge_pipeline import APPLIES_WHEN, PipelineConfig, applies_when, applies_when_problems


class Good(PipelineConfig):
    dataset: Literal["builtin", "online", "csv"] = "builtin"
    csv_path: str | None = Field(None, json_schema_extra=applies_when(dataset=["csv"]))
    start: date = Field(date(2020, 1, 1), json_schema_extra=applies_when(dataset=["online"]))
    augment: bool = True
    strength: float = Field(0.5, json_schema_extra=applies_when(augment=[True]))
    remote_only: int = Field(
        1, json_schema_extra=applies_when(dataset=["online", "csv"], augment=[False])
    )


def test_the_schema_carries_the_conditions_as_json():
    props = Good.model_json_schema()["properties"]
    assert APPLIES_WHEN == "x-applies-when"
    assert props["csv_path"]["x-applies-when"] == {"dataset": ["csv"]}
    assert props["strength"]["x-applies-when"] == {"augment": [True]}
    assert props["remote_only"]["x-applies-when"] == {
        "dataset": ["online", "csv"],
        "augment": [False],
    }
    assert "x-applies-when" not in props["dataset"] and "x-applies-when" not in props["augment"]
    assert applies_when_problems(Good) == []


def test_applies_when_refuses_what_could_never_apply():
    with pytest.raises(ValueError, match="at least one condition"):
        applies_when()
    with pytest.raises(ValueError, match=r"dataset=\[\]"):
        applies_when(dataset=[])
    with pytest.raises(TypeError, match="list of values"):
        applies_when(dataset="csv")  # a string is no list: it would read as 'c', 's', 'v'


def test_problems_name_the_field_and_what_is_wrong():
    class Bad(PipelineConfig):
        dataset: Literal["builtin", "csv"] = "builtin"
        flag: bool = False
        typo: str = Field("", json_schema_extra=applies_when(datset=["csv"]))
        own: str = Field("", json_schema_extra=applies_when(own=["x"]))
        unknown_value: str = Field("", json_schema_extra=applies_when(dataset=["cvs"]))
        loose_bool: str = Field("", json_schema_extra=applies_when(flag=["yes"]))
        needs_value: str = Field(json_schema_extra=applies_when(dataset=["csv"]))
        malformed: str = Field("", json_schema_extra={APPLIES_WHEN: {"dataset": "csv"}})

    assert applies_when_problems(Bad) == [
        "typo: x-applies-when names 'datset', not a sibling field",
        "own: x-applies-when names 'own', not a sibling field",
        "unknown_value: x-applies-when['dataset'] lists 'cvs', which dataset does not accept",
        "loose_bool: x-applies-when['flag'] lists 'yes', which flag does not accept",
        "needs_value: a field that may not apply needs a default (a form leaves it out)",
        "malformed: x-applies-when['dataset'] must be a non-empty list",
    ]


def test_nested_models_are_checked_against_their_own_fields():
    class Optimizer(BaseModel):
        name: Literal["adam", "sgd"] = "adam"
        momentum: float = Field(0.9, json_schema_extra=applies_when(name=["sgd"]))
        beta: float = Field(0.9, json_schema_extra=applies_when(dataset=["csv"]))  # not a sibling

    class Nested(PipelineConfig):
        dataset: Literal["builtin", "csv"] = "builtin"
        optimizer: Optimizer = Optimizer()

    schema = Nested.model_json_schema()
    assert schema["$defs"]["Optimizer"]["properties"]["momentum"]["x-applies-when"] == {
        "name": ["sgd"]
    }
    assert applies_when_problems(Nested) == [
        "optimizer.beta: x-applies-when names 'dataset', not a sibling field"
    ]
