"""The compose stack in deploy/, built and run in containers: every image built from
deploy/Dockerfile on the registry-free base (deploy/make-base-image.sh), the stack started by
`docker-compose` from deploy/docker-compose.yml with two workers, and then used as a team would:
an admin made with the README's command, a login over HTTPS through nginx, an image classifier
run whose events arrive over WSS, and the worker container running it killed mid-run with one
of the two API containers, after which the run still succeeds, resumed by a worker from its
checkpoint on the shared volume, and every event still arrives over WSS.

The engine is Podman (Debian's 4.3) behind its Docker-compatible API, which Debian's
docker-compose 1.29 drives as it would drive Docker. Podman, runc, mmdebstrap and
docker-compose are installed from Debian when missing (as root); the images are kept between
runs as a build cache, everything else (containers, volumes, network, .env, certificate) goes.
Marked `containers` (`make test-containers`): a cold run builds about 3 GB of images.
Where no container can run, the tests fail on CI and skip elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import httpx
import pytest

pytestmark = [
    pytest.mark.containers,
    pytest.mark.slow,
    pytest.mark.xdist_group("deploy"),  # apt and the engine's storage are the machine's
    pytest.mark.timeout(3600),  # a cold run: packages, the base image and every build
]

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"
PROJECT = "azf-containers-test"
# unusual ports: nothing else on a development machine or a CI runner is likely to hold them
HTTP_PORT, HTTPS_PORT = 38080, 38443
TARGETS = ("postgres", "redis", "api", "worker", "proxy")
# Debian's packages; runc because crun refuses a hybrid cgroup v1 hierarchy (some CI containers)
PACKAGES = ["podman", "runc", "netavark", "aardvark-dns", "catatonit", "mmdebstrap",
            "docker-compose", "openssl"]  # fmt: skip
TOOLS = ("podman", "runc", "mmdebstrap", "docker-compose", "openssl")
# The machine's CA bundle, mounted over the image's while building: a build behind a
# TLS-inspecting proxy then trusts its root, as this machine does, and the images keep theirs.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Podman's own defaults that a container cannot always honour: nofile/nproc limits above the
# caller's (an unprivileged CI container) and crun on a hybrid cgroup v1 hierarchy.
CONTAINERS_CONF = '[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = "runc"\n'


def _load(path: Path, name: str) -> ModuleType:
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# the topology's apt helper and the WSS follower its test uses, shared rather than copied
deployment = _load(Path(__file__).with_name("test_deployment.py"), "azuraforge_test_deployment")
topology_module = deployment.topology_module


def _unavailable(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set, so this is an error: {message}", pytrace=False)
    pytest.skip(message)


def _ensure_tools() -> None:
    missing = [t for t in TOOLS if topology_module.find_tool(t) is None]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        _unavailable(
            f"no {', '.join(missing)} here, and only root installs them: "
            f"sudo apt-get install {' '.join(PACKAGES)}"
        )
    # without recommends: docker-compose's would pull in the Docker daemon
    topology_module.apt_install(["--no-install-recommends", *PACKAGES], timeout=900)


@dataclass
class Engine:
    """Podman with this test's containers.conf, its Docker-compatible API on a socket of its
    own, and docker-compose talking to that socket for one compose project."""

    work: Path
    env: dict[str, str] = field(default_factory=dict)
    service: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        conf = self.work / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
        self.env = {**clean, "CONTAINERS_CONF": str(conf)}
        self.podman_path = str(topology_module.find_tool("podman"))
        self.socket = self.work / "podman.sock"
        self.compose_file = self.work / "deploy" / "docker-compose.yml"

    def podman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.podman_path, *args], env=self.env, capture_output=True, text=True,
            timeout=timeout,
        )  # fmt: skip

    def compose(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {**self.env, "DOCKER_HOST": f"unix://{self.socket}"}
        return subprocess.run(
            [str(topology_module.find_tool("docker-compose")), "-p", PROJECT,
             "-f", str(self.compose_file), *args],
            env=env, capture_output=True, text=True, timeout=timeout,
        )  # fmt: skip

    def start_service(self) -> None:
        log = (self.work / "podman-service.log").open("wb")
        self.service = subprocess.Popen(
            [self.podman_path, "system", "service", "--time=0", f"unix://{self.socket}"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.socket.exists():
            assert self.service.poll() is None, (self.work / "podman-service.log").read_text()
            assert time.monotonic() < deadline, "podman system service made no socket"
            time.sleep(0.2)

    def stop_service(self) -> None:
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(30)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait()

    def containers(self, *, running: bool = False) -> list[dict[str, Any]]:
        args = ["ps", "--all", "--format", "json", "--filter",
                f"label=com.docker.compose.project={PROJECT}"]  # fmt: skip
        listed = self.podman(*args)
        assert listed.returncode == 0, listed.stderr
        found = json.loads(listed.stdout or "[]")
        return [c for c in found if not running or c["State"] == "running"]

    def service_of(self, container: dict[str, Any]) -> str:
        return str(container["Labels"]["com.docker.compose.service"])

    def health(self, container_id: str) -> str:
        inspected = self.podman("inspect", "--format", "{{.State.Health.Status}}", container_id)
        return inspected.stdout.strip() if inspected.returncode == 0 else ""

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail=40", timeout=120).stdout[-8000:]


class HealthChecks(threading.Thread):
    """Podman runs a container's HEALTHCHECK from a systemd timer it makes for that container;
    without systemd (CI containers, this development machine) none runs, every container stays
    "starting" and compose's `condition: service_healthy` waits forever. This thread does what
    the timers would: `podman healthcheck run` on each running container of the stack every
    3 s, a new check only when the container's last one has finished."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(daemon=True)
        self.engine = engine
        self.stopping = threading.Event()

    def run(self) -> None:
        checks: dict[str, subprocess.Popen[bytes]] = {}
        while not self.stopping.wait(3):
            try:
                running = self.engine.containers(running=True)
            except (AssertionError, ValueError, subprocess.TimeoutExpired):
                continue  # the stack is coming up or going down
            for container in running:
                check = checks.get(container["Id"])
                if check is None or check.poll() is not None:
                    checks[container["Id"]] = subprocess.Popen(
                        [self.engine.podman_path, "healthcheck", "run", container["Id"]],
                        env=self.engine.env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )  # fmt: skip
        for check in checks.values():
            check.kill()
            check.wait()

    def stop(self) -> None:
        self.stopping.set()
        self.join(60)


