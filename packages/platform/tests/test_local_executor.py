"""LocalExecutor: experiments run in spawned worker processes, found through entry points."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import LocalExecutor
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStatus, ExperimentStore

S = ExperimentStatus
FINAL = {S.succeeded, S.failed, S.cancelled}


def _wait_final(store: ExperimentStore, ids: list[str], timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while any(store.get(i).status not in FINAL for i in ids):
        assert time.monotonic() < deadline, [store.get(i).status for i in ids]
        time.sleep(0.05)


@pytest.mark.slow
def test_runs_in_child_processes_and_relays_events(tmp_path: Path, probe_pipeline: str) -> None:
    # SQLite only: the executor is backend-agnostic, and PostgreSQL's multi-process claims are
    # covered by test_store.py; each spawned child costs seconds on a small machine.
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        artifact_root=tmp_path / "artifacts",
        heartbeat_seconds=0.05,
    )
    store = ExperimentStore.from_settings(settings)
    bus = InProcessEventBus()
    events = EventService(store, bus)
    ok = store.create(pipeline_id=probe_pipeline, config={"steps": 4})
    fail = store.create(pipeline_id=probe_pipeline, config={"mode": "fail"})
    crash = store.create(pipeline_id=probe_pipeline, config={"mode": "crash"}, max_attempts=1)
    slow = store.create(pipeline_id=probe_pipeline, config={"mode": "slow", "steps": 100_000})
    stubborn = store.create(pipeline_id=probe_pipeline, config={"mode": "stubborn"})
    with events.stream(ok.id, poll_interval=60) as stream:
        with LocalExecutor(
            settings, store, bus, max_workers=3, poll_seconds=0.05, cancel_grace_seconds=0.5
        ) as executor:
            executor.submit(ok.id)
            for exp in (slow, stubborn):
                deadline = time.monotonic() + 90
                while store.get(exp.id).status is not S.running or not store.metrics(exp.id):
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
                store.request_cancel(exp.id)
            _wait_final(store, [ok.id, fail.id, crash.id, slow.id, stubborn.id])
        # events from the child reached this process's in-process bus, none via the store poll
        final_seq = store.get(ok.id).last_event_seq
        seen = []
        while not seen or seen[-1] < final_seq:
            event = stream.get(timeout=10)
            assert event is not None, seen
            seen.append(event.seq)
        assert seen == list(range(1, final_seq + 1))
    done = store.get(ok.id)
    assert done.status is S.succeeded and done.summary is not None
    assert done.summary["steps"] == 4
    import os

    assert done.summary["pid"] != os.getpid()  # it really ran in another process
    assert [m.value for m in store.metrics(ok.id)] == [0.0, 1.0, 2.0, 3.0]
    failed = store.get(fail.id)
    assert failed.status is S.failed and "probe failed on purpose" in (failed.traceback or "")
    crashed = store.get(crash.id)
    assert crashed.status is S.failed and "exited with code 3" in (crashed.error or "")
    assert store.get(slow.id).status is S.cancelled
    killed = store.get(stubborn.id)  # ignored the cancel, so it was terminated
    assert killed.status is S.cancelled and "exited with code -15" in (killed.error or "")
    store.close()


@pytest.mark.slow
def test_killed_and_silent_runs_are_recovered_and_resume(tmp_path: Path, fit_pipeline: str) -> None:
    """A child SIGKILLed mid-training is re-queued at once and resumes from its checkpoint;
    a run whose (foreign) worker stopped heart-beating is declared lost by the reaper and
    re-run. No metric point is stored twice."""
    import os
    import signal
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from azuraforge_platform.store.tables import Experiment

    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        heartbeat_seconds=0.2,
        lost_after_seconds=2.0,
        reap_seconds=0.2,
    )
    store = ExperimentStore.from_settings(settings)
    bus = InProcessEventBus()
    config = {"epochs": 6, "step_sleep": 0.05}
    killed = store.create(pipeline_id=fit_pipeline, config=config, max_attempts=2)
    # a run some other process claimed, then died without a trace: only its silence tells
    ghost = store.create(pipeline_id=fit_pipeline, config={"epochs": 2}, max_attempts=2)
    assert store.claim(ghost.id, "ghost-host:1") is not None
    with store._write() as session:
        session.execute(
            update(Experiment)
            .where(Experiment.id == ghost.id)
            .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=60))
        )
    with LocalExecutor(settings, store, bus, max_workers=1, poll_seconds=0.05) as executor:
        deadline = time.monotonic() + 90
        # epoch 3's metric is stored after epoch 2's checkpoint was saved (epoch 2's own metric
        # can be stored while its checkpoint is still being written)
        while len(store.metrics(killed.id)) < 3:
            assert time.monotonic() < deadline, store.get(killed.id)
            time.sleep(0.05)
        [run] = [r for r in executor._running.values() if r.experiment_id == killed.id]
        os.kill(run.process.pid, signal.SIGKILL)
        _wait_final(store, [killed.id, ghost.id])
    final = store.get(killed.id)
    assert final.status is S.succeeded and final.attempts == 2, final.error
    assert "exited with code -9" in (final.error or "") or final.error is None
    steps = [m.step for m in store.metrics(killed.id)]
    assert steps == list(range(1, 7))  # each epoch once, though some ran twice
    resumed = [line.message for line in store.logs(killed.id) if "resumes" in line.message]
    assert len(resumed) == 1 and "attempt 2 resumes after epoch" in resumed[0]
    assert int(resumed[0].rsplit(" ", 1)[1]) >= 2  # from the checkpoint, not from scratch

    def statuses() -> list[str]:
        return [e.payload["status"] for e in store.events_after(killed.id) if e.type == "status"]

    deadline = time.monotonic() + 10
    while statuses()[-1] != "succeeded":  # the state is written first, then announced
        assert time.monotonic() < deadline, statuses()
        time.sleep(0.05)
    assert statuses() == ["running", "lost", "queued", "running", "succeeded"]
    recovered = store.get(ghost.id)
    assert recovered.status is S.succeeded and recovered.attempts == 2
    assert recovered.worker != "ghost-host:1"
    store.close()


def test_start_recovers_the_runs_of_a_dead_earlier_executor_of_this_machine(
    tmp_path: Path,
) -> None:
    """What a restart after a SIGKILL finds: runs held by `host:pid:local-N` workers of this
    machine whose process is gone. Silent ones are recovered before start() returns; one that
    still beats only once it is silent for two beats; live owners, other machines and other
    kinds of worker are the periodic reaper's business."""
    import os
    import socket
    import subprocess
    import sys
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    from azuraforge_platform.execution import local
    from azuraforge_platform.store.tables import Experiment

    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        heartbeat_seconds=0.2,
        lost_after_seconds=3600,  # the periodic reaper stays out of this test
    )
    store = ExperimentStore.from_settings(settings)
    host = socket.gethostname()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(gone.stdout)

    def held(worker: str, silent_for: float, max_attempts: int = 1) -> str:
        exp = store.create(pipeline_id="no-such-pipeline", config={}, max_attempts=max_attempts)
        assert store.claim(exp.id, worker) is not None
        with store._write() as session:
            session.execute(
                update(Experiment)
                .where(Experiment.id == exp.id)
                .values(heartbeat_at=datetime.now(UTC) - timedelta(seconds=silent_for))
            )
        return exp.id

    orphan = held(f"{host}:{dead}:local-1", silent_for=5)
    retried = held(f"{host}:{dead}:local-2", silent_for=5, max_attempts=2)
    same_pid = held(f"{host}:{os.getpid()}:local-99999", silent_for=5)  # a restarted container
    beating = held(f"{host}:{dead}:local-3", silent_for=0)
    live_owner = held(f"{host}:{os.getppid()}:local-1", silent_for=5)
    elsewhere = held(f"other-{host}:{dead}:local-1", silent_for=5)
    cli = held(f"{host}:{dead}:cli", silent_for=5)
    ours = local._names.take(host)  # as another executor of this process holds its run
    sibling = held(ours, silent_for=5)

    executor = LocalExecutor(settings, store, InProcessEventBus(), poll_seconds=0.05)
    executor.start()
    try:
        # at once, before the API would answer a health request
        assert store.get(orphan).status is S.failed
        assert f"{host}:{dead}:local-1 is gone" in (store.get(orphan).error or "")
        assert store.get(same_pid).status is S.failed
        requeued = [e.payload["status"] for e in store.events_after(retried) if e.type == "status"]
        assert requeued[:2] == ["lost", "queued"]  # then this executor runs it (and fails it)
        assert store.get(beating).status is S.running
        _wait_final(store, [beating], timeout=30)  # silent now: the dispatcher sees it
        assert store.get(beating).status is S.failed
        for untouched in (live_owner, elsewhere, cli, sibling):
            assert store.get(untouched).status is S.running
        # new worker names never repeat the dead process's own ones
        _wait_final(store, [retried])
        name = str(store.get(retried).worker)
        assert name.startswith(f"{host}:{os.getpid()}:local-") and int(name.rsplit("-")[-1]) > 99999
    finally:
        local._names.release(ours)
        executor.stop()
        store.close()


