"""A real Celery worker's /metrics and JSON logs, and the experiment id on a run's log lines."""

from __future__ import annotations

import io
import json
import logging
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from azuraforge_pipeline.testing import installed_plugin
from azuraforge_platform import __version__
from azuraforge_platform.api.app import create_app
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment
from azuraforge_platform.jobqueue import CeleryDispatcher, make_celery
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStatus, ExperimentStore
from azuraforge_platform.telemetry.logs import ContextFilter, JsonLineFormatter

from .conftest import celery_worker

S = ExperimentStatus
TOKEN = "worker-scrape-token-0123456789"

CHATTY_SOURCE = """
import logging
import threading

from azuraforge_pipeline import Pipeline

log = logging.getLogger("chatty")


class Chatty(Pipeline):
    id = "{pipeline_id}"
    name = "Chatty"
    description = "logs from its run and from a thread it starts"
    version = "0.0.1"

    def run(self, config, context):
        log.warning("chatty main thread says hi")
        thread = threading.Thread(target=lambda: log.warning("chatty thread says hi"))
        thread.start()
        thread.join()
        return {{"ok": 1}}
"""


@pytest.fixture(scope="module")
def chatty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tag = uuid.uuid4().hex[:8]
    pipeline_id, module = f"chatty_{tag}", f"azf_chatty_{tag}"
    sources = {f"{module}/__init__.py": CHATTY_SOURCE.format(pipeline_id=pipeline_id)}
    with installed_plugin(
        tmp_path_factory.mktemp("chatty"), f"azf-chatty-{tag}", sources,
        {pipeline_id: f"{module}:Chatty"},
    ):  # fmt: skip
        yield pipeline_id


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_run_in_this_process_names_its_experiment_on_every_line(
    tmp_path: Path, chatty: str
) -> None:
    store = ExperimentStore(f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "artifacts")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(ContextFilter())
    chatty_log = logging.getLogger("chatty")
    chatty_log.addHandler(handler)
    try:
        exp = store.create(pipeline_id=chatty, config={})
        record = run_experiment(exp.id, EventService(store, InProcessEventBus()))
        chatty_log.warning("after the run")
    finally:
        chatty_log.removeHandler(handler)
        store.close()
    assert record.status is S.succeeded, record.error
    lines = {r["message"]: r for r in map(json.loads, out.getvalue().splitlines())}
    assert lines["chatty main thread says hi"]["experiment_id"] == exp.id
    # a thread of this process is not the run's (this process is not the run's alone), and
    # nothing after the run is either
    assert "experiment_id" not in lines["chatty thread says hi"]
    assert "experiment_id" not in lines["after the run"]


@pytest.fixture
def observed_worker(
    tmp_path: Path, redis_url: str, channel_prefix: str, chatty: str
) -> Iterator[tuple[Settings, int, Path]]:
    """A Celery worker with JSON logs and its /metrics on a free port."""
    port = _free_port()
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        redis_url=redis_url,
        event_channel_prefix=channel_prefix,
        celery_queue=channel_prefix,
        heartbeat_seconds=0.1,
        metrics_token=TOKEN,
        allowed_hosts=["testserver"],
    )
    log_path = tmp_path / "worker.log"
    with celery_worker(
        settings,
        log_path,
        AZURAFORGE_LOG_FORMAT="json",
        AZURAFORGE_METRICS_TOKEN=TOKEN,
        AZURAFORGE_WORKER_METRICS_PORT=str(port),
        AZURAFORGE_WORKER_METRICS_HOST="127.0.0.1",
    ):
        yield settings, port, log_path


def _scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code == 200, response.text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


@pytest.mark.integration
@pytest.mark.slow
def test_worker_serves_its_metrics_and_logs_json(
    observed_worker: tuple[Settings, int, Path], chatty: str
) -> None:
    settings, port, log_path = observed_worker
    url = f"http://127.0.0.1:{port}/metrics"
    store = ExperimentStore.from_settings(settings)
    exp = store.create(pipeline_id=chatty, config={})
    CeleryDispatcher(make_celery(settings)).submit(exp.id)

    key = (
        "azuraforge_run_duration_seconds_count",
        frozenset({("pipeline", chatty), ("outcome", "succeeded")}),
    )
    deadline = time.monotonic() + 120
    samples: dict[tuple[str, frozenset[tuple[str, str]]], Any] = {}
    while samples.get(key) != 1:
        assert time.monotonic() < deadline, log_path.read_text()[-3000:]
        time.sleep(0.2)
        try:
            samples = _scrape(url)
        except httpx.TransportError:  # not listening yet
            continue
    assert store.get(exp.id).status is S.succeeded
    store.close()
    assert samples[("azuraforge_worker_slots", frozenset({("kind", "runs")}))] == 1  # solo pool
    slots = samples[("azuraforge_worker_slots", frozenset({("kind", "coordinators")}))]
    assert slots == settings.coordinator_slots
    assert samples[("azuraforge_runs_supervised", frozenset({("kind", "runs")}))] == 0
    assert samples[("azuraforge_build_info", frozenset({("version", __version__)}))] == 1
    # the store's state is the API's to export, once, not every worker's
    assert not any(name == "azuraforge_experiments" for name, _ in samples)

    assert httpx.get(url, timeout=10).status_code == 401
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"] == "Bearer"
    assert httpx.get(url.replace("/metrics", "/"), timeout=10).status_code == 404

    records = []
    for line in log_path.read_text().splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    said = {r["message"]: r for r in records if r.get("logger") == "chatty"}
    # the run's child process logs JSON too, and every line of it names the experiment,
    # even one from a thread the plugin started
    assert said["chatty main thread says hi"]["experiment_id"] == exp.id
    assert said["chatty thread says hi"]["experiment_id"] == exp.id
    assert said["chatty thread says hi"]["level"] == "WARNING"
    # Celery's own lines go through the same formatter
    assert any(r["logger"].startswith("celery") for r in records), records[:5]


@pytest.mark.integration
@pytest.mark.slow
def test_the_api_counts_an_idle_worker_alive(
    observed_worker: tuple[Settings, int, Path], chatty: str
) -> None:
    """An idle worker holds no run and beats for none: the API asks the queue's workers."""
    settings, _, log_path = observed_worker
    app = create_app(settings, run_jobs=False, serve_dashboard=False)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with TestClient(app, headers=auth) as api:
        deadline = time.monotonic() + 60
        while True:
            samples = {
                (s.name, frozenset(s.labels.items())): s.value
                for f in text_string_to_metric_families(api.get("/metrics").text)
                for s in f.samples
            }
            if samples[("azuraforge_workers_alive", frozenset())] == 1:
                break  # this test's worker, and no other worker on the same Redis
            assert time.monotonic() < deadline, log_path.read_text()[-3000:]
            time.sleep(0.5)
    assert samples[("azuraforge_runs_active", frozenset({("heartbeat", "fresh")}))] == 0