def _write_project(work: Path) -> dict[str, str]:
    """deploy/docker-compose.yml in a folder of its own, with a .env of random secrets and
    this test's ports and a self-signed certificate: nothing is written into the repository."""
    project = work / "deploy"
    project.mkdir()
    shutil.copy(DEPLOY / "docker-compose.yml", project / "docker-compose.yml")
    made = subprocess.run(
        [str(DEPLOY / "make-cert.sh"), str(project / "certs")], capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    settings = {
        "COMPOSE_PROJECT_NAME": PROJECT,
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        "REDIS_PASSWORD": secrets.token_urlsafe(24),
        "AZURAFORGE_SECRET_KEY": secrets.token_urlsafe(32),
        "HTTP_PORT": str(HTTP_PORT),
        "HTTPS_PORT": str(HTTPS_PORT),
        # a dead worker's run is noticed in seconds rather than the default 25
        "AZURAFORGE_HEARTBEAT_SECONDS": "1.0",
        "AZURAFORGE_LOST_AFTER_SECONDS": "6.0",
        "AZURAFORGE_REAP_SECONDS": "1.0",
    }
    text = (DEPLOY / ".env.example").read_text()
    for key, value in settings.items():
        text, found = re.subn(rf"^(# )?{key}=.*$", f"{key}={value}", text, count=1, flags=re.M)
        assert found, f".env.example has no {key} line"
    (project / ".env").write_text(text)
    return settings


def _make_base(engine: Engine) -> None:
    base = engine.podman("image", "exists", "azuraforge-base")
    if base.returncode != 0:  # made once, then reused: it is Debian's minbase, nothing of ours
        made = subprocess.run(
            [str(DEPLOY / "make-base-image.sh"), "podman"], env=engine.env,
            capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr[-4000:]


def _build(engine: Engine) -> None:
    mount = []
    if HOST_CA_BUNDLE.is_file():
        mount = ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    for target in TARGETS:  # every layer cached after the first run: seconds when unchanged
        built = engine.podman(
            # docker format: OCI image configs have no HEALTHCHECK, and podman would drop it
            "build", "--format", "docker", "--file", str(DEPLOY / "Dockerfile"), "--target", target,
            "--tag", f"azuraforge-{target}", *mount, str(ROOT), timeout=1800,
        )  # fmt: skip
        assert built.returncode == 0, f"building {target}:\n{built.stdout[-3000:]}{built.stderr}"


@dataclass
class Stack:
    engine: Engine
    settings: dict[str, str]
    cert: Path
    admin: str
    password: str

    @property
    def url(self) -> str:
        return f"https://localhost:{HTTPS_PORT}"

    def client(self) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.cert))
        return httpx.Client(
            base_url=self.url, verify=context, headers={"Origin": self.url}, timeout=30
        )


