"""`azuraforge up` killed outright (SIGKILL, an out-of-memory kill): its fork server and run
children die with it instead of running on as orphans, and the next `up` recovers the runs
the dead one held at once (re-queued or failed per max_attempts) instead of counting their
workers as live ones. Linux only: the children's lifeline is PR_SET_PDEATHSIG."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from azuraforge_platform.settings import Settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's"),
]

T = TypeVar("T")


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat's fields after the command name (state first, then the parent's pid)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return text.rsplit(")", 1)[1].split()


def running(pid: int) -> bool:
    fields = _stat(pid)
    # a zombie is dead, only not yet reaped (by whatever init this machine has)
    return fields is not None and fields[0] not in ("Z", "X")


def parent_of(pid: int) -> int:
    fields = _stat(pid)
    assert fields is not None, f"process {pid} is gone"
    return int(fields[1])


def _wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class Up:
    """`azuraforge up` as a user starts it, in a subprocess, on a loopback port."""

    def __init__(self, env: dict[str, str], log: Path, workers: int, token: str) -> None:
        from .api.conftest import bearer, free_port

        self.headers = bearer(token)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}/api/v1"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "azuraforge_platform.cli", "up", "--port", str(port),
             "--workers", str(workers)],
            env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.pid = self.process.pid

        def answers() -> bool:
            assert self.process.poll() is None, log.read_text()
            try:
                return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        _wait_for("the API to answer", answers)

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10, headers=self.headers)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(f"{self.url}{path}", json=body, timeout=10, headers=self.headers)
        assert response.status_code in (200, 201), response.text
        return response.json()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@pytest.fixture
def start_up(tmp_path: Path) -> Iterator[Callable[[int], Up]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURAFORGE_")}
    env.update(
        AZURAFORGE_DATA_DIR=str(tmp_path / "data"),
        AZURAFORGE_HEARTBEAT_SECONDS="0.2",
        # Far beyond this test: the periodic reaper is not what recovers the runs here.
        AZURAFORGE_LOST_AFTER_SECONDS="3600",
    )
    started: list[Up] = []
    from .api.conftest import add_user

    token = add_user(Settings(data_dir=tmp_path / "data"), "admin")  # so `up` makes no admin

    def start(workers: int) -> Up:
        started.append(Up(env, tmp_path / f"up-{len(started)}.log", workers, token))
        return started[-1]

    yield start
    for up in started:
        up.stop()


def _run_pid(up: Up, experiment_id: str) -> int | None:
    """The run child's pid, from the log line the probe pipeline writes at every step."""
    exp = up.get(f"/experiments/{experiment_id}")
    if exp["status"] != "running":
        return None
    for line in up.get(f"/experiments/{experiment_id}/logs?limit=5")["items"]:
        if found := re.search(r"pid (\d+) step", line["message"]):
            return int(found.group(1))
    return None


def test_sigkilled_up_takes_its_children_along_and_a_restart_recovers_their_runs(
    start_up: Callable[[int], Up], probe_pipeline: str
) -> None:
    first = start_up(2)
    slow = {"mode": "slow", "steps": 10**7}  # runs until it is stopped
    once = first.post("/experiments", {"pipeline_id": probe_pipeline, "config": slow,
                                       "max_attempts": 1})  # fmt: skip
    twice = first.post("/experiments", {"pipeline_id": probe_pipeline, "config": slow,
                                        "max_attempts": 2})  # fmt: skip
    runs = [_wait_for(f"run {e['id']} to start", lambda e=e: _run_pid(first, e["id"]))
            for e in (once, twice)]  # fmt: skip
    [forkserver] = {parent_of(pid) for pid in runs}
    assert parent_of(forkserver) == first.pid  # the fork server is the API process's child

    first.process.send_signal(signal.SIGKILL)
    first.process.wait(30)
    for pid, what in [*((p, "run child") for p in runs), (forkserver, "fork server")]:
        _wait_for(f"the {what} {pid} to die with its parent", lambda pid=pid: not running(pid))

    second = start_up(2)

    def recovered() -> dict[str, Any] | None:
        failed = second.get(f"/experiments/{once['id']}")
        again = second.get(f"/experiments/{twice['id']}")
        if failed["status"] != "failed" or again["status"] != "running":
            return None
        if f":{second.pid}:" not in again["worker"]:  # not yet recovered, or not yet re-run
            return None
        return {"failed": failed, "again": again}

    state = _wait_for("the dead process's runs to be recovered", recovered)
    again = state["again"]
    assert f":{first.pid}:" in state["failed"]["error"]  # names the process that died
    assert again["attempts"] == 2
    statuses = [e["payload"]["status"]
                for e in second.get(f"/experiments/{once['id']}/events")
                if e["type"] == "status"]  # fmt: skip
    assert statuses[-2:] == ["lost", "failed"]

    def health_settled() -> dict[str, Any] | None:
        health = second.get("/health")
        names = sorted(w["name"] for w in health["workers"])
        return health if names == sorted([again["worker"], "embedded-slot-1"]) else None

    # exactly --workers 2: the re-queued run's new worker and one free slot, no ghosts
    health = _wait_for("health to show the two embedded workers", health_settled)
    assert health["workers_alive"] == 2
    assert not any(f":{first.pid}:" in w["name"] for w in health["workers"])

    second.post(f"/experiments/{twice['id']}/cancel")
    _wait_for("the cancel", lambda: second.get(f"/experiments/{twice['id']}")["status"]
              == "cancelled")  # fmt: skip


def test_die_with_parent_is_a_lifeline_to_the_thread_that_forked(tmp_path: Path) -> None:
    """A child that set the lifeline dies with its parent; the call itself answers True."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from azuraforge_platform.execution.lifeline import die_with_parent\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    ok = die_with_parent()\n"
        "    print(os.getpid(), ok, flush=True)\n"
        "    time.sleep(600)\n"
        "    os._exit(0)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child, ok = parent.stdout.readline().split()
        assert ok == "True"
        parent.kill()
        parent.wait(30)
        _wait_for("the child to die with its parent", lambda: not running(int(child)))
    finally:
        parent.kill()
