"""Which worker processes are alive, as `/health` and `/metrics` report them.

A busy worker beats for its run (the store's `heartbeat_at`); an idle one holds no run and
writes nothing, so it is seen by asking: Celery's broadcast ping in distributed mode, this
process's own executor in embedded mode."""

from __future__ import annotations

import os
import socket
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azuraforge_platform.api.services import Services

__all__ = ["celery_nodes", "idle_workers", "node_of"]

_ping_cache: dict[int, tuple[float, list[str]]] = {}


def node_of(worker: str) -> str:
    """The Celery node a run's worker name belongs to: `celery@host:pid:N` -> `celery@host`."""
    return worker.split(":", 1)[0]


def celery_nodes(services: Services) -> list[str]:
    """The Celery nodes that consume this platform's queue and answer now (distributed mode).
    Asked by broadcast, which reaches every worker on the broker: one serving another queue
    (another deployment or test on the same Redis database) is not ours."""
    # A broadcast costs its timeout; several probes and scrapes a second share one answer.
    key = id(services)
    cached = _ping_cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < 5.0:
        return cached[1]
    queue = services.settings.celery_queue
    try:
        inspect = services.celery.control.inspect(timeout=1.0)
        replies: dict[str, list[dict[str, Any]]] = inspect.active_queues() or {}
        names = sorted(n for n, qs in replies.items() if any(q.get("name") == queue for q in qs))
    except Exception:
        names = []
    if names:  # a busy solo-pool worker does not answer: ask again next time
        _ping_cache[key] = (time.monotonic(), names)
    return names


def idle_workers(services: Services, busy: set[str]) -> set[str]:
    """Alive workers not among `busy` (the run worker names of fresh heartbeats): Celery
    nodes that answered and run nothing, or this process when its embedded executor runs
    nothing. Named `celery@host` and `host:pid` respectively."""
    if services.mode == "distributed":
        if services.celery is None:
            return set()
        busy_nodes = {node_of(w) for w in busy}
        return {n for n in celery_nodes(services) if n not in busy_nodes}
    executor = services.executor
    if executor is None or not any(t.is_alive() for t in executor._threads):
        return set()
    me = f"{socket.gethostname()}:{os.getpid()}"
    return set() if any(w.startswith(me + ":") for w in busy) else {me}
