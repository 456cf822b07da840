"""Distributed mode: a real Celery worker process, Redis as broker and event bus."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from azuraforge_platform.events import EventService, RedisEventBus
from azuraforge_platform.jobqueue import CeleryDispatcher, make_celery
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStatus, ExperimentStore

from .conftest import celery_worker

S = ExperimentStatus


@pytest.fixture
def distributed(
    tmp_path: Path, redis_url: str, channel_prefix: str, probe_pipeline: str
) -> Iterator[Settings]:
    settings = Settings(
        data_dir=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'store.db'}",
        redis_url=redis_url,
        event_channel_prefix=channel_prefix,
        celery_queue=channel_prefix,
        heartbeat_seconds=0.1,
    )
    with celery_worker(settings, tmp_path / "worker.log"):
        yield settings


def _wait_final(store: ExperimentStore, exp_id: str, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while store.get(exp_id).status not in (S.succeeded, S.failed, S.cancelled):
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


@pytest.mark.integration
@pytest.mark.slow
def test_worker_runs_experiments_and_streams_events(
    distributed: Settings, probe_pipeline: str, tmp_path: Path
) -> None:
    store = ExperimentStore.from_settings(distributed)
    bus = RedisEventBus(distributed.redis_url or "", prefix=distributed.event_channel_prefix)
    events = EventService(store, bus)
    dispatcher = CeleryDispatcher(make_celery(distributed))
    log = tmp_path / "worker.log"

    exp = store.create(pipeline_id=probe_pipeline, config={"steps": 5})
    with events.stream(exp.id, poll_interval=60) as stream:
        dispatcher.submit(exp.id)
        dispatcher.submit(exp.id)  # a duplicate delivery is a no-op
        _wait_final(store, exp.id, log)
        final = store.get(exp.id)
        seqs = []
        while not seqs or seqs[-1] < final.last_event_seq:
            event = stream.get(timeout=10)
            assert event is not None, seqs
            seqs.append(event.seq)
    assert final.status is S.succeeded and final.attempts == 1, final.error
    assert final.summary is not None and final.summary["pid"] != os.getpid()
    assert seqs == list(range(1, final.last_event_seq + 1))  # live over Redis, no gap
    assert [m.value for m in store.metrics(exp.id)] == [0.0, 1.0, 2.0, 3.0, 4.0]

    slow = store.create(pipeline_id=probe_pipeline, config={"mode": "slow", "steps": 100_000})
    dispatcher.submit(slow.id)
    deadline = time.monotonic() + 60
    while not store.metrics(slow.id):
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)
    store.request_cancel(slow.id)
    _wait_final(store, slow.id, log)
    assert store.get(slow.id).status is S.cancelled
    bus.close()
    store.close()


def test_distributed_mode_needs_redis(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="AZURAFORGE_REDIS_URL"):
        make_celery(Settings(data_dir=tmp_path, redis_url=None))


@pytest.mark.integration
@pytest.mark.slow
def test_a_study_coordinates_trials_that_celery_runs(
    distributed: Settings, probe_pipeline: str, tmp_path: Path
) -> None:
    """The study is never sent as a task: the worker's coordinator executor claims it from the
    store, and its trials go through Celery to the worker pool like any run."""
    from azuraforge_platform.lifecycle import Lifecycle

    store = ExperimentStore.from_settings(distributed)
    bus = RedisEventBus(distributed.redis_url or "", prefix=distributed.event_channel_prefix)
    lifecycle = Lifecycle(EventService(store, bus), CeleryDispatcher(make_celery(distributed)))
    study = lifecycle.submit(
        pipeline_id="hyper_tuner",
        config={
            "target": probe_pipeline,
            "objective": "steps",
            "direction": "maximize",
            "space": {"steps": {"type": "int", "low": 2, "high": 9}},
            "n_trials": 4,
            "parallel": 2,
            "sampler": "random",
        },
        pipeline_version="0.1.0",
        owner="bob",
        max_attempts=1,
        coordinator=True,
    )
    _wait_final(store, study.id, tmp_path / "worker.log", timeout=180)
    done = store.get(study.id)
    assert done.status is S.succeeded, done.error
    assert done.worker is not None and ":local-" in done.worker  # the coordinator executor
    trials = store.children(study.id)
    assert len(trials) == 4 and all(t.status is S.succeeded for t in trials)
    assert all(t.worker and ":local-" not in t.worker for t in trials)  # Celery ran them
    best = max(int(t.config["steps"]) for t in trials)
    assert (done.summary or {})["best_value"] == best
    bus.close()
    store.close()
