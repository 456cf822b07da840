"""`/metrics` and request ids on a real app: a real run on SQLite and PostgreSQL, scraped and
parsed as Prometheus does; who may scrape; the Grafana dashboard against what is exported."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from azuraforge_platform.api import create_app
from azuraforge_platform.settings import Settings
from azuraforge_platform.telemetry.logs import ContextFilter, JsonLineFormatter

from .conftest import add_user, bearer, free_port, make_settings

API = "/api/v1"
TOKEN = "scrape-token-for-tests-0123456789"
REPO = Path(__file__).resolve().parents[4]
DASHBOARD = REPO / "deploy" / "grafana" / "azuraforge.json"


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, token: str = TOKEN) -> tuple[Samples, dict[str, str]]:
    """(every sample by name and labels, every family's type by name)."""
    response = client.get("/metrics", headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(response.text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples, types


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape_until(client: TestClient, name: str, at_least: float, **labels: str) -> Samples:
    """A run's duration is observed when its supervisor sees the child exit, which it looks
    for once a second: scrape until it did."""
    deadline = time.monotonic() + 30
    while True:
        samples, _ = scrape(client)
        if value(samples, name, **labels) >= at_least:
            return samples
        assert time.monotonic() < deadline, (name, labels, value(samples, name, **labels))
        time.sleep(0.1)


def wait_final(client: TestClient, exp_id: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"{API}/experiments/{exp_id}").json()
        if body["status"] in ("succeeded", "failed", "cancelled"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


@pytest.fixture
def client(tmp_path: Path, db_url: str, trainer: str) -> Iterator[TestClient]:
    """The app with its embedded executor, on SQLite or PostgreSQL, signed in as an admin."""
    settings = make_settings(tmp_path, database_url=db_url, metrics_token=TOKEN)
    token = add_user(settings, "admin")
    with TestClient(create_app(settings, serve_dashboard=False), headers=bearer(token)) as c:
        yield c


def test_metrics_follow_a_real_run(client: TestClient, trainer: str) -> None:
    before, _ = scrape(client)
    created = client.post(
        f"{API}/experiments", json={"pipeline_id": trainer, "config": {"epochs": 5}}
    )
    assert created.status_code == 201, created.text
    exp_id = created.json()["id"]
    assert wait_final(client, exp_id)["status"] == "succeeded"
    client.get(f"{API}/experiments/{exp_id}/metrics")
    runs = {"pipeline": trainer, "outcome": "succeeded"}
    count = "azuraforge_run_duration_seconds_count"
    scrape_until(client, count, value(before, count, **runs) + 1, **runs)

    after, types = scrape(client)
    # read from the store at scrape time
    assert types["azuraforge_experiments"] == "gauge"
    assert value(after, "azuraforge_experiments", status="succeeded", pipeline=trainer) == 1
    assert value(after, "azuraforge_experiments", status="queued", pipeline=trainer) == 0
    assert (
        "azuraforge_experiments",
        frozenset({("status", "lost"), ("pipeline", trainer)}),
    ) in after
    assert value(after, "azuraforge_queue_depth", queue="embedded") == 0
    assert value(after, "azuraforge_runs_active", heartbeat="fresh") == 0
    assert value(after, "azuraforge_runs_active", heartbeat="stale") == 0
    assert value(after, "azuraforge_workers_alive") == 1  # this process's executor, idle now
    # observed by this process, which supervised the run's child process
    assert value(after, count, **runs) - value(before, count, **runs) == 1
    assert value(after, "azuraforge_run_duration_seconds_sum", **runs) > 0
    assert value(after, "azuraforge_worker_slots", kind="runs") >= 1
    # the latency histogram is labelled by route template, never by the id in the path
    template = f"{API}/experiments/{{experiment_id}}/metrics"
    latency = "azuraforge_http_request_duration_seconds_count"
    assert value(after, latency, method="GET", route=template) >= 1
    assert (
        value(
            after,
            "azuraforge_http_requests_total",
            method="POST",
            route=f"{API}/experiments",
            status="201",
        )
        >= 1
    )
    routes = {dict(labels).get("route", "") for _, labels in after}
    assert not [r for r in routes if exp_id in r]
    assert types["azuraforge_http_request_duration_seconds"] == "histogram"


def test_busy_workers_and_queue_while_a_run_goes_on(client: TestClient, trainer: str) -> None:
    slow = client.post(
        f"{API}/experiments",
        json={"pipeline_id": trainer, "config": {"epochs": 2000, "sleep": 0.05}},
    ).json()["id"]
    waiting = client.post(f"{API}/experiments", json={"pipeline_id": trainer, "config": {}})
    deadline = time.monotonic() + 60
    while client.get(f"{API}/experiments/{slow}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    samples, _ = scrape(client)
    assert value(samples, "azuraforge_experiments", status="running", pipeline=trainer) == 1
    assert value(samples, "azuraforge_queue_depth", queue="embedded") == 1  # one slot: it waits
    assert value(samples, "azuraforge_runs_active", heartbeat="fresh") == 1
    assert value(samples, "azuraforge_workers_alive") == 1
    assert value(samples, "azuraforge_runs_supervised", kind="runs") >= 1
    for exp_id in (slow, waiting.json()["id"]):
        client.post(f"{API}/experiments/{exp_id}/cancel")
    assert wait_final(client, slow)["status"] == "cancelled"
    runs = {"pipeline": trainer, "outcome": "cancelled"}
    scrape_until(client, "azuraforge_run_duration_seconds_count", 1, **runs)


def test_who_may_read_metrics(tmp_path: Path, trainer: str) -> None:
    settings = make_settings(tmp_path, metrics_token=TOKEN)
    admin = add_user(settings, "admin")
    member = add_user(settings, "mia", role="member")
    app = create_app(settings, run_jobs=False, serve_dashboard=False)
    with TestClient(app) as anonymous:
        refused = anonymous.get("/metrics")
        assert refused.status_code == 401, refused.text
        assert refused.json()["error"]["code"] == "unauthenticated"
        assert "azuraforge" not in refused.text.replace("unauthenticated", "")
        for header in ("Bearer not-the-token", "Basic " + TOKEN, "Bearer", TOKEN):
            answer = anonymous.get("/metrics", headers={"Authorization": header})
            assert answer.status_code == 401, (header, answer.text)
        assert anonymous.get("/metrics", headers=bearer(member)).status_code == 403
        assert anonymous.get("/metrics", headers=bearer(admin)).status_code == 200
        assert anonymous.get("/metrics", headers=bearer(TOKEN)).status_code == 200
        # the metrics token opens /metrics only
        assert anonymous.get(f"{API}/experiments", headers=bearer(TOKEN)).status_code == 401


def test_without_a_metrics_token_only_admins_scrape(api: TestClient) -> None:
    assert api.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 401
    assert api.get("/metrics", headers=bearer("anything")).status_code == 401
    assert api.get("/metrics", headers=bearer(api.token)).status_code == 200  # type: ignore[attr-defined]


def test_websocket_connections_are_counted(tmp_path: Path, trainer: str) -> None:
    settings = make_settings(tmp_path, metrics_token=TOKEN)
    admin = bearer(add_user(settings, "admin"))
    with TestClient(create_app(settings, run_jobs=False, serve_dashboard=False)) as client:
        before, _ = scrape(client)
        with client.websocket_connect(f"{API}/events/status", headers=admin) as ws:
            assert ws.receive_json() == {"type": "subscribed"}
            during, _ = scrape(client)
        # refused sockets are never counted
        with client.websocket_connect(f"{API}/events/status") as ws:
            assert ws.receive_json()["error"]["code"] == "unauthenticated"
        deadline = time.monotonic() + 10
        while True:
            after, _ = scrape(client)
            gone = value(after, "azuraforge_websocket_connections", stream="status")
            if gone == value(before, "azuraforge_websocket_connections", stream="status"):
                break
            assert time.monotonic() < deadline, gone
            time.sleep(0.05)
    key = "azuraforge_websocket_connections"
    assert value(during, key, stream="status") - value(before, key, stream="status") == 1
    assert value(during, key, stream="events") == value(before, key, stream="events")


# -- request ids and structured logs ------------------------------------------------------


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the platform's JSON formatter writes, one object a line, from every logger."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLineFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield out
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def parsed(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


def test_request_ids_reach_the_response_and_every_log_line(
    tmp_path: Path, trainer: str, json_lines: io.StringIO
) -> None:
    settings = make_settings(tmp_path, access_log=True)
    admin = bearer(add_user(settings, "admin"))
    app = create_app(settings, run_jobs=False, serve_dashboard=False)
    worker_log = logging.getLogger("tests.observability")

    @app.get(f"{API}/_test/log/{{word}}")
    def logs_in_a_worker_thread(word: str) -> dict[str, str]:  # sync: runs in the threadpool
        worker_log.info("handling %s", word)
        return {"word": word}

    @app.get(f"{API}/_test/boom")
    def fails() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, headers=admin, raise_server_exceptions=False) as client:
        given = client.get(f"{API}/_test/log/hello", headers={"X-Request-ID": "req-abc_1.2:3"})
        generated = client.get(f"{API}/_test/log/again")
        forged = client.get(
            f"{API}/_test/log/x", headers={"X-Request-ID": "bad id\twith tabs " + "x" * 200}
        )
        boom = client.get(f"{API}/_test/boom", headers={"X-Request-ID": "boom-1"})
        refused = client.get(f"{API}/health", headers={"Host": "evil.example"})
        anonymous = client.get(f"{API}/experiments", headers={"Authorization": "Bearer nope"})

    assert given.headers["X-Request-ID"] == "req-abc_1.2:3"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["X-Request-ID"])
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])
    assert boom.status_code == 500 and boom.headers["X-Request-ID"] == "boom-1"
    assert refused.status_code == 400 and refused.headers["X-Request-ID"]
    assert anonymous.status_code == 401 and anonymous.headers["X-Request-ID"]

    lines = parsed(json_lines)
    handled = [r for r in lines if r["logger"] == "tests.observability"]
    assert [r["message"] for r in handled] == ["handling hello", "handling again", "handling x"]
    assert handled[0]["request_id"] == "req-abc_1.2:3"
    assert handled[1]["request_id"] == generated.headers["X-Request-ID"]
    assert handled[0]["level"] == "INFO" and handled[0]["time"].endswith("+00:00")
    # the 500's own log line, written by Starlette's error middleware, names the request
    crash = [r for r in lines if r["message"] == "unhandled error"]
    assert crash and crash[0]["request_id"] == "boom-1" and "RuntimeError" in crash[0]["exc_info"]
    access = [r for r in lines if r["logger"] == "azuraforge_platform.access"]
    first = next(r for r in access if r["request_id"] == "req-abc_1.2:3")
    assert first["route"] == f"{API}/_test/log/{{word}}" and first["status"] == 200
    assert first["path"] == f"{API}/_test/log/hello" and first["duration_ms"] >= 0
    assert {r["status"] for r in access} >= {200, 500, 400, 401}
    assert all("experiment_id" not in r for r in access)


# -- the Grafana dashboard --------------------------------------------------------------------

# Every metric a dashboard query names starts with one of these (process_*: the client's own).
METRIC = re.compile(r"\b((?:azuraforge|process|python)_[a-zA-Z0-9_]+)\b")
SERIES_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("_count", "_sum", "_created"),
    "gauge": ("",),
    "info": ("_info",),
}


def exported_series(types: dict[str, str]) -> set[str]:
    names = set()
    for name, kind in types.items():
        names.update(name + suffix for suffix in SERIES_SUFFIXES.get(kind, ("",)))
    return names


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))  # collapsed rows hold theirs
    return found


