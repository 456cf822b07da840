"""Studies through the API: a search space is checked against the target pipeline's own
config before anything is queued, data paths included; a valid study is a coordinator run."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

API = "/api/v1"


def _study(trainer: str, **changes: Any) -> dict[str, Any]:
    config = {
        "target": trainer,
        "objective": "loss",
        "direction": "minimize",
        "space": {"lr": {"type": "float", "low": 0.01, "high": 0.5, "log": True}},
        "base_config": {"epochs": 5},
        "n_trials": 3,
        **changes,
    }
    return {"pipeline_id": "hyper_tuner", "config": config}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        (
            {"space": {"nope": {"type": "int", "low": 1, "high": 2}}},
            "config.space.nope",
            "no setting",
        ),
        (
            {"space": {"lr": {"type": "float", "low": 0.1, "high": 2}}},
            "config.space.lr",
            "not a valid lr",
        ),
        (
            {"space": {"samples": {"type": "float", "low": 2, "high": 9}}},
            "config.space.samples",
            "fractional",
        ),
        (
            {"space": {"lr": {"type": "float", "low": 1, "high": 0.5}}},
            "config.space.lr",
            "above high",
        ),
        ({"base_config": {"epochs": 0}}, "config.base_config.epochs", "greater than or equal"),
        ({"base_config": {"csv_path": "/etc/passwd"}}, "config.base_config.csv_path", "outside"),
        (
            {"space": {"csv_path": {"type": "choice", "choices": ["/etc/passwd"]}}},
            "config.space.csv_path",
            "outside",
        ),
        ({"target": "no_such_pipeline"}, "config.target", "no installed pipeline"),
        ({"target": "hyper_tuner"}, "config.target", "runs studies itself"),
        ({"objective": "test_mae"}, "config.objective", "never on the test split"),
        ({"sampler": "grid"}, "config.space.lr", "needs a step"),
    ],
)
def test_an_invalid_study_is_a_422_naming_the_field(
    api: TestClient, trainer: str, changes: dict[str, Any], field: str, words: str
) -> None:
    response = api.post(f"{API}/experiments", json=_study(trainer, **changes))
    assert response.status_code == 422, response.text
    fields = response.json()["error"]["fields"]
    assert any(f["path"] == field and words in f["message"] for f in fields), fields
    assert "root:" not in response.text  # nothing of the file
    assert api.get(f"{API}/experiments").json()["items"] == []  # nothing was queued


def test_a_valid_study_is_queued_as_a_coordinator(api: TestClient, trainer: str) -> None:
    response = api.post(f"{API}/experiments", json=_study(trainer))
    assert response.status_code == 201, response.text
    study = response.json()
    assert study["pipeline_id"] == "hyper_tuner" and study["status"] == "queued"
    store = api.app.state.services.store  # type: ignore[attr-defined]
    assert store.get(study["id"]).coordinator
    # the trial settings are stored as given, the rest of the tuner's config filled in
    assert study["config"]["base_config"] == {"epochs": 5}
    assert study["config"]["sampler"] == "tpe" and study["config"]["parallel"] == 2
