"""Hyperparameter studies on the platform: the `hyper_tuner` plugin (as installed) drives the
session's numpy `fit` pipeline through `RunContext.submit`; its trials are child experiments
that the embedded executor runs in worker processes, beside the study in a coordinator slot."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import LocalExecutor
from azuraforge_platform.lifecycle import Lifecycle
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentRecord, ExperimentStatus, ExperimentStore

S = ExperimentStatus
FINAL = {S.succeeded, S.failed, S.cancelled}
pytestmark = pytest.mark.slow


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        artifact_root=tmp_path / "artifacts",
        heartbeat_seconds=0.2,
        **overrides,
    )


def _study(lifecycle: Lifecycle, fit: str, **overrides: Any) -> ExperimentRecord:
    config = {
        "target": fit,
        "objective": "loss",
        "direction": "minimize",
        "space": {"lr": {"type": "float", "low": 0.001, "high": 0.2, "log": True}},
        "base_config": {"epochs": 3, "steps_per_epoch": 4},
        "n_trials": 4,
        "parallel": 2,
        "sampler": "random",
        **overrides,
    }
    return lifecycle.submit(
        pipeline_id="hyper_tuner",
        config=config,
        pipeline_version="0.1.0",
        owner="alice",
        max_attempts=2,
        coordinator=True,
    )


def _wait(store: ExperimentStore, exp_id: str, until: Any, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not until(store.get(exp_id)):
        assert time.monotonic() < deadline, store.get(exp_id)
        time.sleep(0.1)


def test_a_study_runs_its_trials_as_child_experiments(tmp_path: Path, fit_pipeline: str) -> None:
    settings = _settings(tmp_path)
    store = ExperimentStore.from_settings(settings)
    bus = InProcessEventBus()
    lifecycle = Lifecycle(EventService(store, bus))
    study = _study(lifecycle, fit_pipeline)
    # one worker slot: the study holds a coordinator slot, so its trials still get the worker
    with LocalExecutor(settings, store, bus, max_workers=1, poll_seconds=0.1):
        _wait(store, study.id, lambda r: r.status in FINAL)
    done = store.get(study.id)
    assert done.status is S.succeeded, done.error
    trials = store.children(study.id)
    assert len(trials) == 4
    assert all(t.status is S.succeeded and "trial" in t.tags for t in trials)
    assert all(t.owner == "alice" and t.parent_id == study.id for t in trials)
    assert {t.config["epochs"] for t in trials} == {3}  # the fixed rest of the config
    summary = done.summary or {}
    losses = {t.id: t.summary["loss"] for t in trials if t.summary}
    assert summary["best_value"] == pytest.approx(min(losses.values()))
    assert summary["best_experiment_id"] == min(losses, key=losses.__getitem__)
    # the study streamed its trials: one event as each started and one as it ended
    trial_events = [e for e in store.events_after(study.id, 0) if e.type == "trial"]
    assert len(trial_events) == 8
    assert [m.step for m in store.metrics(study.id, ["best_value"])] == [0, 1, 2, 3]
    store.close()


def test_cancelling_a_study_cancels_its_running_trials(tmp_path: Path, fit_pipeline: str) -> None:
    settings = _settings(tmp_path)
    store = ExperimentStore.from_settings(settings)
    bus = InProcessEventBus()
    lifecycle = Lifecycle(EventService(store, bus))
    slow = {"epochs": 500, "steps_per_epoch": 4, "step_sleep": 0.05}
    study = _study(lifecycle, fit_pipeline, base_config=slow, n_trials=6)
    with LocalExecutor(settings, store, bus, max_workers=2, poll_seconds=0.1):
        _wait(store, study.id, lambda r: len(store.children(r.id, statuses=[S.running])) == 2)
        lifecycle.cancel(study.id)
        _wait(store, study.id, lambda r: r.status in FINAL)
        for trial in store.children(study.id):
            _wait(store, trial.id, lambda r: r.status in FINAL)
    assert store.get(study.id).status is S.cancelled
    trials = store.children(study.id)
    assert len(trials) == 2 and all(t.status is S.cancelled for t in trials)
    store.close()


def test_a_study_whose_process_died_resumes_with_its_trials(
    tmp_path: Path, fit_pipeline: str
) -> None:
    settings = _settings(tmp_path)
    store = ExperimentStore.from_settings(settings)
    bus = InProcessEventBus()
    lifecycle = Lifecycle(EventService(store, bus))
    paced = {"epochs": 4, "steps_per_epoch": 4, "step_sleep": 0.1}
    study = _study(lifecycle, fit_pipeline, base_config=paced, n_trials=6, parallel=1)
    with LocalExecutor(settings, store, bus, max_workers=1, poll_seconds=0.1) as executor:
        _wait(store, study.id, lambda r: len(store.children(r.id, statuses=FINAL)) >= 2)
        executor._running[study.id].process.kill()  # the study's worker dies mid-study
        _wait(store, study.id, lambda r: r.attempts == 2)  # recovered and re-queued
        _wait(store, study.id, lambda r: r.status in FINAL)
    done = store.get(study.id)
    assert done.status is S.succeeded, done.error
    trials = store.children(study.id)
    assert len(trials) == 6  # no trial ran twice, none was forgotten
    assert all(t.status is S.succeeded for t in trials)
    assert (done.summary or {})["n_complete"] == 6
    logs = " ".join(line.message for line in store.logs(study.id))
    assert "resumed:" in logs
    store.close()


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for key in ("AZURAFORGE_DATABASE_URL", "AZURAFORGE_REDIS_URL", "AZURAFORGE_ARTIFACT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AZURAFORGE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "data"


def test_tune_runs_a_study_here_with_a_live_table(cli_env: Path, fit_pipeline: str) -> None:
    from typer.testing import CliRunner

    from azuraforge_platform.cli.app import app

    result = CliRunner().invoke(
        app,
        [
            "tune", fit_pipeline,
            "--space", "lr=float:0.001:0.2:log",
            "--space", "batch_size=choice:8,32",
            "--objective", "loss", "--trials", "3", "--parallel", "2",
            "--sampler", "random", "--set", "epochs=2",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "best loss" in result.output and "complete" in result.output
    store = ExperimentStore.from_settings(Settings(data_dir=cli_env))
    [study] = store.list_experiments(pipeline_id="hyper_tuner").items
    assert study.status is S.succeeded and study.coordinator
    trials = store.children(study.id)
    assert len(trials) == 3 and {t.config["epochs"] for t in trials} == {2}
    assert {t.config["batch_size"] for t in trials} <= {8, 32}
    store.close()


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        ("lr=float:0:1:log", "space.lr: a log scale needs low > 0"),
        ("nope=int:1:3", "space.nope: pipeline"),
        ("epochs=int:0:3", "space.epochs: 0 is not a valid epochs"),
        ("lr=range:1:2", "the kind is int, float or choice"),
    ],
)
def test_tune_refuses_a_bad_space_before_anything_runs(
    cli_env: Path, fit_pipeline: str, space: str, expected: str
) -> None:
    from typer.testing import CliRunner

    from azuraforge_platform.cli.app import app

    result = CliRunner().invoke(
        app, ["tune", fit_pipeline, "--space", space, "--objective", "loss"]
    )
    assert result.exit_code != 0
    assert expected in result.output, result.output
    assert (
        not (cli_env / "azuraforge.db").exists()
        or not ExperimentStore.from_settings(Settings(data_dir=cli_env)).list_experiments().items
    )
