"""`Experiments`, the one interface to local and remote experiments: the local store's
implementation and the HTTP client answer the same questions with the same answers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from azuraforge_platform.client import ApiError, AzuraForgeClient
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment
from azuraforge_platform.experiments import (
    AmbiguousExperimentError,
    Experiments,
    LocalExperiments,
)
from azuraforge_platform.store import ExperimentStore, InvalidTransitionError

from .conftest import LiveServer, make_settings


class Both:
    """One platform seen both ways: its store directly, and its server over HTTP."""

    def __init__(self, server: LiveServer, store: ExperimentStore, finished: str) -> None:
        self.store = store
        self.finished = finished
        self.local: Experiments = LocalExperiments(
            ExperimentStore.from_settings(server.settings), server.settings
        )
        self.remote: Experiments = AzuraForgeClient(server.url, token=server.token)

    def each(self) -> tuple[Experiments, Experiments]:
        return self.local, self.remote


@pytest.fixture
def both(tmp_path: Path, trainer: str) -> Iterator[Both]:
    settings = make_settings(tmp_path)
    with LiveServer(settings, run_jobs=False) as server:  # nothing runs but what a test runs
        store = ExperimentStore.from_settings(settings)
        exp = store.create(pipeline_id=trainer, config={"epochs": 7}, name="fit", tags=["a", "b"])
        run_experiment(exp.id, EventService(store, InProcessEventBus()))
        both = Both(server, store, exp.id)
        try:
            yield both
        finally:
            both.local.close()
            both.remote.close()
            store.close()


def _ids(experiments: Experiments, **filters: Any) -> list[str]:
    return [e.id for e in experiments.list_experiments(**filters).items]


def test_listing_filters_mean_the_same_on_both(both: Both, trainer: str) -> None:
    queued = both.store.create(pipeline_id=trainer, config={}, name="waiting", tags=["a"])
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({}, [queued.id, both.finished]),  # newest first
        ({"descending": False}, [both.finished, queued.id]),
        ({"tags": ["a"]}, [queued.id, both.finished]),
        ({"tags": ["a", "b"]}, [both.finished]),  # all of them
        ({"status": "queued"}, [queued.id]),
        ({"status": ["queued", "succeeded"], "pipeline_id": trainer}, [queued.id, both.finished]),
        ({"search": "wait"}, [queued.id]),  # name contains
        ({"search": both.finished[:6]}, [both.finished]),  # id starts with
        ({"created_after": an_hour_ago, "limit": 1}, [queued.id]),
        ({"created_before": an_hour_ago}, []),
    ]
    for filters, expected in cases:
        for experiments in both.each():
            assert _ids(experiments, **filters) == expected, (type(experiments), filters)
    local, remote = both.each()
    first = local.list_experiments(limit=1, with_total=True)
    assert first.total == 2 and first.next_cursor is not None
    rest = remote.list_experiments(limit=1, cursor=first.next_cursor)  # cursors are shared
    assert [e.id for e in rest.items] == [both.finished] and rest.next_cursor is None


def test_an_experiment_reads_the_same_on_both(both: Both) -> None:
    local, remote = both.each()
    exp_id = both.finished
    mine, theirs = local.resolve_experiment(exp_id[:8]), remote.resolve_experiment(exp_id[:8])
    assert mine.id == theirs.id == exp_id and mine.status.value == "succeeded"
    assert mine.model_dump() == theirs.model_dump() == local.get_experiment(exp_id).model_dump()

    # downsampled alike: the ends and each bucket's extremes, with the full count
    series = local.metrics(exp_id, max_points=4).series
    assert series == remote.metrics(exp_id, max_points=4).series
    [loss] = series
    assert loss.name == "loss" and loss.total_points == 7 and loss.downsampled
    assert loss.steps[0] == 1 and loss.steps[-1] == 7 and len(loss.steps) <= 4

    lines = local.logs(exp_id)
    assert lines == remote.logs(exp_id) and any("fitted w=" in line.message for line in lines.items)
    assert local.logs(exp_id, after_id=lines.next_after_id).items == []

    files = {(a.path, a.kind, a.size) for a in local.artifacts(exp_id)}
    assert files == {(a.path, a.kind, a.size) for a in remote.artifacts(exp_id)}
    assert (
        "model.json",
        "model",
        Path(local.artifact_location(exp_id), "model.json").stat().st_size,
    ) in files
    assert remote.artifact_location(exp_id).endswith(f"/api/v1/experiments/{exp_id}/artifacts")

    # the whole stored history, then the end: the run has finished
    history = [(e["seq"], e["type"], e["payload"]) for e in local.stream_events(exp_id)]
    assert history == [(e["seq"], e["type"], e["payload"]) for e in remote.stream_events(exp_id)]
    assert any(kind == "status" and p["status"] == "succeeded" for _, kind, p in history)
    later = [e["seq"] for e in local.stream_events(exp_id, after=history[-3][0])]
    assert later == [seq for seq, _, _ in history[-2:]]


def test_cancel_and_its_refusals_on_both(both: Both, trainer: str) -> None:
    local, remote = both.each()
    for experiments in (local, remote):
        queued = both.store.create(pipeline_id=trainer, config={})
        cancelled = experiments.cancel(queued.id)
        assert cancelled.id == queued.id and cancelled.status.value == "cancelled"
        assert both.store.get(queued.id).status.value == "cancelled"
        last = both.store.events_after(queued.id)[-1]
        assert last.type == "status" and last.payload["status"] == "cancelled"

    # each side says so in its own terms: the store's errors, the API's answers
    with pytest.raises(InvalidTransitionError, match="already finished"):
        local.cancel(both.finished)
    with pytest.raises(ApiError) as refused:
        remote.cancel(both.finished)
    assert refused.value.status == 409

    for digit in "01":
        both.store.create(pipeline_id=trainer, config={}, experiment_id="abcd" + digit * 28)
    with pytest.raises(AmbiguousExperimentError, match="matches 2 experiments"):
        local.resolve_experiment("abcd")
    with pytest.raises(ApiError) as ambiguous:
        remote.resolve_experiment("abcd")
    assert ambiguous.value.status == 400 and ambiguous.value.code == "ambiguous_id"
    for experiments in (local, remote):
        assert experiments.resolve_experiment("abcd1").id == "abcd" + "1" * 28


@pytest.mark.parametrize("where", ["local", "remote"])
def test_following_a_running_experiment_until_it_ends(both: Both, trainer: str, where: str) -> None:
    """History first, then what the run writes while it is followed, then the end."""
    experiments = both.local if where == "local" else both.remote
    exp = both.store.create(pipeline_id=trainer, config={})
    assert both.store.claim(exp.id, "elsewhere") is not None
    events = EventService(both.store, InProcessEventBus())  # a worker in another process
    events.emit(exp.id, "status", {"status": "running"})
    followed = threading.Event()

    def run() -> None:
        followed.wait(60)
        for i in range(3):
            events.emit(exp.id, "log", {"level": "info", "message": f"epoch {i}"})
        both.store.transition(exp.id, "succeeded", expected="running")
        events.emit(exp.id, "status", {"status": "succeeded"})

    worker = threading.Thread(target=run)
    worker.start()
    seen = []
    try:
        for event in experiments.stream_events(exp.id):
            seen.append((event["type"], event["payload"]))
            followed.set()  # the history arrived: the rest comes live
    finally:
        followed.set()
        worker.join(60)
    assert seen == [
        ("status", {"status": "running"}),
        *[("log", {"level": "info", "message": f"epoch {i}"}) for i in range(3)],
        ("status", {"status": "succeeded"}),
    ]
