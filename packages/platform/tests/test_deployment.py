"""The deployment in deploy/: nginx accepts the project's config, the compose files validate,
.env.example documents every setting, and the production topology, started as local processes
with the same programs (Debian's nginx with the project's config and a self-signed
certificate, two `azuraforge api` instances, two `azuraforge worker`s, PostgreSQL, Redis),
serves a run over HTTPS and WSS through nginx and loses nothing when an API instance and the
worker running it are killed in the middle of it.

Debian's nginx, gettext-base, openssl and docker-compose are installed when missing (as root,
like Chromium for the e2e tests); elsewhere the tests say what to install.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import redis
import yaml
from pydantic import AliasChoices
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStore

# one xdist worker runs them all: the packages they may install share one dpkg lock
pytestmark = pytest.mark.xdist_group("deploy")

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
PASSWORD = "a password for the topology"


def _load_topology() -> ModuleType:
    """deploy/local_topology.py, the module deploy/local-topology.sh runs."""
    name = "azuraforge_deploy_local_topology"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, DEPLOY / "local_topology.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


topology_module = _load_topology()


def _debian_tool(command: str, package: str) -> str:
    found = topology_module.find_tool(command)
    if found:
        return str(found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"this test needs Debian's {package}: sudo apt-get install {package}")
    topology_module.apt_install([package])
    found = topology_module.find_tool(command)
    assert found, f"{package} installed no {command}"
    return str(found)


# -- the files ------------------------------------------------------------------------------


def _render(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AZF_API_UPSTREAMS": "127.0.0.1:18001 127.0.0.1:18002",
        "AZF_HTTP_PORT": "18080",
        "AZF_HTTPS_PORT": "18443",
        "AZF_TLS_CERT": str(tmp_path / "certs" / "cert.pem"),
        "AZF_TLS_KEY": str(tmp_path / "certs" / "key.pem"),
        "AZF_NGINX_RUN_DIR": str(tmp_path / "run"),
        "AZF_NGINX_ACCESS_LOG": str(tmp_path / "access.log"),
        **overrides,
    }
    return subprocess.run(
        [str(DEPLOY / "nginx" / "render.sh"), str(tmp_path / "nginx.conf")],
        env=env,
        capture_output=True,
        text=True,
    )


def test_nginx_accepts_the_rendered_config(tmp_path: Path) -> None:
    topology_module.ensure_debian_tools()
    made = subprocess.run(
        [str(DEPLOY / "make-cert.sh"), str(tmp_path / "certs"), "forge.example"],
        capture_output=True,
        text=True,
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "certs" / "key.pem").stat().st_mode & 0o077 == 0  # owner only
    san = subprocess.run(
        ["openssl", "x509", "-in", str(tmp_path / "certs" / "cert.pem"), "-noout", "-ext",
         "subjectAltName"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "DNS:forge.example" in san and "DNS:localhost" in san and "127.0.0.1" in san
    rendered = _render(tmp_path)
    assert rendered.returncode == 0, rendered.stderr
    config = (tmp_path / "nginx.conf").read_text()
    assert "${" not in config  # every placeholder filled, nginx's own $variables untouched
    assert "$http_upgrade" in config and "$proxy_add_x_forwarded_for" in config
    assert "server 127.0.0.1:18001 " in config and "server 127.0.0.1:18002 " in config
    assert "return 301 https://$host:18443$request_uri;" in config
    nginx = topology_module.find_tool("nginx")
    checked = subprocess.run(
        [nginx, "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path), "-e", "stderr"],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


def test_render_refuses_a_missing_certificate_and_a_bad_upstream(tmp_path: Path) -> None:
    missing = _render(tmp_path)
    assert missing.returncode == 1 and "deploy/make-cert.sh" in missing.stderr
    bad = _render(tmp_path, AZF_API_UPSTREAMS="api-1:8000; evil")
    assert bad.returncode == 2 and "bad upstream address" in bad.stderr


def test_websocket_read_timeout_outlasts_every_ping_and_a_prediction() -> None:
    template = (DEPLOY / "nginx" / "nginx.conf.template").read_text()
    [read_timeout] = re.findall(r"proxy_read_timeout (\d+)s;", template)
    defaults = Settings()
    uvicorn_ping = 20  # azuraforge api: ws_ping_interval
    assert int(read_timeout) > max(defaults.ws_ping_seconds, uvicorn_ping)
    assert int(read_timeout) > defaults.predict_timeout_seconds
    # uvicorn closes an idle kept-alive connection after 5 s (timeout_keep_alive, which
    # `azuraforge api` leaves at its default): nginx lets go of it before
    [keepalive] = re.findall(r"keepalive_timeout (\d+)s;", template)
    assert int(keepalive) < 5
    [body] = re.findall(r"client_max_body_size (\d+)m;", template)
    assert int(body) * 2**20 >= defaults.upload_max_bytes


def test_env_example_documents_every_setting() -> None:
    example = (DEPLOY / ".env.example").read_text()
    variables = []
    for name, field in Settings.model_fields.items():
        alias = field.validation_alias  # a setting read from a variable of its own name
        if isinstance(alias, AliasChoices):
            variables.append(str(alias.choices[0]))
        else:
            variables.append(alias if isinstance(alias, str) else f"AZURAFORGE_{name.upper()}")
    missing = [v for v in variables if not re.search(rf"^#? ?{v}=", example, re.MULTILINE)]
    assert not missing, f"deploy/.env.example does not document {missing}"


def _compose(tmp_path: Path, settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` (Debian's docker-compose 1.29, which needs no engine) in a copy
    of deploy/ whose .env is .env.example with `settings` set (uncommented where needed)."""
    tool = _debian_tool("docker-compose", "docker-compose")
    work = tmp_path / "deploy"
    if not work.exists():
        shutil.copytree(DEPLOY, work, ignore=shutil.ignore_patterns("certs", ".env"))
    text = (DEPLOY / ".env.example").read_text()
    for key, value in settings.items():
        text, found = re.subn(rf"^(# )?{key}=.*$", f"{key}={value}", text, 1, re.MULTILINE)
        assert found, f".env.example has no {key} line"
    (work / ".env").write_text(text)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run([tool, "config"], cwd=work, env=clean, capture_output=True, text=True)


SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "REDIS_PASSWORD": "redis-secret",
    "AZURAFORGE_SECRET_KEY": "signing-key",
}


def test_the_compose_stack_validates_and_has_the_topology(tmp_path: Path) -> None:
    result = _compose(tmp_path, SECRETS)
    assert result.returncode == 0, result.stderr
    stack = yaml.safe_load(result.stdout)
    services = stack["services"]
    assert set(services) == {"postgres", "redis", "migrate", "api-1", "api-2", "worker", "proxy"}
    assert services["migrate"]["command"] == ["azuraforge", "db", "upgrade"]
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    for name in ("api-1", "api-2", "worker"):
        service = services[name]
        assert service["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "redis": {"condition": "service_healthy"},
        }
        env = service["environment"]
        assert env["AZURAFORGE_DATABASE_URL"] == (
            "postgresql://azuraforge:pg-secret@postgres:5432/azuraforge"
        )
        assert env["AZURAFORGE_REDIS_URL"] == "redis://:redis-secret@redis:6379/0"
        assert env["AZURAFORGE_SECRET_KEY"] == "signing-key"  # one key for every instance
        # artifacts and checkpoints on the volume every node shares
        assert "azuraforge-data:/var/lib/azuraforge:rw" in service["volumes"]
        assert "ports" not in service  # only nginx is published
    worker = services["worker"]
    assert "container_name" not in worker  # --scale worker=N
    assert worker["build"]["target"] == "worker"
    proxy = services["proxy"]
    assert proxy["environment"]["AZF_API_UPSTREAMS"] == "api-1:8000 api-2:8000"
    assert proxy["depends_on"] == {
        "api-1": {"condition": "service_healthy"},
        "api-2": {"condition": "service_healthy"},
    }
    # nginx alone is published, on 80 (redirects) and 443
    targets = [
        str(p["target"]) if isinstance(p, dict) else p.split(":")[-1] for p in proxy["ports"]
    ]
    assert sorted(targets) == ["443", "80"]
    assert any(v.endswith(":/etc/azuraforge/tls:ro") for v in proxy["volumes"])
    assert set(stack["volumes"]) == {"azuraforge-data", "postgres-data", "redis-data"}
    for service in services.values():  # built here from deploy/Dockerfile, never pulled
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["build"]["args"]["BASE_IMAGE"] == "azuraforge-base"


