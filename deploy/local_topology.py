"""The production topology as local processes, with the same programs the compose stack runs:
nginx (Debian's package, the project's own config, TLS) in front of two `azuraforge api`
instances, Celery workers (`azuraforge worker`), and the PostgreSQL and Redis you point it at.

    deploy/local-topology.sh [--workers N] [--https-port 8443] [--http-port 8080]

needs AZURAFORGE_DATABASE_URL (PostgreSQL) and AZURAFORGE_REDIS_URL in the environment, runs the
one-shot migration first (`azuraforge db upgrade`, like the compose stack's `migrate`), waits
until every process answers, prints the address and stops everything on Ctrl-C.
`packages/platform/tests/test_deployment.py` drives the same `Topology` class, kills an API
instance and a worker in the middle of a run, and checks that nothing is lost.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
# Debian packages the topology runs, by the command that shows each is there.
DEBIAN_TOOLS = {"nginx": "nginx", "envsubst": "gettext-base", "openssl": "openssl"}


class TopologyError(RuntimeError):
    """A process did not start or did not become ready (the message has its log's tail)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_tool(name: str) -> str | None:
    # nginx lives in /usr/sbin, which a normal user's PATH may lack
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")


def apt_install(packages: list[str], timeout: float = 600) -> None:
    """`apt-get update` and `apt-get install` as root, waiting while another apt holds its
    locks (another install on the machine) instead of failing at once."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    for args in (["update", "-qq"], ["install", "-y", "-qq", *packages]):
        deadline = time.monotonic() + timeout
        while True:
            done = subprocess.run(
                ["apt-get", *lock, *args], env=env, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            if done.returncode == 0:
                break
            if "Could not get lock" not in done.stderr or time.monotonic() > deadline:
                raise TopologyError(f"apt-get {' '.join(args)} failed:\n{done.stderr}")
            time.sleep(2)


def ensure_debian_tools() -> None:
    """Installs nginx, envsubst and openssl from Debian's packages when missing (as root, like
    `make test-e2e` does for Chromium); otherwise says what to install."""
    missing = sorted({pkg for tool, pkg in DEBIAN_TOOLS.items() if find_tool(tool) is None})
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise TopologyError(
            f"the topology needs Debian's {', '.join(missing)}: sudo apt-get install "
            + " ".join(missing)
        )
    apt_install(missing)


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""


class Topology:
    """nginx, `apis` API instances and `workers` Celery workers, each in its own process
    group (killing one takes its children along, as a machine going down would)."""

    def __init__(
        self,
        run_dir: Path,
        env: Mapping[str, str] | None = None,
        *,
        apis: int = 2,
        workers: int = 2,
        https_port: int = 8443,
        http_port: int = 8080,
        cert_dir: Path | None = None,
        host: str = "localhost",
    ) -> None:
        self.run_dir = run_dir.resolve()
        self.logs = self.run_dir / "logs"
        self.cert_dir = (cert_dir or self.run_dir / "certs").resolve()
        self.https_port = https_port or free_port()
        self.http_port = http_port or free_port()
        self.host = host
        self.api_ports = [free_port() for _ in range(apis)]
        self.worker_count = workers
        self.processes: dict[str, Process] = {}
        self.nginx_dir: Path | None = None
        self.env = self._environment(env if env is not None else os.environ)
        bin_dir = Path(sys.executable).parent
        self.azuraforge = str(bin_dir / "azuraforge")

    # -- set-up ---------------------------------------------------------------------------
    def _environment(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        missing = [k for k in ("AZURAFORGE_DATABASE_URL", "AZURAFORGE_REDIS_URL") if not env.get(k)]
        if missing:
            raise TopologyError(
                f"set {' and '.join(missing)}: the topology shares one PostgreSQL and one Redis "
                "(e.g. postgresql://azuraforge@127.0.0.1/azuraforge and redis://127.0.0.1:6379/0)"
            )
        env.setdefault("AZURAFORGE_DATA_DIR", str(self.run_dir / "data"))
        # every API instance must sign and check WebSocket tokens with the same key
        env.setdefault("AZURAFORGE_SECRET_KEY", secrets.token_urlsafe(32))
        env.setdefault("AZURAFORGE_FORWARDED_ALLOW_IPS", "127.0.0.1")  # nginx is local
        return env

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.https_port}"

    @property
    def cert(self) -> Path:
        return self.cert_dir / "cert.pem"

    @property
    def access_log(self) -> Path:
        return self.logs / "nginx-access.log"

    @property
    def worker_nodes(self) -> dict[str, str]:
        """Process name -> Celery node name (what a run's `worker` field starts with)."""
        prefix = self.env.get("AZURAFORGE_EVENT_CHANNEL_PREFIX", "azuraforge")
        host = socket.gethostname()
        return {f"worker-{i + 1}": f"w{i + 1}@{prefix}.{host}" for i in range(self.worker_count)}

    def api_addresses(self) -> list[str]:
        return [f"127.0.0.1:{port}" for port in self.api_ports]

    def _spawn(self, name: str, args: list[str]) -> Process:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                args,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log)
        self.processes[name] = process
        return process

    def _wait(self, what: str, ready: Callable[[], bool], process: Process, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not process.alive():
                raise TopologyError(
                    f"{what} exited ({process.popen.returncode}):\n{process.tail()}"
                )
            if time.monotonic() > deadline:
                raise TopologyError(f"{what} not ready after {timeout:.0f} s:\n{process.tail()}")
            time.sleep(0.1)

    def start(self, timeout: float = 120) -> Topology:
        """Everything, in the compose stack's order; on any failure nothing is left running."""
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, timeout: float) -> None:
        ensure_debian_tools()
        self.logs.mkdir(parents=True, exist_ok=True)
        Path(self.env["AZURAFORGE_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        subprocess.run([str(DEPLOY / "make-cert.sh"), str(self.cert_dir), self.host], check=True)
        # the one-shot migration the other processes wait for
        migrate = subprocess.run(
            [self.azuraforge, "db", "upgrade"], env=self.env, capture_output=True, text=True
        )
        if migrate.returncode != 0:
            raise TopologyError(f"azuraforge db upgrade failed:\n{migrate.stdout}{migrate.stderr}")
        apis = [
            self._spawn(
                f"api-{i + 1}",
                [self.azuraforge, "api", "--host", "127.0.0.1", "--port", str(port)],
            )
            for i, port in enumerate(self.api_ports)
        ]
        workers = [
            self._spawn(name, [self.azuraforge, "worker", "--name", node])
            for name, node in self.worker_nodes.items()
        ]
        for api, port in zip(apis, self.api_ports, strict=True):
            health = f"http://127.0.0.1:{port}/api/v1/health"
            self._wait(api.name, lambda u=health: _answers(u, host=self.host), api, timeout)
        for worker in workers:  # Celery says "<name> ready." once it consumes the queue
            self._wait(worker.name, lambda w=worker: " ready." in w.tail(100_000), worker, timeout)
        self._start_nginx(timeout)

    def _start_nginx(self, timeout: float) -> None:
        # nginx started as root runs its workers as nobody: their temporary files go in a
        # folder they can reach (the run folder may sit under a private one).
        self.nginx_dir = Path(tempfile.mkdtemp(prefix="azuraforge-nginx-"))
        self.nginx_dir.chmod(0o755)
        config = self.nginx_dir / "nginx.conf"
        render_env = {
            **os.environ,
            "AZF_API_UPSTREAMS": " ".join(self.api_addresses()),
            "AZF_HTTP_PORT": str(self.http_port),
            "AZF_HTTPS_PORT": str(self.https_port),
            "AZF_TLS_CERT": str(self.cert),
            "AZF_TLS_KEY": str(self.cert_dir / "key.pem"),
            "AZF_NGINX_RUN_DIR": str(self.nginx_dir / "run"),
            "AZF_NGINX_ACCESS_LOG": str(self.access_log),
        }
        subprocess.run(
            [str(DEPLOY / "nginx" / "render.sh"), str(config)], env=render_env, check=True
        )
        nginx = find_tool("nginx") or "nginx"
        base = [nginx, "-c", str(config), "-p", str(self.nginx_dir), "-e", "stderr"]
        check = subprocess.run([*base, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise TopologyError(f"nginx -t refused the config:\n{check.stderr}")
        process = self._spawn("nginx", base)
        context = ssl.create_default_context(cafile=str(self.cert))
        health = f"{self.url}/api/v1/health"
        self._wait("nginx", lambda: _answers(health, context), process, timeout)

    # -- control --------------------------------------------------------------------------
    def kill(self, name: str) -> None:
        """SIGKILL a process and everything it started, as if its machine went down."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.popen.pid, signal.SIGKILL)
        process.popen.wait()

    def stop(self) -> None:
        """Terminates every process group (nginx first), then kills what is left."""
        order = sorted(self.processes.values(), key=lambda p: p.name != "nginx")
        for process in order:
            if process.alive():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for process in order:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):  # and what outlived its parent
                os.killpg(process.popen.pid, signal.SIGKILL)
            if process.alive():
                process.popen.wait()
        if self.nginx_dir is not None:
            shutil.rmtree(self.nginx_dir, ignore_errors=True)
            self.nginx_dir = None

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _answers(url: str, context: ssl.SSLContext | None = None, host: str | None = None) -> bool:
    request = urllib.request.Request(url, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(request, timeout=3, context=context) as answer:
            return int(answer.status) == 200
    except (urllib.error.URLError, OSError):
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="AzuraForge's production topology as local processes: nginx (TLS) in "
        "front of two API instances and Celery workers, on the PostgreSQL and Redis named by "
        "AZURAFORGE_DATABASE_URL and AZURAFORGE_REDIS_URL."
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (default 2).")
    parser.add_argument("--apis", type=int, default=2, help="API instances (default 2).")
    parser.add_argument("--https-port", type=int, default=8443, help="default 8443")
    parser.add_argument("--http-port", type=int, default=8080, help="redirects (default 8080)")
    parser.add_argument("--host", default="localhost", help="the name users type")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path.home() / ".azuraforge-topology",
        help="logs, certificates and (unless AZURAFORGE_DATA_DIR is set) the shared data "
        "folder (default ~/.azuraforge-topology)",
    )
    parser.add_argument(
        "--cert-dir",
        type=Path,
        help="a folder with your cert.pem and key.pem (default: a self-signed pair made "
        "in RUN_DIR/certs)",
    )
    args = parser.parse_args(argv)
    try:
        topology = Topology(
            args.run_dir,
            apis=args.apis,
            workers=args.workers,
            https_port=args.https_port,
            http_port=args.http_port,
            cert_dir=args.cert_dir,
            host=args.host,
        )
        print(f"starting: logs in {topology.logs}", flush=True)
        topology.start()
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    nodes = topology.worker_nodes
    names = ", ".join(
        f"{n} (pid {p.popen.pid}{', ' + nodes[n] if n in nodes else ''})"
        for n, p in sorted(topology.processes.items())
    )
    print(
        f"AzuraForge is up: open {topology.url}/ (self-signed certificate: "
        f"{topology.cert})\n"
        f"  running: {names}; API instances on {', '.join(topology.api_addresses())}\n"
        f"  data: {topology.env['AZURAFORGE_DATA_DIR']}\n"
        "  first admin (once, with the same AZURAFORGE_DATABASE_URL): "
        "uv run azuraforge users create NAME --admin\n"
        "  Ctrl-C stops everything",
        flush=True,
    )
    reported: set[str] = set()
    try:
        while not stop:
            for process in topology.processes.values():
                if not process.alive() and process.name not in reported:
                    reported.add(process.name)  # the others go on serving, as they would
                    print(
                        f"{process.name} exited ({process.popen.returncode}); see {process.log}",
                        flush=True,
                    )
            time.sleep(0.5)
    finally:
        topology.stop()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
