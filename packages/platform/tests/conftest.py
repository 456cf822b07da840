"""Fixtures: the store on SQLite and on a real PostgreSQL, and a real Redis.

Missing services: with CI set they FAIL the test (a green CI must have exercised them);
elsewhere they skip with a hint on how to start the service.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import pytest
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from azuraforge_pipeline.testing import installed_plugin
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStore, normalize_url

POSTGRES_URL = os.environ.get(
    "AZURAFORGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("AZURAFORGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

HINTS = {
    "PostgreSQL": "start one with `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust "
    "-e POSTGRES_DB=test postgres:16` or set AZURAFORGE_TEST_POSTGRES_URL",
    "Redis": "start one with `docker run -d -p 6379:6379 redis:7` or set AZURAFORGE_TEST_REDIS_URL",
}


@pytest.fixture(scope="session")
def require_service() -> Callable[[str, str, BaseException], NoReturn]:
    """The one place that decides what a missing service means: fail on CI, skip elsewhere."""

    def unavailable(service: str, url: str, error: BaseException) -> NoReturn:
        message = f"{service} is not reachable at {url} ({error}); {HINTS[service]}"
        if os.environ.get("CI"):
            pytest.fail(f"CI is set, so this is an error: {message}", pytrace=False)
        pytest.skip(message)

    return unavailable


@pytest.fixture(scope="session")
def postgres_url(
    require_service: Callable[[str, str, BaseException], NoReturn],
) -> Iterator[str]:
    """A throw-away database on the server, dropped at the end of the session."""
    admin_url = normalize_url(POSTGRES_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        require_service("PostgreSQL", POSTGRES_URL, exc)
    name = f"azf_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def redis_url(require_service: Callable[[str, str, BaseException], NoReturn]) -> str:
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:
        require_service("Redis", REDIS_URL, exc)
    return REDIS_URL


@pytest.fixture
def channel_prefix() -> str:
    """Unique per test, so parallel runs sharing one Redis never see each other's events."""
    return f"azftest-{uuid.uuid4().hex[:12]}"


