"""Distributed mode: two API processes (real uvicorn on loopback ports), one Celery worker,
one Redis. A client of API B follows, live, a job queued through API A."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from websockets.sync.client import connect

from azuraforge_platform.api.schemas import WsToken
from azuraforge_platform.client import AzuraForgeClient
from azuraforge_platform.settings import Settings

from .conftest import add_user, free_port


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def cluster(
    tmp_path: Path,
    redis_url: str,
    channel_prefix: str,
    trainer: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[str, str]]:
    token = add_user(
        Settings(data_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'store.db'}"), "admin"
    )
    monkeypatch.setenv("AZURAFORGE_TOKEN", token)  # what the clients below send
    env = dict(os.environ)
    env.update(
        AZURAFORGE_DATA_DIR=str(tmp_path),
        AZURAFORGE_DATABASE_URL=f"sqlite:///{tmp_path / 'store.db'}",
        AZURAFORGE_REDIS_URL=redis_url,
        AZURAFORGE_EVENT_CHANNEL_PREFIX=channel_prefix,
        AZURAFORGE_CELERY_QUEUE=channel_prefix,
        AZURAFORGE_HEARTBEAT_SECONDS="0.2",
        AZURAFORGE_WS_PING_SECONDS="0.5",
    )
    processes = []
    urls = []
    try:
        processes.append(
            _start(
                [
                    sys.executable, "-m", "celery", "-A", "azuraforge_platform.worker.app",
                    "worker", "--pool=solo", "--without-gossip", "--without-mingle",
                    "--loglevel=INFO", "-Q", channel_prefix, "-n", f"{channel_prefix}@%h",
                ],
                env,
                tmp_path / "worker.log",
            )
        )  # fmt: skip
        for name in ("a", "b"):
            port = free_port()
            processes.append(
                _start(
                    [
                        sys.executable, "-m", "uvicorn", "--factory",
                        "azuraforge_platform.api.app:create_app", "--host", "127.0.0.1",
                        "--port", str(port), "--log-level", "warning",
                    ],
                    env,
                    tmp_path / f"api-{name}.log",
                )
            )  # fmt: skip
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 90
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                logs = "\n".join(p.read_text()[-2000:] for p in tmp_path.glob("*.log"))
                assert time.monotonic() < deadline, logs
                time.sleep(0.2)
        yield urls[0], urls[1]
    finally:
        for process in processes:
            _stop(process)
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{channel_prefix}*"):
            client.delete(key)
        client.close()


@pytest.mark.integration
@pytest.mark.slow
def test_api_b_streams_a_job_queued_through_api_a(
    cluster: tuple[str, str], trainer: str, tmp_path: Path, channel_prefix: str
) -> None:
    url_a, url_b = cluster
    a, b = AzuraForgeClient(url_a), AzuraForgeClient(url_b)
    health = a.health()
    assert health.mode == "distributed" and health.queue.kind == "redis" and health.queue.ok
    exp = a.create_experiment(trainer, {"epochs": 30, "sleep": 0.1})
    ws_b = url_b.replace("http", "ws") + f"/api/v1/experiments/{exp.id}/events?after=0"
    seqs: list[int] = []
    statuses_while_live: list[str] = []
    # a WebSocket token from A opens a socket on B: the instances share the signing key
    ws_token = a._post(WsToken, "/auth/ws-token").token
    protocols = ["azuraforge.v1", f"azuraforge.token.{ws_token}"]
    with connect(ws_b, open_timeout=30, subprotocols=protocols) as ws:  # type: ignore[arg-type]
        assert ws.subprotocol == "azuraforge.v1"
        while True:
            try:
                message = json.loads(ws.recv(timeout=120))
            except TimeoutError:
                pytest.fail((tmp_path / "worker.log").read_text()[-3000:])
            if message["type"] == "end":
                assert message["status"] == "succeeded"
                break
            if "seq" in message:
                seqs.append(message["seq"])
                if message["type"] == "metrics" and len(statuses_while_live) < 3:
                    statuses_while_live.append(b.get_experiment(exp.id).status.value)
    assert "running" in statuses_while_live  # events reached B while the run was going on
    final = b.get_experiment(exp.id)
    assert final.status.value == "succeeded" and final.worker is not None
    assert seqs == list(range(1, final.last_event_seq + 1))
    assert b.metrics(exp.id).series[0].total_points == 30
    deadline = time.monotonic() + 30
    while (alive := a.health()).workers_alive < 1:  # the idle worker answers the ping
        assert time.monotonic() < deadline, alive
        time.sleep(0.5)
    assert any(channel_prefix in w.name for w in alive.workers)
    a.close()
    b.close()
