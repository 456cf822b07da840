"""API fixtures: a tiny pipeline plugin that really trains (installed for the session), the
app in-process (TestClient) and a real uvicorn server on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from azuraforge_pipeline.testing import installed_plugin
from azuraforge_platform.accounts import Accounts
from azuraforge_platform.api import create_app
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStore
from azuraforge_platform.store.accounts import AccountStore, UserNotFoundError
from azuraforge_platform.store.tables import Role

TRAINER_SOURCE = '''
import json
import os
import time

import numpy as np
from pydantic import Field

from azuraforge_pipeline import DataPath, Pipeline, PipelineConfig


class Trainer(Pipeline):
    """Fits y = 3x - 2 by gradient descent: a real, tiny training run."""

    id = "{pipeline_id}"
    name = "Tiny trainer"
    description = "linear regression by gradient descent, for the API tests"
    version = "0.0.1"

    class Config(PipelineConfig):
        epochs: int = Field(30, ge=1, le=100000, description="Passes over the data")
        lr: float = Field(0.1, gt=0, le=1, description="Learning rate")
        samples: int = Field(64, ge=2, le=10000)
        sleep: float = Field(0.0, ge=0, le=5, description="Seconds to wait per epoch")
        csv_path: DataPath | None = Field(None, description="Optional CSV with x,y columns")

    def run(self, config, context):
        if config.csv_path:
            data = np.loadtxt(config.csv_path, delimiter=",", skiprows=1, ndmin=2)
            x, y = data[:, 0], data[:, 1]
        else:
            x = context.rng.uniform(-1, 1, config.samples)
            y = 3 * x - 2 + context.rng.normal(0, 0.01, config.samples)
        w, b = 0.0, 0.0
        for epoch in range(1, config.epochs + 1):
            context.check_cancelled()
            err = w * x + b - y
            loss = float(np.mean(err ** 2))
            w -= config.lr * float(np.mean(2 * err * x))
            b -= config.lr * float(np.mean(2 * err))
            context.progress(epoch=epoch, total_epochs=config.epochs)
            context.log_metrics({{"loss": loss}}, epoch=epoch)
            if config.sleep:
                time.sleep(config.sleep)
        context.log(f"fitted w={{w:.4f}} b={{b:.4f}}")
        context.save_artifact("model.json", {{"w": w, "b": b}}, kind="model")
        context.save_artifact("report.md", f"# Fit\\n\\nw={{w}} b={{b}}\\n")
        return {{"w": w, "b": b, "final_loss": loss}}

    @classmethod
    def predict(cls, model_path, inputs):
        model = json.loads(open(model_path).read())
        if isinstance(inputs, os.PathLike):  # an uploaded file: one x per line
            inputs = np.loadtxt(inputs, ndmin=1)
        xs = np.asarray(inputs, dtype=float)
        if xs.ndim != 1:
            raise ValueError("inputs must be a list of numbers")
        return (model["w"] * xs + model["b"]).tolist()


class NoPredict(Pipeline):
    id = "{pipeline_id}_np"
    name = "No prediction"

    def run(self, config, context):
        context.save_artifact("model.json", {{"w": 1}}, kind="model")
        return {{}}


class Misbehaving(Pipeline):
    """Predictions that do what the inputs ask, as a careless or hostile plugin might."""

    id = "{pipeline_id}_bad"
    name = "Misbehaving predictions"

    def run(self, config, context):
        context.save_artifact("model.json", {{"w": 1}}, kind="model")
        return {{}}

    @classmethod
    def predict(cls, model_path, inputs):
        if isinstance(inputs, os.PathLike):  # a file (an upload): apps read files from Paths
            with open(inputs, "rb") as fh:
                return {{"bytes": len(fh.read())}}
        if inputs.get("pid_file"):
            with open(inputs["pid_file"], "w") as fh:
                fh.write(str(os.getpid()))
        action = inputs.get("do")
        if action == "sleep":
            while True:
                time.sleep(0.1)
        if action == "allocate":  # touched memory, without bound
            hog = []
            while True:
                hog.append(bytearray(b"x" * (64 * 2**20)))
        if action == "exit":
            os._exit(int(inputs.get("code", 3)))
        if action == "fail":
            raise ValueError(f"{{model_path}} cannot read {{inputs.get('path')}}")
        if action == "crash":
            raise RuntimeError("a bug in the plugin")
        return {{"echo": inputs.get("value"), "pid": os.getpid()}}
'''


@pytest.fixture(scope="session")
def trainer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Installs a real plugin distribution with three pipelines: `<id>` (trains, predicts),
    `<id>_np` (no predict) and `<id>_bad` (predictions that sleep, allocate, exit, read files
    on request); worker processes find them through their entry points."""
    tag = uuid.uuid4().hex[:8]
    pipeline_id, module, dist = f"trainer_{tag}", f"azf_trainer_{tag}", f"azf-trainer-{tag}"
    sources = {f"{module}/__init__.py": TRAINER_SOURCE.format(pipeline_id=pipeline_id)}
    entry_points = {
        pipeline_id: f"{module}:Trainer",
        f"{pipeline_id}_np": f"{module}:NoPredict",
        f"{pipeline_id}_bad": f"{module}:Misbehaving",
    }
    with installed_plugin(tmp_path_factory.mktemp("trainer"), dist, sources, entry_points):
        yield pipeline_id


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "database_url": f"sqlite:///{tmp_path / 'store.db'}",
        "artifact_root": tmp_path / "artifacts",
        "heartbeat_seconds": 0.2,
        "ws_ping_seconds": 0.5,
        "allowed_hosts": ["testserver", "127.0.0.1", "localhost"],
        "config_dir": tmp_path / "config",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