def test_grafana_dashboard_queries_what_the_platform_exports(tmp_path: Path, trainer: str) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    settings = make_settings(tmp_path, metrics_token=TOKEN)
    with TestClient(create_app(settings, serve_dashboard=False)) as client:
        _, types = scrape(client)
    exported = exported_series(types)

    panels = [p for p in panels_of(dashboard) if p["type"] != "row"]
    assert len(panels) >= 8
    ids = [p["id"] for p in panels_of(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    used: set[str] = set()
    for panel in panels:
        assert panel["title"], panel
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= grid.keys() and grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            names = set(METRIC.findall(target["expr"]))
            assert names, f"{panel['title']}: {target['expr']} names no metric of ours"
            missing = names - exported
            assert not missing, f"{panel['title']}: not exported: {sorted(missing)}"
            used |= names
    # the list: every one of these is on the dashboard
    for wanted in (
        "azuraforge_experiments",
        "azuraforge_queue_depth",
        "azuraforge_run_duration_seconds_bucket",
        "azuraforge_workers_alive",
        "azuraforge_websocket_connections",
        "azuraforge_http_request_duration_seconds_bucket",
    ):
        assert wanted in used, wanted


# -- several API processes on one port ---------------------------------------------------------


@pytest.mark.integration
@pytest.mark.slow
def test_api_processes_add_up_their_metrics_and_log_json(
    tmp_path: Path, redis_url: str, channel_prefix: str
) -> None:
    """`azuraforge api --processes 2`: whichever process answers a scrape reports what both
    served (multiprocess mode), and both log JSON lines with the request ids."""
    database = f"sqlite:///{tmp_path / 'store.db'}"
    add_user(Settings(data_dir=tmp_path, database_url=database), "admin")
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"left by an earlier run")  # removed at start
    port = free_port()
    env = dict(os.environ)
    env.update(
        AZURAFORGE_DATA_DIR=str(tmp_path),
        AZURAFORGE_DATABASE_URL=database,
        AZURAFORGE_REDIS_URL=redis_url,
        AZURAFORGE_EVENT_CHANNEL_PREFIX=channel_prefix,
        AZURAFORGE_CELERY_QUEUE=channel_prefix,
        AZURAFORGE_METRICS_TOKEN=TOKEN,
        AZURAFORGE_LOG_FORMAT="json",
        AZURAFORGE_LOG_LEVEL="INFO",
        AZURAFORGE_ACCESS_LOG="true",
        PROMETHEUS_MULTIPROC_DIR=str(folder),
    )
    log_path = tmp_path / "api.log"
    command = [
        sys.executable, "-c", "from azuraforge_platform.cli.app import main; main()",
        "api", "--host", "127.0.0.1", "--port", str(port), "--processes", "2",
    ]  # fmt: skip
    with log_path.open("w") as log:
        api = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert api.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        for i in range(30):  # a fresh connection each, so both processes take some
            answer = httpx.get(f"{url}/api/v1/pipelines", headers={"X-Request-ID": f"mp-{i}"})
            assert answer.status_code == 401 and answer.headers["X-Request-ID"] == f"mp-{i}"
        counted = "azuraforge_http_requests_total"
        labels = {"method": "GET", "route": f"{API}/pipelines", "status": "401"}
        for _ in range(8):
            response = httpx.get(f"{url}/metrics", headers=bearer(TOKEN), timeout=10)
            assert response.status_code == 200, response.text
            samples = {
                (s.name, frozenset(s.labels.items())): s.value
                for family in text_string_to_metric_families(response.text)
                for s in family.samples
            }
            assert value(samples, counted, **labels) == 30  # both processes' requests
            assert value(samples, "azuraforge_queue_depth", queue=channel_prefix) == 0
        served = {p.name.rsplit("_", 1)[1] for p in folder.glob("counter_*.db")}
        assert "999999.db" not in served and len(served) >= 2, served
    finally:
        api.terminate()
        try:
            api.wait(30)
        except subprocess.TimeoutExpired:
            api.kill()
            api.wait()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{channel_prefix}*"):
            client.delete(key)
        client.close()
    records = [
        json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")
    ]
    access = {r["request_id"]: r for r in records if r["logger"] == "azuraforge_platform.access"}
    for i in range(30):
        assert access[f"mp-{i}"]["route"] == f"{API}/pipelines", access.get(f"mp-{i}")
        assert access[f"mp-{i}"]["status"] == 401