@contextlib.contextmanager
def celery_worker(
    settings: Settings, log_path: Path, **env_extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """A real `celery worker` process (solo pool) for `settings`' queue, logging to
    `log_path`; stopped, and its queue's Redis keys removed, on exit."""
    queue = settings.celery_queue
    env = dict(os.environ)
    env.update(
        AZURAFORGE_DATA_DIR=str(settings.data_dir),
        AZURAFORGE_DATABASE_URL=settings.resolved_database_url,
        AZURAFORGE_REDIS_URL=settings.redis_url or "",
        AZURAFORGE_EVENT_CHANNEL_PREFIX=settings.event_channel_prefix,
        AZURAFORGE_CELERY_QUEUE=queue,
        AZURAFORGE_HEARTBEAT_SECONDS=str(settings.heartbeat_seconds),
        **env_extra,
    )
    with log_path.open("w") as log:
        worker = subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "azuraforge_platform.worker.app", "worker",
                "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel=INFO", "-Q", queue, "-n", f"{queue}@%h",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield worker
        finally:
            worker.terminate()
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            client = redis.Redis.from_url(settings.redis_url or "")
            for key in client.scan_iter(f"*{queue}*"):
                client.delete(key)
            client.close()


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated-on-first-use database URL on each backend, empty at the start of the test."""
    if request.param == "sqlite":
        yield _sqlite_url(tmp_path)
        return
    url: str = request.getfixturevalue("postgres_url")
    yield url
    engine = create_engine(normalize_url(url))
    # A thread of the test's app (a live topic's store poll) can still be finishing a read
    # while this empties the tables: PostgreSQL then aborts one side as a deadlock. The
    # reader is gone a moment later, so the truncate is tried again.
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                tables = conn.execute(
                    text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                ).scalars()
                names = [t for t in tables if t != "alembic_version"]
                if names:
                    conn.execute(text(f"TRUNCATE {', '.join(names)} CASCADE"))
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.5)
    engine.dispose()


@pytest.fixture
def store(db_url: str, tmp_path: Path) -> Iterator[ExperimentStore]:
    s = ExperimentStore(db_url, tmp_path / "artifacts")
    yield s
    s.close()


PROBE_SOURCE = """
import contextlib
import os
import subprocess
import sys
import time

from pydantic import Field

from azuraforge_pipeline import Pipeline, PipelineConfig


class Probe(Pipeline):
    id = "{pipeline_id}"
    name = "Probe"
    description = "exercises the worker: succeeds, fails, crashes or runs until cancelled"
    version = "0.0.1"

    class Config(PipelineConfig):
        mode: str = Field("ok", pattern="^(ok|fail|crash|slow|stubborn)$")
        steps: int = Field(3, ge=1)

    def run(self, config, context):
        while config.mode == "stubborn":  # never looks at context.should_stop()
            context.log_metrics({{"x": 1.0}}, step=0)
            time.sleep(0.02)
        for step in range(config.steps):
            context.check_cancelled()
            if config.mode == "crash" and step == 1:
                os._exit(3)  # dies like an out-of-memory kill: no outcome recorded
            if config.mode == "fail" and step == 1:
                raise RuntimeError("probe failed on purpose")
            context.log_metrics({{"x": float(step)}}, step=step)
            context.log(f"pid {{os.getpid()}} step {{step}}")
            if config.mode == "slow":
                time.sleep(0.02)
        return {{"steps": config.steps, "pid": os.getpid()}}
"""


FIT_SOURCE = """
import contextlib
import os
import subprocess
import sys
import time

import numpy as np
from pydantic import Field

from azuraforge_pipeline import Pipeline, PipelineConfig


class Fit(Pipeline):
    id = "{fit_id}"
    name = "Numpy fit"
    description = "really trains: linear regression by minibatch gradient descent in numpy"
    version = "0.0.2"

    class Config(PipelineConfig):
        epochs: int = Field(4, ge=1, le=10_000, description="passes over the data")
        steps_per_epoch: int = Field(10, ge=1, description="minibatches per epoch")
        batch_size: int = Field(32, ge=1, le=4096)
        lr: float = Field(0.05, gt=0, description="learning rate")
        features: int = Field(8, ge=1, le=1000)
        step_sleep: float = Field(0.0, ge=0, description="seconds to wait after each step")
        mode: str = Field("ok", pattern="^(ok|nan_metric|ignore_cancel)$")

    def run(self, config, context):
        data = np.random.default_rng(1234)  # the same data on every attempt
        n = config.steps_per_epoch * config.batch_size
        X = data.normal(size=(n, config.features))
        true_w = data.normal(size=config.features)
        y = X @ true_w + 0.5 + 0.01 * data.normal(size=n)
        checkpoint = context.load_checkpoint()
        if checkpoint is None:
            w, b, start = np.zeros(config.features), 0.0, 1
        else:
            w, b = checkpoint.arrays["w"], float(checkpoint.arrays["b"])
            start = checkpoint.meta["epoch"] + 1
            context.log(f"attempt {{context.attempt}} resumes after epoch {{start - 1}}")
        loss = float(np.mean((X @ w + b - y) ** 2))
        for epoch in range(start, config.epochs + 1):
            order = np.random.default_rng(epoch).permutation(n)
            for step in range(config.steps_per_epoch):
                if config.mode != "ignore_cancel":
                    context.check_cancelled()
                idx = order[step * config.batch_size : (step + 1) * config.batch_size]
                err = X[idx] @ w + b - y[idx]
                w = w - config.lr * 2 * X[idx].T @ err / len(idx)
                b = b - config.lr * 2 * float(err.mean())
                context.progress(
                    epoch=epoch, total_epochs=config.epochs,
                    step=step + 1, total_steps=config.steps_per_epoch,
                )
                if config.step_sleep:
                    time.sleep(config.step_sleep)
            loss = float(np.mean((X @ w + b - y) ** 2))
            if config.mode == "nan_metric" and epoch == 2:
                loss = float("nan")
            context.log_metrics({{"loss": loss}}, epoch=epoch)
            context.log(f"epoch {{epoch}} loss {{loss:.6f}} pid {{os.getpid()}}")
            context.save_checkpoint({{"w": w, "b": np.array(b)}}, {{"epoch": epoch}})
        return {{
            "loss": loss,
            "pid": os.getpid(),
            "w_error": float(np.abs(w - true_w).max()),
        }}
"""


@pytest.fixture(scope="session")
def _test_plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A real plugin distribution, installed into this venv for the session: worker processes
    (and `azuraforge` subprocesses) find its pipelines through their entry points, exactly
    like a third-party app's."""
    tag = uuid.uuid4().hex[:8]
    probe_id, fit_id = f"probe_{tag}", f"fit_{tag}"
    module, dist = f"azf_probe_{tag}", f"azf-probe-{tag}"
    sources = {
        f"{module}/__init__.py": PROBE_SOURCE.format(pipeline_id=probe_id),
        f"{module}/fit.py": FIT_SOURCE.format(fit_id=fit_id),
    }
    entry_points = {probe_id: f"{module}:Probe", fit_id: f"{module}.fit:Fit"}
    with installed_plugin(tmp_path_factory.mktemp("probe"), dist, sources, entry_points):
        yield probe_id, fit_id


@pytest.fixture(scope="session")
def probe_pipeline(_test_plugin: tuple[str, str]) -> str:
    """Succeeds, fails, crashes (os._exit) or ignores cancels, on demand."""
    return _test_plugin[0]


@pytest.fixture(scope="session")
def fit_pipeline(_test_plugin: tuple[str, str]) -> str:
    """Really trains (numpy linear regression), checkpoints every epoch, resumes."""
    return _test_plugin[1]


# -- an S3-compatible bucket --------------------------------------------------------------
# moto's S3 behind a real HTTP server on a loopback port: boto3 talks to it over real
# connections exactly as to MinIO or AWS (no patching of boto3 in the tested processes).
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "azf-test-key",
    "AWS_SECRET_ACCESS_KEY": "azf-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,  # never the developer's own profiles
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_settings(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A new, empty bucket on the S3 server, and the settings that select it (the AWS_*
    credentials are set in the environment, as boto3's chain reads them)."""
    import boto3

    for key, value in S3_ENV.items():
        monkeypatch.setenv(key, value)
    name = f"azf-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    return {
        "artifact_s3_bucket": name,
        "artifact_s3_endpoint_url": s3_endpoint,
        "artifact_s3_prefix": "runs/",
    }


def bucket_objects(settings: dict[str, str]) -> dict[str, bytes]:
    """Every object of the bucket: key -> content, read with a client of its own."""
    import boto3

    client = boto3.client("s3", endpoint_url=settings["artifact_s3_endpoint_url"])
    name = settings["artifact_s3_bucket"]
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            found[item["Key"]] = client.get_object(Bucket=name, Key=item["Key"])["Body"].read()
    return found
