"""The `azuraforge` command line: typer's CliRunner in this process, plus real subprocesses
of the installed console script, against a real store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import BaseModel, Field
from typer.testing import CliRunner

from azuraforge_pipeline import DataPath, Pipeline, PipelineConfig, RunContext
from azuraforge_platform.cli.app import app
from azuraforge_platform.cli.run import build_config
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStatus, ExperimentStore, head_revision

S = ExperimentStatus


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A private data dir (SQLite + artifacts) for the commands under test."""
    values = {
        "AZURAFORGE_DATA_DIR": str(tmp_path / "data"),
        "COLUMNS": "200",  # wide tables: nothing is cut off in what the tests read
    }
    for key in ("AZURAFORGE_DATABASE_URL", "AZURAFORGE_REDIS_URL", "AZURAFORGE_ARTIFACT_ROOT"):
        monkeypatch.delenv(key, raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def cli(env: dict[str, str]) -> CliRunner:
    return CliRunner()


def _store(env: dict[str, str]) -> ExperimentStore:
    return ExperimentStore.from_settings(Settings(data_dir=Path(env["AZURAFORGE_DATA_DIR"])))


def test_run_trains_and_records_the_experiment(
    cli: CliRunner, env: dict[str, str], fit_pipeline: str
) -> None:
    result = cli.invoke(
        app, ["run", fit_pipeline, "--set", "epochs=3", "--set", "lr=0.05", "--tag", "cli"]
    )
    assert result.exit_code == 0, result.output
    assert "succeeded" in result.output and "loss" in result.output
    store = _store(env)
    [exp] = store.list_experiments().items
    assert exp.status is S.succeeded and exp.tags == ["cli"]
    assert exp.config["epochs"] == 3 and exp.config["batch_size"] == 32  # defaults stored too
    losses = [m.value for m in store.metrics(exp.id, names=["loss"])]
    assert len(losses) == 3 and losses[-1] is not None and losses[-1] < losses[0]  # it learned
    assert exp.id in result.output
    listed = cli.invoke(app, ["experiments", "list", "--pipeline", fit_pipeline])
    assert listed.exit_code == 0 and exp.id[:12] in listed.output and "succeeded" in listed.output
    shown = cli.invoke(app, ["experiments", "show", exp.id[:8]])  # a unique prefix is enough
    assert shown.exit_code == 0, shown.output
    assert exp.id in shown.output and '"epochs": 3' in shown.output
    logs = cli.invoke(app, ["experiments", "logs", exp.id])
    assert logs.exit_code == 0 and "epoch 3 loss" in logs.output
    follow = cli.invoke(app, ["experiments", "logs", exp.id, "--follow"])  # ends: it finished
    assert follow.exit_code == 0 and "epoch 1 loss" in follow.output
    assert "status: succeeded" in follow.output
    filtered = cli.invoke(app, ["experiments", "list", "--status", "failed"])
    assert filtered.exit_code == 0 and "no experiments match" in filtered.output
    store.close()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "epochs=0"], "epochs: Input should be greater than or equal to 1"),
        (["--set", "epohcs=3"], "epohcs: Extra inputs are not permitted"),
        (["--set", "lr=fast"], "lr: Input should be a valid number"),
        (["--set", "epochs"], "--set expects key=value"),
        (["--config", "missing.json"], "does not exist"),
    ],
)
def test_invalid_settings_give_the_message_not_a_traceback(
    cli: CliRunner, env: dict[str, str], fit_pipeline: str, args: list[str], expected: str
) -> None:
    result = cli.invoke(app, ["run", fit_pipeline, *args])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert _store(env).list_experiments().items == []  # nothing was queued


def test_unknown_pipeline_lists_the_known_ones(
    cli: CliRunner, env: dict[str, str], fit_pipeline: str
) -> None:
    result = cli.invoke(app, ["run", "no_such_pipeline"])
    assert result.exit_code == 2
    assert "unknown pipeline 'no_such_pipeline'" in result.output and fit_pipeline in result.output
    shown = cli.invoke(app, ["pipelines", "show", "no_such_pipeline"])
    assert shown.exit_code == 2 and "known pipelines" in shown.output


class _Nested(BaseModel):
    lr: float = 0.1
    betas: list[float] = [0.9, 0.999]