def _wait_healthy(engine: Engine, timeout: float) -> None:
    """Both APIs, both workers, the proxy, PostgreSQL and Redis healthy; migrate exited 0."""
    wanted = {"postgres": 1, "redis": 1, "api-1": 1, "api-2": 1, "worker": 2, "proxy": 1}
    deadline = time.monotonic() + timeout
    while True:
        containers = engine.containers()
        healthy: dict[str, int] = {}
        for container in containers:
            if container["State"] == "running" and engine.health(container["Id"]) == "healthy":
                name = engine.service_of(container)
                healthy[name] = healthy.get(name, 0) + 1
        migrated = [c for c in containers if engine.service_of(c) == "migrate"]
        if healthy == wanted and all(c["ExitCode"] == 0 for c in migrated) and migrated:
            return
        states = [(engine.service_of(c), c["State"], c.get("Status")) for c in containers]
        assert time.monotonic() < deadline, f"not healthy: {states}\n{engine.logs()}"
        time.sleep(2)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _ensure_tools()
    if not (ROOT / "dashboard" / "dist" / "index.html").is_file():
        pytest.fail("the api image serves dashboard/dist: run `make setup` first", pytrace=False)
    work = tmp_path_factory.mktemp("containers")
    engine = Engine(work)
    info = engine.podman("info", "--format", "json")
    if info.returncode != 0:
        _unavailable(f"podman cannot run here: {info.stderr.strip()}")
    _make_base(engine)
    tried = engine.podman("run", "--rm", "--network", "none", "azuraforge-base", "true")
    if tried.returncode != 0:
        _unavailable(f"podman cannot start a container here: {tried.stderr.strip()}")
    _build(engine)
    settings = _write_project(work)

    engine.start_service()
    checks = HealthChecks(engine)
    checks.start()
    try:
        engine.compose("down", "--volumes", "--remove-orphans", timeout=300)  # an aborted run's
        # --no-build: the images just built are the ones under test
        up = engine.compose("up", "--detach", "--no-build", "--scale", "worker=2", timeout=900)
        assert up.returncode == 0, f"{up.stderr[-4000:]}\n{engine.logs()}"
        _wait_healthy(engine, timeout=300)
        # the first admin, made as deploy/README.md says; the password is printed once
        made = engine.compose(
            "run", "--rm", "-T", "migrate", "azuraforge", "users", "create", "admin", "--admin"
        )
        assert made.returncode == 0, made.stderr
        found = re.search(r"password: (\S+)", made.stdout)
        assert found, made.stdout
        yield Stack(engine, settings, work / "deploy" / "certs" / "cert.pem", "admin",
                    found.group(1))  # fmt: skip
    finally:
        down = engine.compose("down", "--volumes", "--remove-orphans", timeout=300)
        checks.stop()
        engine.stop_service()
        left = engine.containers()
        volumes = engine.podman(
            "volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={PROJECT}"
        )
        assert down.returncode == 0 and not left and not volumes.stdout.strip(), (
            down.stderr, left, volumes.stdout
        )  # fmt: skip


def test_the_stack_serves_the_platform_over_https_through_nginx(stack: Stack) -> None:
    # plain HTTP is redirected to HTTPS, on the published port
    plain = httpx.get(f"http://localhost:{HTTP_PORT}/api/v1/health?x=1")
    assert plain.status_code == 301
    assert plain.headers["location"] == f"{stack.url}/api/v1/health?x=1"
    with stack.client() as http:
        health = http.get("/api/v1/health").json()
        assert health["status"] == "ok" and health["mode"] == "distributed", health
        assert health["database"]["ok"] and health["queue"]["ok"], health
        assert health["workers_alive"] == 2, health  # --scale worker=2
        # the API image serves the dashboard
        page = http.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        login = http.post(
            "/api/v1/auth/login", json={"username": stack.admin, "password": stack.password}
        )
        assert login.status_code == 200, login.text
        # the API believed nginx's X-Forwarded-Proto: the session cookie is for HTTPS only
        assert "Secure" in login.headers["set-cookie"]
        me = http.get("/api/v1/auth/me").json()
        assert me["username"] == stack.admin and me["role"] == "admin", me
    # the API and the workers run as the image's own user, not root
    for container in stack.engine.containers(running=True):
        if stack.engine.service_of(container) in {"api-1", "api-2", "worker"}:
            uid = stack.engine.podman("exec", container["Id"], "id", "-u")
            assert uid.stdout.strip() == "10001", (container["Names"], uid)


