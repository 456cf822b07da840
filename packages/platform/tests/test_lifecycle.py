"""The Lifecycle owns every status change: the store records it, then the status event goes
out, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.lifecycle import Lifecycle, QueueUnavailableError
from azuraforge_platform.store import ExperimentStatus, ExperimentStore, InvalidTransitionError

S = ExperimentStatus


class BrokenQueue:
    def submit(self, experiment_id: str) -> None:
        raise ConnectionError("redis is down")


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def submit(self, experiment_id: str) -> None:
        self.sent.append(experiment_id)


def statuses(store: ExperimentStore, experiment_id: str) -> list[str]:
    return [e.payload["status"] for e in store.events_after(experiment_id, 0) if e.type == "status"]


def submit(lifecycle: Lifecycle, **extra: object) -> object:
    return lifecycle.submit(
        pipeline_id="p", config={}, pipeline_version="1", owner="ann", max_attempts=1, **extra
    )


def test_a_failed_hand_over_fails_the_run_with_its_event(store: ExperimentStore) -> None:
    lifecycle = Lifecycle(EventService(store, InProcessEventBus()), BrokenQueue())
    with pytest.raises(QueueUnavailableError, match="redis is down"):
        submit(lifecycle)
    [record] = store.list_experiments().items
    assert record.status is S.failed and "could not enqueue" in (record.error or "")
    assert statuses(store, record.id) == ["queued", "failed"]  # nobody is left guessing


def test_each_change_is_stored_then_announced(store: ExperimentStore) -> None:
    queue = Recorder()
    lifecycle = Lifecycle(EventService(store, InProcessEventBus()), queue)
    record = submit(lifecycle)
    assert queue.sent == [record.id]  # type: ignore[attr-defined]
    exp_id = record.id  # type: ignore[attr-defined]
    assert lifecycle.start(exp_id, "w1") is not None
    assert lifecycle.start(exp_id, "w2") is None  # one claim wins
    assert lifecycle.cancel(exp_id).status is S.cancelling
    done = lifecycle.finish(exp_id, S.cancelled, worker="w1")
    assert done is not None and done.status is S.cancelled
    assert lifecycle.finish(exp_id, S.succeeded, worker="w1") is None  # already final
    with pytest.raises(InvalidTransitionError):
        lifecycle.cancel(exp_id)
    assert statuses(store, exp_id) == ["queued", "running", "cancelling", "cancelled"]


def test_coordinators_are_not_sent_and_their_cancel_reaches_their_children(
    store: ExperimentStore,
) -> None:
    queue = Recorder()
    lifecycle = Lifecycle(EventService(store, InProcessEventBus()), queue)
    study = submit(lifecycle, coordinator=True)
    study_id = study.id  # type: ignore[attr-defined]
    assert queue.sent == []  # the executors find coordinators in the store
    assert lifecycle.start(study_id, "coord") is not None
    running = submit(lifecycle, parent_id=study_id)
    waiting = submit(lifecycle, parent_id=study_id)
    rerun = submit(lifecycle, parent_id=study_id, coordinator=True)  # a re-run of the study
    lifecycle.start(running.id, "w1")  # type: ignore[attr-defined]
    assert {c.id for c in store.children(study_id)} == {running.id, waiting.id}  # type: ignore[attr-defined]
    lifecycle.cancel(study_id)
    assert store.get(running.id).status is S.cancelling  # type: ignore[attr-defined]
    assert store.get(waiting.id).status is S.cancelled  # type: ignore[attr-defined]
    assert store.get(rerun.id).status is S.queued  # type: ignore[attr-defined]


def test_a_coordinator_that_ends_leaves_no_child_running(store: ExperimentStore) -> None:
    lifecycle = Lifecycle(EventService(store, InProcessEventBus()))
    study = submit(lifecycle, coordinator=True)
    lifecycle.start(study.id, "coord")  # type: ignore[attr-defined]
    child = submit(lifecycle, parent_id=study.id)  # type: ignore[attr-defined]
    lifecycle.finish(study.id, S.failed, worker="coord", error="boom")  # type: ignore[attr-defined]
    assert store.get(child.id).status is S.cancelled  # type: ignore[attr-defined]
    assert statuses(store, child.id) == ["queued", "cancelled"]  # type: ignore[attr-defined]