class _Configurable(Pipeline):
    id = "configurable"
    name = "Configurable"

    class Config(PipelineConfig):
        title: str = "x"
        epochs: int = Field(2, ge=1)
        flag: bool = False
        optimizer: _Nested = _Nested()

    def run(self, config: PipelineConfig, context: RunContext) -> None:
        return None


def test_config_file_then_set_with_json_values_and_dotted_keys(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"epochs": 5, "optimizer": {"lr": 0.5}}))
    config = build_config(
        _Configurable,
        path,
        ["flag=true", "optimizer.betas=[0.8, 0.9]", "title=123", "optimizer.lr=1e-3"],
    )
    assert config == {
        "title": "123",  # JSON said number, the field wants text: the typed text is kept
        "epochs": 5,
        "flag": True,
        "optimizer": {"lr": 0.001, "betas": [0.8, 0.9]},
    }
    toml = tmp_path / "c.toml"
    toml.write_text("epochs = 7\n[optimizer]\nlr = 0.2\n")
    assert build_config(_Configurable, toml, [])["optimizer"]["lr"] == 0.2


class _WithData(Pipeline):
    id = "with_data"
    name = "With data"

    class Config(PipelineConfig):
        csv_path: DataPath | None = None

    def run(self, config: PipelineConfig, context: RunContext) -> None:
        return None


def test_local_runs_name_any_file_of_their_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The machine's own user is no API client: any file is fine, and a relative name is taken
    # from the working directory and stored absolute, so a queued run on a worker finds it.
    monkeypatch.chdir(tmp_path)
    assert build_config(_WithData, None, ["csv_path=rows.csv"]) == {
        "csv_path": str(tmp_path / "rows.csv")
    }
    assert build_config(_WithData, None, ["csv_path=/etc/hosts"]) == {"csv_path": "/etc/hosts"}


def test_pipelines_list_and_show(cli: CliRunner, env: dict[str, str], fit_pipeline: str) -> None:
    listed = cli.invoke(app, ["pipelines", "list"])
    assert listed.exit_code == 0, listed.output
    rows = {line.split("│")[1].strip(): line for line in listed.output.splitlines() if "│" in line}
    assert "yes" in rows[fit_pipeline]  # installed third-party plugin
    for official in ("stock_predictor", "weather_forecaster", "image_classifier", "hyper_tuner"):
        assert official in rows  # the catalog, installed or not
    shown = cli.invoke(app, ["pipelines", "show", fit_pipeline])
    assert shown.exit_code == 0, shown.output
    assert "steps_per_epoch" in shown.output and "learning rate" in shown.output
    assert '"batch_size": 32' in shown.output  # the defaults
    as_json = cli.invoke(app, ["pipelines", "show", fit_pipeline, "--json"])
    assert json.loads(as_json.output)["config_schema"]["properties"]["epochs"]["minimum"] == 1


def test_cancel_a_queued_experiment_and_db_upgrade(cli: CliRunner, env: dict[str, str]) -> None:
    upgraded = cli.invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0 and f"revision {head_revision()}" in upgraded.output
    store = _store(env)
    exp = store.create(pipeline_id="anything", config={})
    result = cli.invoke(app, ["experiments", "cancel", exp.id])
    assert result.exit_code == 0 and "cancelled" in result.output
    assert store.get(exp.id).status is S.cancelled
    assert store.events_after(exp.id)[-1].payload == {"status": "cancelled"}
    again = cli.invoke(app, ["experiments", "cancel", exp.id])
    assert again.exit_code == 1 and "already finished" in again.output
    missing = cli.invoke(app, ["experiments", "show", "ffffffffffff"])
    assert missing.exit_code == 2 and "no experiment with id" in missing.output
    store.close()