def test_a_run_survives_losing_its_worker_container_and_an_api_container(stack: Stack) -> None:
    engine = stack.engine
    http = stack.client()
    login = http.post(
        "/api/v1/auth/login", json={"username": stack.admin, "password": stack.password}
    )
    assert login.status_code == 200, login.text
    epochs = 10
    # the real classifier on its bundled MNIST subset (offline), small enough for seconds an epoch
    config = {"dataset": "mnist_5k", "max_samples": 1000, "epochs": epochs}
    created = http.post(
        "/api/v1/experiments", json={"pipeline_id": "image_classifier", "config": config}
    )
    assert created.status_code == 201, created.text
    exp_id = created.json()["id"]
    lock = threading.Lock()

    def ws_token() -> str:
        with lock:
            answer = http.post("/api/v1/auth/ws-token")
            assert answer.status_code == 200, answer.text
            return str(answer.json()["token"])

    context = ssl.create_default_context(cafile=str(stack.cert))
    ws_url = f"wss://localhost:{HTTPS_PORT}/api/v1/experiments/{exp_id}/events"
    follower = deployment.Follower(ws_url, ws_token(), ws_token, context, stack.url)
    follower.start()
    assert follower.connected.wait(30), follower.error

    def experiment() -> dict[str, Any]:
        answer = http.get(f"/api/v1/experiments/{exp_id}")
        assert answer.status_code == 200, answer.text
        return dict(answer.json())

    def wait_for(what: Callable[[], bool], timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < deadline, f"{experiment()}\n{engine.logs()}"
            time.sleep(0.2)

    def epochs_done() -> list[int]:
        answer = http.get(f"/api/v1/experiments/{exp_id}/metrics", params={"name": "loss"})
        assert answer.status_code == 200, answer.text
        return [step for s in answer.json()["series"] for step in s["steps"]]

    # mid-run: two epochs done and seen live over WSS; then its worker's container dies
    wait_for(lambda: len(epochs_done()) >= 2)
    wait_for(lambda: "metrics" in follower.types, timeout=30)
    node = (experiment()["worker"] or "").split(":", 1)[0]  # celery@<container hostname>
    workers = {
        engine.podman("inspect", "--format", "{{.Config.Hostname}}", c["Id"]).stdout.strip(): c
        for c in engine.containers(running=True)
        if engine.service_of(c) == "worker"
    }
    victim = workers.get(node.removeprefix("celery@"))
    assert victim is not None, (node, list(workers))
    [api_1] = [c for c in engine.containers(running=True) if engine.service_of(c) == "api-1"]
    for container in (victim, api_1):  # and one API instance goes down with it
        killed = engine.podman("kill", "--signal", "KILL", container["Id"])
        assert killed.returncode == 0, killed.stderr
    # nginx sends everything to the instance that is left, POSTs included
    for _ in range(4):
        experiment()
    assert http.post("/api/v1/auth/ws-token").status_code == 200

    follower.join(600)
    assert not follower.is_alive() and follower.error is None, (follower.error, engine.logs())
    final = experiment()
    assert final["status"] == "succeeded", (final, engine.logs())
    assert final["attempts"] == 2, final  # lost with its container, then resumed
    # every epoch once: the resumed attempt went on from the checkpoint on the shared volume
    assert epochs_done() == list(range(1, epochs + 1))
    stored = http.get(f"/api/v1/experiments/{exp_id}/events", params={"limit": 5000}).json()
    seqs = [e["seq"] for e in stored]
    assert seqs == list(range(1, final["last_event_seq"] + 1))
    statuses = [e["payload"]["status"] for e in stored if e["type"] == "status"]
    assert statuses[-4:] == ["lost", "queued", "running", "succeeded"], statuses
    # everything arrived over WSS through nginx, in order, none twice
    assert follower.seqs == seqs
    assert follower.end is not None and follower.end["status"] == "succeeded"
    artifacts = http.get(f"/api/v1/experiments/{exp_id}/artifacts").json()
    assert any(a["path"].endswith("model.safetensors") for a in artifacts["items"]), artifacts
    http.close()