def test_one_setting_selects_gpu_workers(tmp_path: Path) -> None:
    # the line .env.example shows, uncommented
    [choice] = re.findall(r"^# COMPOSE_FILE=(.*)$", (DEPLOY / ".env.example").read_text(), re.M)
    result = _compose(tmp_path, {**SECRETS, "COMPOSE_FILE": choice})
    assert result.returncode == 0, result.stderr
    worker = yaml.safe_load(result.stdout)["services"]["worker"]
    assert worker["build"]["target"] == "worker-gpu"
    assert worker["environment"]["AZURAFORGE_DEVICE"] == "cuda"
    [device] = worker["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]


def test_compose_refuses_to_start_without_the_secrets(tmp_path: Path) -> None:
    result = _compose(tmp_path, {})
    assert result.returncode != 0 and "set POSTGRES_PASSWORD in deploy/.env" in result.stderr


def _stages(dockerfile: str) -> dict[str, str]:
    stages: dict[str, str] = {}
    name = ""
    for line in dockerfile.splitlines():
        found = re.match(r"FROM \S+(?: AS (\S+))?", line)
        if found:
            name = found.group(1) or ""
            stages[name] = ""
        elif name:
            stages[name] += line + "\n"
    return stages


def test_the_images_are_multi_stage_non_root_and_checked() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert dockerfile.startswith("# syntax=docker/dockerfile:1")
    assert "ARG BASE_IMAGE=azuraforge-base" in dockerfile
    stages = _stages(dockerfile)
    for target in ("api", "worker", "worker-gpu", "proxy", "postgres", "redis"):
        assert "HEALTHCHECK" in stages[target], target
    for target in ("api", "worker", "worker-gpu"):
        body = stages[target]
        assert "USER azuraforge" in body and "COPY --from=" in body, target
    assert "--no-dev" in stages["build"] and "--locked" in stages["build"]
    assert "USER postgres" in stages["postgres"] and "USER redis" in stages["redis"]
    assert 'ENTRYPOINT ["/opt/azuraforge/nginx/entrypoint.sh"]' in stages["proxy"]
    assert "--extra cuda" in stages["build-gpu"]
    assert "COPY --from=build-gpu" in stages["worker-gpu"]
    assert "ENV AZURAFORGE_DEVICE=cuda" in stages["worker-gpu"]


def test_the_scripts_parse_and_are_executable() -> None:
    scripts = sorted(DEPLOY.rglob("*.sh"))
    assert {p.name for p in scripts} >= {
        "make-cert.sh", "make-base-image.sh", "local-topology.sh", "render.sh",
        "entrypoint.sh", "postgres-entrypoint.sh",
    }  # fmt: skip
    for script in scripts:
        assert os.access(script, os.X_OK), script
        checked = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert checked.returncode == 0, (script, checked.stderr)


# -- the topology, as local processes ---------------------------------------------------------


@pytest.fixture
def topology(
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    channel_prefix: str,
    fit_pipeline: str,
) -> Iterator[Any]:
    env = {
        **os.environ,
        "AZURAFORGE_DATABASE_URL": postgres_url,
        "AZURAFORGE_REDIS_URL": redis_url,
        "AZURAFORGE_EVENT_CHANNEL_PREFIX": channel_prefix,
        "AZURAFORGE_CELERY_QUEUE": channel_prefix,
        "AZURAFORGE_DATA_DIR": str(tmp_path / "shared"),  # what every node reaches
        "AZURAFORGE_CONFIG_DIR": str(tmp_path / "config"),
        "AZURAFORGE_HEARTBEAT_SECONDS": "0.3",
        "AZURAFORGE_LOST_AFTER_SECONDS": "3",
        "AZURAFORGE_REAP_SECONDS": "0.5",
    }
    env.pop("AZURAFORGE_SECRET_KEY", None)  # the topology makes the one key all APIs share
    topology = topology_module.Topology(
        tmp_path / "topology", env, apis=2, workers=2, https_port=0, http_port=0
    )
    topology.start()
    try:
        yield topology
    finally:
        topology.stop()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{channel_prefix}*"):
            client.delete(key)
        client.close()


class Follower(threading.Thread):
    """Follows an experiment's events over WSS through nginx, as the dashboard does: on a
    dropped socket it reconnects with `after=<last seq>`, so it misses nothing and sees
    nothing twice."""

    def __init__(
        self,
        url: str,
        first_token: str,
        ws_token: Callable[[], str],
        context: ssl.SSLContext,
        origin: str,
    ) -> None:
        super().__init__(daemon=True)
        self.url, self.ws_token, self.context, self.origin = url, ws_token, context, origin
        self.tokens = [first_token]
        self.seqs: list[int] = []
        self.types: list[str] = []
        self.end: dict[str, Any] | None = None
        self.connections = 0
        self.error: BaseException | None = None
        self.connected = threading.Event()

    def run(self) -> None:
        try:
            while self.end is None and self.connections < 10:
                self._follow()
        except BaseException as exc:
            self.error = exc

    def _follow(self) -> None:
        after = self.seqs[-1] if self.seqs else 0
        token = self.tokens.pop() if self.tokens else self.ws_token()
        try:
            with connect(
                f"{self.url}?after={after}",
                ssl=self.context,
                origin=self.origin,  # type: ignore[arg-type]
                subprotocols=["azuraforge.v1", f"azuraforge.token.{token}"],  # type: ignore[list-item]
                open_timeout=30,
            ) as ws:
                self.connections += 1
                self.connected.set()
                while True:
                    message = json.loads(ws.recv(timeout=120))
                    if message["type"] == "end":
                        self.end = message
                        return
                    if "seq" in message:
                        self.seqs.append(message["seq"])
                        self.types.append(message["type"])
        except ConnectionClosed:
            return  # its API instance went away: reconnect through nginx


def _access_log(topology: Any) -> list[dict[str, str]]:
    entries = []
    pattern = re.compile(
        r'"(?P<method>\S+) (?P<path>\S+) [^"]*" (?P<status>\d+) (?P<bytes>\d+) '
        r"upstream=(?P<upstream>.*?) upstream_status="
    )
    for line in topology.access_log.read_text().splitlines():
        if found := pattern.search(line):
            entry = found.groupdict()
            # "a:1, b:2" when nginx tried a dead instance first: the last one answered
            entry["served_by"] = entry["upstream"].split(",")[-1].strip()
            entries.append(entry)
    return entries


@pytest.mark.integration
@pytest.mark.slow
def test_the_topology_serves_a_run_through_nginx_and_survives_losing_an_api_and_a_worker(
    topology: Any, fit_pipeline: str, postgres_url: str
) -> None:
    # the first admin, made the way the README says (a name of its own: the database is
    # shared with the session's other tests)
    user = f"alice-{topology.api_ports[0]}"
    made = subprocess.run(
        [topology.azuraforge, "users", "create", user, "--admin", "--password-stdin"],
        input=PASSWORD + "\n", env=topology.env, capture_output=True, text=True,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    url, origin = topology.url, topology.url
    context = ssl.create_default_context(cafile=str(topology.cert))  # trusts the self-signed cert

    # plain HTTP is redirected to HTTPS
    plain = httpx.get(f"http://localhost:{topology.http_port}/api/v1/health?x=1")
    assert plain.status_code == 301
    assert plain.headers["location"] == f"{url}/api/v1/health?x=1"

    http = httpx.Client(base_url=url, verify=context, headers={"Origin": origin}, timeout=30)
    login = http.post("/api/v1/auth/login", json={"username": user, "password": PASSWORD})
    assert login.status_code == 200, login.text
    cookie = login.headers["set-cookie"]
    # the API believed nginx's X-Forwarded-Proto: the session cookie is for HTTPS only
    assert "Secure" in cookie and "HttpOnly" in cookie
    for _ in range(4):
        assert http.get("/api/v1/auth/me").json()["username"] == user

    config = {"epochs": 12, "steps_per_epoch": 10, "step_sleep": 0.05}
    created = http.post("/api/v1/experiments", json={"pipeline_id": fit_pipeline, "config": config})
    assert created.status_code == 201, created.text
    exp_id = created.json()["id"]
    lock = threading.Lock()

    def ws_token() -> str:
        with lock:
            answer = http.post("/api/v1/auth/ws-token")
            assert answer.status_code == 200, answer.text
            return str(answer.json()["token"])

    # Two followers whose sockets open one right after the other (their first tokens are
    # fetched before): nginx's round robin gives each its own instance.
    ws_url = f"wss://{urlsplit(url).netloc}/api/v1/experiments/{exp_id}/events"
    firsts = [ws_token(), ws_token()]
    followers = [Follower(ws_url, first, ws_token, context, origin) for first in firsts]
    for follower in followers:
        follower.start()
        assert follower.connected.wait(30), follower.error

    data_dir = Path(topology.env["AZURAFORGE_DATA_DIR"])
    store = ExperimentStore.from_settings(Settings(database_url=postgres_url, data_dir=data_dir))
    try:

        def wait_for(what: Callable[[], bool], timeout: float = 90) -> None:
            deadline = time.monotonic() + timeout
            while not what():
                logs = {p.name: p.tail(1500) for p in topology.processes.values()}
                assert time.monotonic() < deadline, logs
                time.sleep(0.05)

        # mid-run: three epochs done, and both followers have seen metrics live
        wait_for(lambda: len(store.metrics(exp_id)) >= 3)
        wait_for(lambda: all("metrics" in f.types for f in followers))
        running = store.get(exp_id)
        node = (running.worker or "").split(":", 1)[0]
        [worker_name] = [n for n, w in topology.worker_nodes.items() if w == node]
        topology.kill(worker_name)  # the worker's machine goes down with its run
        topology.kill("api-1")  # and so does one API instance, with the sockets it served

        # nginx sends everything to the instance that is left, POSTs included
        for _ in range(4):
            answer = http.get(f"/api/v1/experiments/{exp_id}")
            assert answer.status_code == 200, answer.text
        assert http.post("/api/v1/auth/ws-token").status_code == 200

        for follower in followers:
            follower.join(120)
            assert not follower.is_alive() and follower.error is None, follower.error
        final = store.get(exp_id)
        assert final.status.value == "succeeded", (final.error, topology.processes)
        assert final.attempts == 2  # lost with its worker, then resumed on the other one
        # every epoch once: the resumed attempt went on from its checkpoint
        assert [p.step for p in store.metrics(exp_id)] == list(range(1, 13))
        stored = store.events_after(exp_id)
        seqs = [e.seq for e in stored]
        assert seqs == list(range(1, final.last_event_seq + 1))
        statuses = [e.payload["status"] for e in stored if e.type == "status"]
        assert statuses[-4:] == ["lost", "queued", "running", "succeeded"]
    finally:
        store.close()
    for follower in followers:
        # every event, in order, none twice, across the reconnection
        assert follower.seqs == seqs
        assert follower.end is not None and follower.end["status"] == "succeeded"
    # one follower lost its instance and came back through the other
    log = topology.access_log.read_text()[-4000:]
    assert sorted(f.connections for f in followers) == [1, 2], log

    # Both instances served: the REST calls, and each one a WebSocket that carried events.
    first, second = topology.api_addresses()
    entries = _access_log(topology)
    assert {e["served_by"] for e in entries if e["path"].startswith("/api/v1/")} >= {first, second}
    sockets = [e for e in entries if e["path"].startswith(f"/api/v1/experiments/{exp_id}/events")]
    assert {e["status"] for e in sockets} == {"101"}
    assert {e["served_by"] for e in sockets if int(e["bytes"]) > 0} == {first, second}, entries

    # the containers' health checks, against these processes
    healthcheck = [sys.executable, str(DEPLOY / "docker" / "healthcheck.py")]
    api_env = {**topology.env, "AZURAFORGE_API_PORT": second.rsplit(":", 1)[1]}
    api_check = subprocess.run([*healthcheck, "api"], env=api_env, capture_output=True, text=True)
    assert api_check.returncode == 0 and "health: ok" in api_check.stdout, api_check
    [node] = [w for n, w in topology.worker_nodes.items() if topology.processes[n].alive()]
    pong = subprocess.run(
        [*healthcheck, "worker", node], env=topology.env, capture_output=True, text=True
    )
    assert pong.returncode == 0 and f"{node}: pong" in pong.stdout, pong
    http.close()