ADMIN_PASSWORD = "admin-password-for-tests"


def add_user(
    settings: Settings, username: str, role: str = "admin", password: str | None = None
) -> str:
    """Creates `username` in the store of `settings` and returns a fresh API token of it."""
    store = ExperimentStore.from_settings(settings)
    try:
        accounts = Accounts(AccountStore(store), settings)
        try:
            user = accounts.store.user_by_name(username)
        except UserNotFoundError:
            user, _ = accounts.create_user(
                username, role=Role(role), password=password or ADMIN_PASSWORD
            )
        _, secret = accounts.create_token(user, f"tests-{username}", 1)
        return secret
    finally:
        store.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signed_in_client(settings: Settings, username: str = "admin", **app_kwargs: Any) -> TestClient:
    """A TestClient of `create_app(settings, **app_kwargs)` sending a token of `username` (an
    admin unless the user exists already); use it as a context manager."""
    token = add_user(settings, username)
    client = TestClient(create_app(settings, **app_kwargs), headers=bearer(token))
    client.token = token  # type: ignore[attr-defined]
    return client


@pytest.fixture
def api(tmp_path: Path, trainer: str) -> Iterator[TestClient]:
    """The app in-process WITHOUT workers: requests only (validation, errors, listing),
    signed in as an admin (`api.token`; `anonymous` has no credential)."""
    settings = make_settings(tmp_path)
    token = add_user(settings, "admin")
    app = create_app(settings, run_jobs=False, serve_dashboard=False)
    with TestClient(app, headers=bearer(token)) as client:
        client.token = token  # type: ignore[attr-defined]
        yield client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LiveServer:
    """uvicorn serving the app in a thread of this process, on a loopback port."""

    def __init__(self, settings: Settings, *, run_jobs: bool = True) -> None:
        self.settings = settings
        self.token = add_user(settings, "admin")
        self.headers = bearer(self.token)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(settings, run_jobs=run_jobs, serve_dashboard=False),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            ws_ping_interval=5,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(60)


@pytest.fixture
def live(tmp_path: Path, trainer: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    """A real server in embedded mode: its LocalExecutor trains in child processes. The
    admin's token is in AZURAFORGE_TOKEN, so the client and remote CLI commands use it."""
    with LiveServer(make_settings(tmp_path)) as server:
        monkeypatch.setenv("AZURAFORGE_TOKEN", server.token)
        yield server
