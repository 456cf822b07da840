"""Studies over a fast toy pipeline, with trials run by the contract's `InlineLauncher` (the
platform's own launcher is tested in packages/platform/tests/test_studies.py)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from azuraforge_hyper_tuner import HyperTuner, HyperTunerConfig
from azuraforge_hyper_tuner.config import TARGETS_KEY
from azuraforge_hyper_tuner.study import Study
from pydantic import Field, ValidationError

from azuraforge_pipeline import (
    ChildrenNotSupportedError,
    FieldError,
    InlineLauncher,
    Pipeline,
    PipelineConfig,
    RecordingReporter,
    RunContext,
)


class Bowl(Pipeline):
    """A "training" whose validation loss after each epoch is (x-3)^2 + (y+1)^2 + 1/epoch, so
    the optimum is known: x=3, y=-1."""

    id: ClassVar[str] = "bowl"
    name: ClassVar[str] = "Bowl"

    class Config(PipelineConfig):
        x: float = Field(0.0, ge=-10, le=10)
        y: float = Field(0.0, ge=-10, le=10)
        k: int = Field(1, ge=1, le=8)
        kind: str = "a"
        layers: list[int] = Field(default_factory=lambda: [8])
        epochs: int = Field(4, ge=1, le=50)
        sleep: float = 0.0

    def run(self, config: Any, context: RunContext) -> dict[str, float]:
        base = (config.x - 3) ** 2 + (config.y + 1) ** 2 + 0.1 * config.k
        for epoch in range(1, config.epochs + 1):
            context.check_cancelled()
            time.sleep(config.sleep)
            context.log_metrics({"val_loss": base + 1 / epoch}, epoch=epoch)
        return {"val_loss": base + 1 / config.epochs, "layers": len(config.layers)}


class Broken(Pipeline):
    id: ClassVar[str] = "broken"
    name: ClassVar[str] = "Broken"

    class Config(PipelineConfig):
        x: float = 0.0

    def run(self, config: Any, context: RunContext) -> None:
        if config.x > 0:
            raise RuntimeError("diverged")
        context.log_metrics({"val_loss": 1.0}, epoch=1)


TARGETS = {"bowl": Bowl, "broken": Broken}


def study_config(**overrides: Any) -> HyperTunerConfig:
    raw = {
        "target": "bowl",
        "objective": "val_loss",
        "direction": "minimize",
        "space": {
            "x": {"type": "float", "low": -5, "high": 5},
            "y": {"type": "float", "low": -5, "high": 5},
        },
        "base_config": {"epochs": 3},
        "n_trials": 12,
        "parallel": 2,
        "startup_trials": 4,
        **overrides,
    }
    return HyperTunerConfig.model_validate(raw, context={TARGETS_KEY: TARGETS})


def run_study(tmp_path: Path, config: HyperTunerConfig, parallel: int = 2) -> tuple[dict, Any]:
    launcher = InlineLauncher(TARGETS, tmp_path / "trials", parallel=parallel)
    reporter = RecordingReporter()
    context = RunContext(
        artifact_dir=tmp_path / "study", reporter=reporter, launcher=launcher, experiment_id="s1"
    )
    results = Study(config, context, poll_seconds=0.01).run()
    launcher.join(5)
    return results, (launcher, reporter)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_study_runs_to_completion_and_finds_the_bowl(tmp_path: Path, sampler: str) -> None:
    results, (launcher, reporter) = run_study(tmp_path, study_config(sampler=sampler, n_trials=25))
    assert results["n_trials"] == 25 and results["n_complete"] == 25
    values = [t["value"] for t in results["trials"]]
    assert results["best_value"] == min(values)
    best = results["best_params"]
    # 25 trials in a 10x10 box: the best lands near the optimum (3, -1), far from the middle
    assert (best["x"] - 3) ** 2 + (best["y"] + 1) ** 2 < 8
    assert results["best_config"] == {"epochs": 3, **best}
    # every child ran with the base config plus its params, tagged as a trial
    children = launcher.children()
    assert len(children) == 25 and all(c.config["epochs"] == 3 for c in children)
    assert all("trial" in c.tags for c in children)
    # the study streamed one "trial" event per start and per end
    ends = [p for t, p in reporter.events if t == "trial" and p["state"] != "running"]
    assert len(ends) == 25
    assert set(results["importances"]) == {"x", "y"}


def test_tpe_beats_random_on_the_same_budget(tmp_path: Path) -> None:
    tpe, _ = run_study(tmp_path / "tpe", study_config(sampler="tpe", n_trials=30, parallel=1))
    rnd, _ = run_study(tmp_path / "rnd", study_config(sampler="random", n_trials=30, parallel=1))
    assert tpe["best_value"] < rnd["best_value"]


def test_grid_search_visits_every_point_once(tmp_path: Path) -> None:
    config = study_config(
        sampler="grid",
        n_trials=100,
        space={
            "k": {"type": "int", "low": 1, "high": 3},
            "kind": {"type": "choice", "choices": ["a", "b"]},
            "layers": {"type": "choice", "choices": [[8], [16, 8]]},
        },
    )
    results, _ = run_study(tmp_path, config)
    assert results["n_trials"] == 12  # 3 x 2 x 2, then the grid is exhausted
    points = {json.dumps(t["params"], sort_keys=True) for t in results["trials"]}
    assert len(points) == 12
    assert {json.dumps(t["params"]["layers"]) for t in results["trials"]} == {"[8]", "[16, 8]"}


def test_seeded_studies_repeat(tmp_path: Path) -> None:
    one, _ = run_study(tmp_path / "a", study_config(n_trials=8, parallel=1, seed=7))
    two, _ = run_study(tmp_path / "b", study_config(n_trials=8, parallel=1, seed=7))
    other, _ = run_study(tmp_path / "c", study_config(n_trials=8, parallel=1, seed=8))
    assert [t["params"] for t in one["trials"]] == [t["params"] for t in two["trials"]]
    assert [t["params"] for t in one["trials"]] != [t["params"] for t in other["trials"]]


def test_parallel_tpe_trials_get_different_suggestions(tmp_path: Path) -> None:
    config = study_config(n_trials=12, parallel=4, startup_trials=2)
    results, _ = run_study(tmp_path, config, parallel=4)
    points = [(t["params"]["x"], t["params"]["y"]) for t in results["trials"]]
    assert len(set(points)) == len(points)


def test_pruning_stops_bad_trials_early(tmp_path: Path) -> None:
    config = study_config(
        n_trials=16,
        parallel=1,
        pruner="median",
        startup_trials=3,
        base_config={"epochs": 12, "sleep": 0.01},
    )
    results, (launcher, _) = run_study(tmp_path, config, parallel=1)
    pruned = [t for t in results["trials"] if t["state"] == "pruned"]
    assert pruned, "a median pruner over 16 trials of a bowl prunes some"
    for trial in pruned:
        assert trial["epochs"] < 12  # stopped early
        child = launcher.state(trial["experiment_id"])
        assert child.status == "cancelled" and "pruned" in child.tags
    assert results["n_pruned"] == len(pruned)
    assert results["n_complete"] + len(pruned) == 16


def test_failed_trials_are_told_and_the_study_goes_on(tmp_path: Path) -> None:
    config = HyperTunerConfig.model_validate(
        {
            "target": "broken",
            "objective": "val_loss",
            "direction": "minimize",
            "space": {"x": {"type": "float", "low": -1, "high": 1}},
            "base_config": {},
            "n_trials": 10,
            "sampler": "random",
        },
        context={TARGETS_KEY: TARGETS},
    )
    results, _ = run_study(tmp_path, config)
    failed = [t for t in results["trials"] if t["state"] == "failed"]
    assert failed and all("diverged" in t["error"] for t in failed)
    assert results["n_complete"] + len(failed) == 10
    assert results["best_value"] == 1.0


def test_cancelling_the_study_cancels_its_running_trials(tmp_path: Path) -> None:
    config = study_config(n_trials=20, parallel=2, base_config={"epochs": 50, "sleep": 0.05})
    launcher = InlineLauncher(TARGETS, tmp_path / "trials", parallel=2)
    context = RunContext(artifact_dir=tmp_path / "study", launcher=launcher)
    threading.Timer(0.5, context.request_stop).start()
    with pytest.raises(Exception, match="cancelled"):
        Study(config, context, poll_seconds=0.01).run()
    launcher.join(10)
    states = [c.status for c in launcher.children()]
    assert states and all(s == "cancelled" for s in states)


def test_a_resumed_study_adopts_finished_and_running_trials(tmp_path: Path) -> None:
    launcher = InlineLauncher(TARGETS, tmp_path / "trials", parallel=2)
    first = RunContext(artifact_dir=tmp_path / "s", launcher=launcher)
    config = study_config(n_trials=6, parallel=2, base_config={"epochs": 3, "sleep": 0.05})
    study = Study(config, first, poll_seconds=0.01)
    for _ in range(3):
        study._launch()  # three trials started, then the study's process "dies"
    time.sleep(0.4)  # two finish, one still runs (two slots)
    before = {c.id for c in launcher.children()}
    second = RunContext(artifact_dir=tmp_path / "s", launcher=launcher)
    results = Study(config, second, poll_seconds=0.01).run()
    launcher.join(5)
    assert results["n_trials"] == 6 and results["n_complete"] == 6
    ids = [t["experiment_id"] for t in results["trials"]]
    assert before <= set(ids)  # the earlier trials count, none ran twice
    assert len(launcher.children()) == 6


def test_the_pipeline_refuses_to_run_without_the_platform(tmp_path: Path) -> None:
    context = RunContext(artifact_dir=tmp_path)
    with pytest.raises(ChildrenNotSupportedError, match="on the platform"):
        HyperTuner().run(study_config(), context)


def test_the_pipeline_saves_its_results(tmp_path: Path) -> None:
    launcher = InlineLauncher(TARGETS, tmp_path / "trials", parallel=2)
    context = RunContext(artifact_dir=tmp_path / "study", launcher=launcher)
    summary = HyperTuner().run(study_config(n_trials=4), context)
    assert summary is not None and summary["n_complete"] == 4
    saved = json.loads((tmp_path / "study" / "study.json").read_text())
    assert saved["best_value"] == summary["best_value"]
    rows = (tmp_path / "study" / "trials.csv").read_text().splitlines()
    assert rows[0].startswith("number,experiment_id,state,value") and len(rows) == 5


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"space": {"z": {"type": "float", "low": 0, "high": 1}}}, "space.z", "no setting 'z'"),
        ({"space": {"x": {"type": "float", "low": 0, "high": 20}}}, "space.x", "not a valid x"),
        ({"space": {"k": {"type": "float", "low": 1, "high": 2}}}, "space.k", "fractional"),
        ({"space": {"k": {"type": "int", "low": 0, "high": 4}}}, "space.k", "not a valid k"),
        ({"space": {"x": {"type": "float", "low": 2, "high": 1}}}, "space.x", "above high"),
        (
            {"space": {"x": {"type": "float", "low": 0, "high": 1, "log": True}}},
            "space.x",
            "low > 0",
        ),
        ({"space": {"kind": {"type": "choice", "choices": ["a", "a"]}}}, "space.kind", "differ"),
        ({"space": {"epochs": {"type": "choice", "choices": [1, 99]}}}, "space.epochs", "99"),
        ({"base_config": {"x": 1}}, "space.x", "cannot be fixed"),
        ({"base_config": {"epochs": 0}}, "base_config.epochs", "greater than or equal"),
        ({"base_config": {"nope": 0}}, "base_config.nope", "Extra inputs"),
        ({"target": "nothing"}, "target", "unknown pipeline"),
        ({"objective": "test_loss"}, "objective", "never on the test split"),
        ({"sampler": "grid"}, "space.x", "needs a step"),
        ({"n_trials": 0}, "n_trials", "greater than or equal"),
    ],
)
def test_an_invalid_study_is_refused_naming_the_field(
    change: dict[str, Any], field: str, message: str
) -> None:
    raw = {
        "target": "bowl",
        "objective": "val_loss",
        "direction": "minimize",
        "space": {"x": {"type": "float", "low": -5, "high": 5}},
        "base_config": {},
        **change,
    }
    with pytest.raises(ValidationError) as caught:
        HyperTuner.Config.model_validate(raw, context={TARGETS_KEY: TARGETS})
    errors = []  # (field path, message), as the contract's ConfigError reports them
    for err in caught.value.errors():
        cause = (err.get("ctx") or {}).get("error")
        path = [str(p) for p in err["loc"]] + (
            [cause.field] if isinstance(cause, FieldError) else []
        )
        errors.append((".".join(path), str(cause) if cause is not None else err["msg"]))
    assert any(p == field and message in m for p, m in errors), errors


def test_a_trial_s_duration_is_its_run_and_its_wait_for_a_worker_is_apart(tmp_path: Path) -> None:
    # two trials at a time, one slot to run them: every other trial waits for a whole run
    config = study_config(n_trials=4, base_config={"epochs": 2, "sleep": 0.1})
    results, (launcher, _) = run_study(tmp_path, config, parallel=1)
    children = {c.id: c for c in launcher.children()}
    for trial in results["trials"]:
        child = children[trial["experiment_id"]]
        assert child.started_at is not None and child.finished_at is not None
        assert child.created_at is not None and child.created_at <= child.started_at
        ran = (child.finished_at - child.started_at).total_seconds()
        assert trial["duration_s"] == round(ran, 2) and ran >= 0.2  # two 0.1 s epochs
        queued = (child.started_at - child.created_at).total_seconds()
        assert trial["queued_s"] == round(queued, 2)
    assert max(t["queued_s"] for t in results["trials"]) >= 0.15  # one waited about a run
