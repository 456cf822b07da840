"""Distributed mode for real: `azuraforge worker` processes (Celery, prefork pool) on a real
Redis, sharing a real PostgreSQL store, running a pipeline that really trains.

Each worker is its own process group, so SIGKILL takes the whole "machine" down at once:
the Celery parent, its pool process and the run's child process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from azuraforge_platform.events import EventService, RedisEventBus
from azuraforge_platform.jobqueue import CeleryDispatcher, make_celery
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentRecord, ExperimentStatus, ExperimentStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

S = ExperimentStatus
FINAL = {S.succeeded, S.failed, S.cancelled}


@dataclass
class Cluster:
    settings: Settings
    store: ExperimentStore
    dispatcher: CeleryDispatcher
    start_worker: Callable[..., subprocess.Popen[bytes]]
    env: dict[str, str] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def submit(self, pipeline_id: str, config: dict[str, object], **kw: object) -> str:
        exp = self.store.create(pipeline_id=pipeline_id, config=config, **kw)  # type: ignore[arg-type]
        self.dispatcher.submit(exp.id)
        return exp.id

    def tail(self) -> str:
        return "\n".join(f"--- {n}\n{p.read_text()[-2500:]}" for n, p in self.logs.items())

    def wait(self, ids: list[str], timeout: float = 120) -> list[ExperimentRecord]:
        deadline = time.monotonic() + timeout
        while any(self.store.get(i).status not in FINAL for i in ids):
            assert time.monotonic() < deadline, self.tail()
            time.sleep(0.1)
        return [self.store.get(i) for i in ids]

    def wait_for(self, what: Callable[[], bool], timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < deadline, self.tail()
            time.sleep(0.05)


def node(record: ExperimentRecord) -> str:
    """`w1@azftest-...:pid:n` -> `w1`: which worker ran it."""
    return (record.worker or "").split("@", 1)[0]


@pytest.fixture
def cluster(
    tmp_path: Path,
    redis_url: str,
    postgres_url: str,
    channel_prefix: str,
    _test_plugin: tuple[str, str],
) -> Iterator[Cluster]:
    env = {
        **os.environ,
        "AZURAFORGE_DATA_DIR": str(tmp_path),  # the artifact root all workers share
        "AZURAFORGE_DATABASE_URL": postgres_url,
        "AZURAFORGE_REDIS_URL": redis_url,
        "AZURAFORGE_EVENT_CHANNEL_PREFIX": channel_prefix,
        "AZURAFORGE_CELERY_QUEUE": channel_prefix,
        "AZURAFORGE_HEARTBEAT_SECONDS": "0.3",
        "AZURAFORGE_LOST_AFTER_SECONDS": "3",
        "AZURAFORGE_REAP_SECONDS": "0.5",
        "AZURAFORGE_CANCEL_GRACE_SECONDS": "2",
    }
    settings = Settings(
        data_dir=tmp_path,
        database_url=postgres_url,
        redis_url=redis_url,
        event_channel_prefix=channel_prefix,
        celery_queue=channel_prefix,
    )
    store = ExperimentStore.from_settings(settings)
    processes: list[subprocess.Popen[bytes]] = []
    cluster = Cluster(settings, store, CeleryDispatcher(make_celery(settings)), lambda _: None)  # type: ignore[arg-type,return-value]

    def start_worker(name: str, **more_env: str) -> subprocess.Popen[bytes]:
        log = tmp_path / f"{name}.log"
        cluster.logs[name] = log
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(Path(sys.executable).parent / "azuraforge"), "worker",
                 "--name", f"{name}@{channel_prefix}", "--concurrency", "1"],
                env={**env, **more_env}, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        processes.append(process)
        cluster.wait_for(lambda: b" ready." in log.read_bytes() or process.poll() is not None)
        assert process.poll() is None, log.read_text()
        return process

    cluster.start_worker = start_worker
    cluster.env = env
    try:
        yield cluster
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        store.close()
        client = redis.Redis.from_url(redis_url)
        for key in client.scan_iter(f"*{channel_prefix}*"):
            client.delete(key)
        client.close()


def test_two_workers_share_the_queue_and_survive_crashing_plugins(
    cluster: Cluster, fit_pipeline: str, probe_pipeline: str
) -> None:
    w1, w2 = cluster.start_worker("w1"), cluster.start_worker("w2")
    slow = {"epochs": 3, "step_sleep": 0.1}  # a few seconds each: both workers get one
    fits = [cluster.submit(fit_pipeline, slow) for _ in range(2)]
    failing = cluster.submit(probe_pipeline, {"mode": "fail"})
    crashing = cluster.submit(probe_pipeline, {"mode": "crash"}, max_attempts=1)
    after = [cluster.submit(fit_pipeline, {"epochs": 2}) for _ in range(2)]
    records = cluster.wait([*fits, failing, crashing, *after])
    by_id = {r.id: r for r in records}
    assert {node(by_id[i]) for i in fits} == {"w1", "w2"}, cluster.tail()
    for exp_id in [*fits, *after]:
        record = by_id[exp_id]
        assert record.status is S.succeeded and record.attempts == 1, record.error
        assert record.summary is not None and record.summary["loss"] < 0.5  # it trained
    failed = by_id[failing]
    assert failed.status is S.failed and "probe failed on purpose" in (failed.traceback or "")
    crashed = by_id[crashing]  # os._exit in plugin code: the run fails, the worker lives on
    assert crashed.status is S.failed and "exited with code 3" in (crashed.error or "")
    assert w1.poll() is None and w2.poll() is None


def test_sigkilled_worker_run_is_lost_requeued_and_resumed_on_the_other(
    cluster: Cluster, fit_pipeline: str
) -> None:
    workers = {"w1": cluster.start_worker("w1"), "w2": cluster.start_worker("w2")}
    config = {"epochs": 12, "steps_per_epoch": 10, "step_sleep": 0.05}
    exp_id = cluster.submit(fit_pipeline, config, max_attempts=2)
    cluster.wait_for(lambda: len(cluster.store.metrics(exp_id)) >= 3)  # 3 epochs checkpointed
    first = node(cluster.store.get(exp_id))
    os.killpg(workers[first].pid, signal.SIGKILL)  # the whole machine is gone
    workers[first].wait()
    [final] = cluster.wait([exp_id])
    assert final.status is S.succeeded, (final.error, cluster.tail())
    assert final.attempts == 2 and node(final) != first
    assert "stopped heart-beating" in (final.error or "") or final.error is None

    def statuses() -> list[str]:
        events = cluster.store.events_after(exp_id)
        return [e.payload["status"] for e in events if e.type == "status"]

    cluster.wait_for(lambda: statuses()[-1] == "succeeded", timeout=10)  # announced after
    assert statuses() == ["running", "lost", "queued", "running", "succeeded"]
    points = cluster.store.metrics(exp_id)
    assert [p.step for p in points] == list(range(1, 13))  # no duplicate, no gap
    [resumed] = [line.message for line in cluster.store.logs(exp_id) if "resumes" in line.message]
    assert resumed.startswith("attempt 2 resumes after epoch ")
    # from its checkpoint, not from scratch: epoch 3's metric is logged after epoch 2's
    # checkpoint is saved (epoch 3's own checkpoint may still be in flight at the kill)
    assert int(resumed.rsplit(" ", 1)[1]) >= 2
    assert final.summary is not None and final.summary["w_error"] < 0.05


def test_a_run_resumes_on_another_machine_from_the_bucket(
    cluster: Cluster, fit_pipeline: str, s3_settings: dict[str, str], tmp_path: Path
) -> None:
    """Artifacts in a bucket, no shared folder: each worker has a data folder of its own
    (another machine's disk). The worker running the fit is SIGKILLed; the other resumes
    it from the checkpoint in the bucket, though its own folder never saw the run."""
    from .conftest import S3_ENV, bucket_objects

    bucket_env = {**S3_ENV, **{f"AZURAFORGE_{k.upper()}": v for k, v in s3_settings.items()}}
    folders = {name: tmp_path / f"{name}-disk" for name in ("w1", "w2")}
    workers = {
        name: cluster.start_worker(name, AZURAFORGE_DATA_DIR=str(folder), **bucket_env)
        for name, folder in folders.items()
    }
    config = {"epochs": 12, "steps_per_epoch": 10, "step_sleep": 0.05}
    exp_id = cluster.submit(fit_pipeline, config, max_attempts=2)
    checkpoint = f"runs/{exp_id}/checkpoints/checkpoint.json"
    cluster.wait_for(lambda: len(cluster.store.metrics(exp_id)) >= 3)  # epoch 2 checkpointed
    assert checkpoint in bucket_objects(s3_settings)  # uploaded as soon as it was saved
    first = node(cluster.store.get(exp_id))
    os.killpg(workers[first].pid, signal.SIGKILL)  # the whole machine is gone
    workers[first].wait()
    shutil.rmtree(folders[first])  # and its disk with it
    [final] = cluster.wait([exp_id])
    assert final.status is S.succeeded, (final.error, cluster.tail())
    assert final.attempts == 2 and node(final) != first
    points = cluster.store.metrics(exp_id)
    assert [p.step for p in points] == list(range(1, 13))  # no duplicate, no gap
    [resumed] = [line.message for line in cluster.store.logs(exp_id) if "resumes" in line.message]
    assert int(resumed.rsplit(" ", 1)[1]) >= 2  # from the bucket's checkpoint, not from scratch
    assert final.summary is not None and final.summary["w_error"] < 0.05
    assert json.loads(bucket_objects(s3_settings)[checkpoint]) == {"epoch": 12}
    # neither worker's folder is the shared data dir: the run never touched it
    assert not (tmp_path / "artifacts" / exp_id).exists()


def test_a_sigkilled_worker_process_takes_its_fork_server_and_run_child_along(
    cluster: Cluster, probe_pipeline: str
) -> None:
    """Only the worker's own process is killed (not its group): its children must not run
    on as orphans, beating for a run nobody supervises."""
    import re

    from .test_parent_death import parent_of, running

    worker = cluster.start_worker("w1")
    exp_id = cluster.submit(probe_pipeline, {"mode": "slow", "steps": 10**7}, max_attempts=1)

    def run_pid() -> int | None:
        for line in cluster.store.logs(exp_id, limit=5):
            if found := re.search(r"pid (\d+) step", line.message):
                return int(found.group(1))
        return None

    cluster.wait_for(lambda: run_pid() is not None)
    child = run_pid()
    assert child is not None
    forkserver = parent_of(child)
    assert parent_of(forkserver) == worker.pid
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    cluster.wait_for(lambda: not running(child) and not running(forkserver))
    cluster.start_worker("w2")  # its reaper finds the run silent
    [lost] = cluster.wait([exp_id])
    assert lost.status is S.failed and "stopped heart-beating" in (lost.error or "")


def test_cancel_ends_cancelled_cooperatively_or_by_termination(
    cluster: Cluster, fit_pipeline: str, probe_pipeline: str
) -> None:
    cluster.start_worker("w1")
    polite = cluster.submit(fit_pipeline, {"epochs": 10_000, "step_sleep": 0.01})
    cluster.wait_for(lambda: len(cluster.store.metrics(polite)) >= 1)
    assert cluster.store.request_cancel(polite).status is S.cancelling
    [stopped] = cluster.wait([polite], timeout=30)
    assert stopped.status is S.cancelled and stopped.error is None  # it stopped by itself
    assert len(cluster.store.metrics(polite)) < 10_000
    stubborn = cluster.submit(probe_pipeline, {"mode": "stubborn"})
    cluster.wait_for(lambda: len(cluster.store.metrics(stubborn)) >= 1)
    cluster.store.request_cancel(stubborn)
    [killed] = cluster.wait([stubborn], timeout=30)
    assert killed.status is S.cancelled and "exited with code -15" in (killed.error or "")

    def statuses() -> list[str]:
        events = cluster.store.events_after(stubborn)
        return [e.payload["status"] for e in events if e.type == "status"]

    # the state is written first, then announced: wait for the announcement
    cluster.wait_for(lambda: statuses()[-1] == "cancelled", timeout=10)
    assert statuses() == ["running", "lost", "cancelled"]
    # the worker takes the next job
    [after] = cluster.wait([cluster.submit(fit_pipeline, {"epochs": 1})])
    assert after.status is S.succeeded


def test_late_subscriber_gets_the_history_then_live_events(
    cluster: Cluster, fit_pipeline: str
) -> None:
    cluster.start_worker("w1")
    bus = RedisEventBus(
        cluster.settings.redis_url or "", prefix=cluster.settings.event_channel_prefix
    )
    events = EventService(cluster.store, bus)
    exp_id = cluster.submit(fit_pipeline, {"epochs": 6, "step_sleep": 0.03})
    cluster.wait_for(lambda: cluster.store.get(exp_id).last_event_seq >= 20)
    joined_at = cluster.store.get(exp_id).last_event_seq
    seqs: list[int] = []
    with events.stream(exp_id, after=0, poll_interval=3600) as stream:  # no polling: live only
        while True:
            event = stream.get(timeout=30)
            assert event is not None, (seqs[-3:], cluster.tail())
            seqs.append(event.seq)
            if event.type == "status" and event.payload["status"] in ("succeeded", "failed"):
                break
    final = cluster.store.get(exp_id)
    assert final.status is S.succeeded
    assert seqs == list(range(1, final.last_event_seq + 1))  # the full history, no gap/dup
    assert final.last_event_seq > joined_at  # and what came after joining arrived live
    bus.close()


def test_cli_queues_for_a_worker_and_follows_it(
    cluster: Cluster, fit_pipeline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`azuraforge worker` in one terminal runs what `azuraforge run --queue` queues."""
    from typer.testing import CliRunner

    from azuraforge_platform.cli.app import app

    cluster.start_worker("w1")
    for key, value in cluster.env.items():
        if key.startswith("AZURAFORGE_"):
            monkeypatch.setenv(key, value)
    result = CliRunner().invoke(
        app, ["run", fit_pipeline, "--queue", "--set", "epochs=3", "--name", "queued-by-cli"]
    )
    assert result.exit_code == 0, (result.output, cluster.tail())
    assert "succeeded" in result.output and "loss" in result.output
    [record] = cluster.store.list_experiments(search="queued-by-cli").items
    assert record.status is S.succeeded and node(record) == "w1"
    assert record.max_attempts == cluster.settings.max_attempts
    detached = CliRunner().invoke(app, ["run", fit_pipeline, "--queue", "--detach"])
    assert detached.exit_code == 0
    [done] = cluster.wait([detached.output.strip()])
    assert done.status is S.succeeded