@pytest.mark.slow
@pytest.mark.integration
def test_a_run_queued_elsewhere_starts_without_waiting_for_the_poll(
    tmp_path: Path, probe_pipeline: str, redis_url: str, channel_prefix: str
) -> None:
    """With a shared bus the executor hears runs queued by other processes (the API, a study
    submitting its trials) on the status topic: with a one-minute poll, the run still starts
    at once."""
    import redis

    from azuraforge_platform.events import make_bus
    from azuraforge_platform.lifecycle import Lifecycle

    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        redis_url=redis_url,
        event_channel_prefix=channel_prefix,
    )
    store = ExperimentStore.from_settings(settings)
    executor_bus = make_bus(redis_url, prefix=channel_prefix)
    other_bus = make_bus(redis_url, prefix=channel_prefix)  # "another process"
    client = redis.Redis.from_url(redis_url)
    try:
        with LocalExecutor(settings, store, executor_bus, poll_seconds=60):
            deadline = time.monotonic() + 30
            while (
                dict(client.pubsub_numsub(executor_bus.status_channel))[
                    executor_bus.status_channel.encode()
                ]
                < 1
            ):  # the executor listens (it already polled once, before this run existed)
                assert time.monotonic() < deadline
                time.sleep(0.05)
            record = Lifecycle(EventService(store, other_bus)).submit(
                pipeline_id=probe_pipeline, config={"steps": 2}, pipeline_version=None,
                owner=None, max_attempts=1, name="queued elsewhere",
            )  # fmt: skip
            _wait_final(store, [record.id], timeout=45)  # well inside the 60 s poll
            assert store.get(record.id).status is S.succeeded
    finally:
        other_bus.close()
        executor_bus.close()
        client.close()
        store.close()
