"""`azuraforge worker`: a Celery worker that runs queued experiments (distributed mode)."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

from azuraforge_platform.cli.common import console, fail, load_settings, open_store

__all__ = ["register"]


def _check_redis(url: str) -> None:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
        client.ping()
        client.close()
    except Exception as exc:  # bad URL, refused, timeout, auth: all mean "cannot start"
        fail(f"cannot reach Redis at {url} ({type(exc).__name__}: {exc}); is it running?")


# Run in a child process: CUDA set up in the worker itself would not survive the fork that
# starts each run.
_CUDA_PROBE = (
    "import cupy\n"
    "n = cupy.cuda.runtime.getDeviceCount()\n"
    "print(n)\n"
    "raise SystemExit(0 if n > 0 else 'no CUDA GPU is visible')\n"
)


def _check_cuda() -> int:
    """The number of GPUs a run will see; a clear error when CuPy cannot use one."""
    try:
        probe = subprocess.run(
            [sys.executable, "-c", _CUDA_PROBE], capture_output=True, text=True, timeout=300
        )
    except subprocess.TimeoutExpired:
        fail("AZURAFORGE_DEVICE=cuda, but asking CuPy for the GPUs timed out")
    if probe.returncode != 0:
        lines = probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"]
        fail(
            f"AZURAFORGE_DEVICE=cuda, but CuPy cannot use a GPU here ({lines[-1]}); install "
            "the GPU extra (`uv sync --extra cuda` and the cuda-toolkit wheels, or build the "
            "GPU worker image, deploy/README.md) on a machine with an NVIDIA GPU, or set "
            "AZURAFORGE_DEVICE=cpu"
        )
    return int(probe.stdout.split()[-1])


def worker_command(
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Experiments run at once.")
    ] = 1,
    queues: Annotated[
        str | None,
        typer.Option(
            "--queues", "-Q", help="Comma-separated queues (default: the configured one)."
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Node name, e.g. gpu1@%h.")
    ] = None,
    pool: Annotated[
        str,
        typer.Option(
            help="Celery pool: threads (default; each run gets its own process anyway) or solo."
        ),
    ] = "threads",
    loglevel: Annotated[str, typer.Option(help="Celery log level.")] = "INFO",
) -> None:
    """Take queued experiments from Redis and run them (needs AZURAFORGE_REDIS_URL)."""
    settings = load_settings()
    if not settings.redis_url:
        fail(
            "the worker needs Redis: set AZURAFORGE_REDIS_URL (e.g. redis://localhost:6379/0); "
            "without it, `azuraforge run` and the embedded mode need no worker"
        )
    if settings.worker_metrics_port is not None and settings.metrics_token is None:
        fail(
            "AZURAFORGE_WORKER_METRICS_PORT is set but AZURAFORGE_METRICS_TOKEN is not: a "
            "worker's /metrics needs the token Prometheus sends (docs/observability.md)",
            2,
        )
    if pool not in ("threads", "solo"):
        fail(f"unknown pool {pool!r}; choose threads or solo (runs get their own process)", 2)
    gpus = _check_cuda() if settings.device == "cuda" else 0
    _check_redis(settings.redis_url)
    open_store(settings).close()  # migrates, and fails clearly if the database is unreachable
    from azuraforge_platform.worker.app import app as celery_app

    argv = [
        "worker",
        f"--concurrency={concurrency}",
        f"--queues={queues or settings.celery_queue}",
        f"--pool={pool}",
        f"--loglevel={loglevel}",
    ]
    if name:
        argv.append(f"--hostname={name}")
    console().print(
        f"worker: queue(s) {queues or settings.celery_queue} on {settings.redis_url}, "
        f"store {settings.resolved_database_url}, runs train on {settings.device}"
        + (f" ({gpus} GPU(s) visible)" if gpus else "")
    )
    celery_app.worker_main(argv=argv)


def register(app: typer.Typer) -> None:
    app.command("worker")(worker_command)