def test_worker_explains_a_missing_or_unreachable_redis(
    cli: CliRunner, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    result = cli.invoke(app, ["worker"])
    assert result.exit_code == 1 and "AZURAFORGE_REDIS_URL" in result.output
    monkeypatch.setenv("AZURAFORGE_REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens
    result = cli.invoke(app, ["worker"])
    assert result.exit_code == 1 and "cannot reach Redis at redis://127.0.0.1:1/0" in result.output


def test_worker_refuses_metrics_without_a_token(
    cli: CliRunner, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURAFORGE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("AZURAFORGE_WORKER_METRICS_PORT", "9464")
    monkeypatch.delenv("AZURAFORGE_METRICS_TOKEN", raising=False)
    result = cli.invoke(app, ["worker"])
    assert result.exit_code == 2 and "AZURAFORGE_METRICS_TOKEN" in result.output


def test_a_cuda_worker_without_a_usable_cupy_says_so_before_starting(
    cli: CliRunner, env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # a CuPy that fails to import, as a broken CUDA install does (the probe runs in a child
    # process, which takes this PYTHONPATH)
    stand_in = tmp_path / "site" / "cupy"
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text("raise ImportError('libcudart.so.12: not found')\n")
    monkeypatch.setenv("PYTHONPATH", str(stand_in.parent))
    monkeypatch.setenv("AZURAFORGE_REDIS_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("AZURAFORGE_DEVICE", "cuda")
    result = cli.invoke(app, ["worker"])
    assert result.exit_code == 1
    assert "AZURAFORGE_DEVICE=cuda, but CuPy cannot use a GPU here" in result.output
    assert "libcudart.so.12: not found" in result.output
    monkeypatch.setenv("AZURAFORGE_DEVICE", "tpu")
    result = cli.invoke(app, ["worker"])
    assert result.exit_code == 2 and "AZURAFORGE_DEVICE" in result.output


def test_a_non_finite_loss_fails_the_run_with_a_clear_message(
    cli: CliRunner, env: dict[str, str], fit_pipeline: str
) -> None:
    result = cli.invoke(app, ["run", fit_pipeline, "--set", "mode=nan_metric"])
    assert result.exit_code == 1, result.output
    [exp] = _store(env).list_experiments().items
    assert exp.status is S.failed
    assert "the loss metric 'loss' became nan at epoch 2" in (exp.error or "")
    assert "became nan" in result.output


def _azuraforge() -> str:
    script = Path(sys.executable).parent / "azuraforge"
    assert script.exists(), "the console script is installed by `uv sync`"
    return str(script)


@pytest.mark.slow
def test_console_script_trains_then_ctrl_c_cancels(env: dict[str, str], fit_pipeline: str) -> None:
    full_env = {**os.environ, **env}
    done = subprocess.run(
        [_azuraforge(), "run", fit_pipeline, "--set", "epochs=5", "--name", "from-a-shell"],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "succeeded" in done.stdout and "loss" in done.stdout
    store = _store(env)
    [exp] = store.list_experiments(search="from-a-shell").items
    assert exp.status is S.succeeded and exp.worker is not None and exp.worker.endswith(":cli")
    assert exp.summary is not None and exp.summary["w_error"] < 0.05  # it really learned w

    slow = subprocess.Popen(
        [_azuraforge(), "run", fit_pipeline, "--set", "epochs=1000", "--set", "step_sleep=0.01",
         "--name", "to-cancel"],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            page = store.list_experiments(search="to-cancel").items
            if page and store.metrics(page[0].id):
                break
            assert time.monotonic() < deadline and slow.poll() is None
            time.sleep(0.1)
        slow.send_signal(signal.SIGINT)
        output, _ = slow.communicate(timeout=60)
    finally:
        if slow.poll() is None:
            slow.kill()
    assert slow.returncode == 130, output
    cancelled = store.get(page[0].id)
    assert cancelled.status is S.cancelled, cancelled.error
    assert "Traceback" not in output
    store.close()


def test_listing_notices_a_run_whose_process_vanished(cli: CliRunner, env: dict[str, str]) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from azuraforge_platform.store.tables import Experiment

    store = _store(env)
    exp = store.create(pipeline_id="anything", config={}, max_attempts=1)
    assert store.claim(exp.id, "closed-terminal:42:cli") is not None
    with store._write() as session:  # its last beat was long ago
        session.execute(
            update(Experiment)
            .where(Experiment.id == exp.id)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=5))
        )
    listed = cli.invoke(app, ["experiments", "list"])
    assert listed.exit_code == 0 and "failed" in listed.output
    record = store.get(exp.id)
    assert record.status is S.failed and "stopped heart-beating" in (record.error or "")
    statuses = [e.payload["status"] for e in store.events_after(exp.id) if e.type == "status"]
    assert statuses == ["lost", "failed"]
    store.close()
