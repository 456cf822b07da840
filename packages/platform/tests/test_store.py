"""The experiment store on SQLite and PostgreSQL (the `store` fixture runs each test on both)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from azuraforge_platform.store import (
    ExperimentNotFoundError,
    ExperimentStatus,
    ExperimentStore,
    InvalidTransitionError,
    MetricValue,
)

S = ExperimentStatus
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_create_get_roundtrip(store: ExperimentStore) -> None:
    parent = store.create(pipeline_id="hyper_tuner", config={})
    exp = store.create(
        pipeline_id="stock_predictor",
        pipeline_version="1.0.0",
        config={"epochs": 3, "nested": {"lr": 0.01}, "layers": [1, 2]},
        name="first try",
        tags=["baseline", "lstm", "lstm"],
        parent_id=parent.id,
        max_attempts=3,
    )
    got = store.get(exp.id)
    assert got == exp
    assert got.status is S.queued and got.attempts == 0 and got.max_attempts == 3
    assert got.config == {"epochs": 3, "nested": {"lr": 0.01}, "layers": [1, 2]}
    assert got.tags == ["baseline", "lstm"]
    assert got.parent_id == parent.id
    assert got.created_at.tzinfo is not None
    with pytest.raises(ExperimentNotFoundError, match="nope"):
        store.get("nope")
    with pytest.raises(ExperimentNotFoundError):
        store.create(pipeline_id="x", config={}, parent_id="missing-parent")


def test_lifecycle_and_invalid_transitions(store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    with pytest.raises(InvalidTransitionError, match="from queued to succeeded"):
        store.transition(exp.id, S.succeeded)
    running = store.claim(exp.id, "worker-1")
    assert running is not None
    assert running.status is S.running and running.worker == "worker-1" and running.attempts == 1
    assert running.started_at is not None and running.heartbeat_at is not None
    with pytest.raises(InvalidTransitionError, match="held by worker worker-1"):
        store.transition(exp.id, S.succeeded, worker="worker-2")
    done = store.transition(exp.id, S.succeeded, worker="worker-1", summary={"loss": 0.25})
    assert done.status is S.succeeded and done.summary == {"loss": 0.25}
    assert done.finished_at is not None
    for target in (S.running, S.queued, S.failed, S.cancelling):
        with pytest.raises(InvalidTransitionError, match="final state"):
            store.transition(exp.id, target)
    assert store.claim(exp.id, "worker-2") is None  # not queued any more
    assert store.get(exp.id).status is S.succeeded


def test_failure_keeps_error_and_traceback(store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    store.claim(exp.id, "w")
    failed = store.transition(
        exp.id, S.failed, error="ValueError: boom", traceback="Traceback...\nValueError: boom"
    )
    assert failed.error == "ValueError: boom" and failed.traceback.endswith("boom")


def test_cancel_paths(store: ExperimentStore) -> None:
    queued = store.create(pipeline_id="p", config={})
    assert store.request_cancel(queued.id).status is S.cancelled
    running = store.create(pipeline_id="p", config={})
    store.claim(running.id, "w")
    assert store.request_cancel(running.id).status is S.cancelling
    assert store.heartbeat(running.id, "w") is S.cancelling  # how the worker learns of it
    assert store.request_cancel(running.id).status is S.cancelling  # idempotent
    assert store.transition(running.id, S.cancelled).status is S.cancelled
    with pytest.raises(InvalidTransitionError, match="already finished"):
        store.request_cancel(running.id)


def test_lost_runs_are_requeued_while_attempts_remain(store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={}, max_attempts=2)
    store.claim(exp.id, "w1")
    assert store.reap_lost(timedelta(hours=1)) == []  # it beat just now
    time.sleep(0.01)
    assert store.reap_lost(timedelta(0)) == [exp.id]
    again = store.get(exp.id)
    assert again.status is S.queued and again.worker is None and again.attempts == 1
    store.claim(exp.id, "w2")
    time.sleep(0.01)
    assert store.reap_lost(timedelta(0)) == [exp.id]
    final = store.get(exp.id)
    assert final.status is S.failed and "w2 stopped heart-beating" in (final.error or "")
    # a worker that lost its job finds out from its heartbeat
    assert store.heartbeat(exp.id, "w2") is S.failed


def _make_many(store: ExperimentStore) -> list[str]:
    ids = []
    for i in range(25):
        exp = store.create(
            pipeline_id="stock_predictor" if i % 2 else "image_classifier",
            config={"i": i},
            name=f"Run {i:02d}" + (" 50%_off" if i == 7 else ""),
            tags=["even"] if i % 2 == 0 else ["odd", "x"],
            # two rows share each timestamp: the id must break the tie deterministically
            created_at=T0 + timedelta(minutes=i // 2),
            experiment_id=f"exp{i:02d}",
        )
        ids.append(exp.id)
    return ids


def test_filters_and_search(store: ExperimentStore) -> None:
    ids = _make_many(store)
    store.claim(ids[3], "w")
    page = store.list_experiments(pipeline_id="stock_predictor", limit=100, with_total=True)
    assert page.total == 12 and all(e.pipeline_id == "stock_predictor" for e in page.items)
    assert [e.id for e in store.list_experiments(status="running").items] == [ids[3]]
    assert len(store.list_experiments(status=["queued", "running"], limit=100).items) == 25
    with pytest.raises(ValueError):
        store.list_experiments(status="runing")
    assert len(store.list_experiments(tags="even", limit=100).items) == 13
    assert len(store.list_experiments(tags=["odd", "x"], limit=100).items) == 12
    assert store.list_experiments(tags=["odd", "even"]).items == []
    window = store.list_experiments(
        created_after=T0 + timedelta(minutes=2), created_before=T0 + timedelta(minutes=4)
    )
    assert sorted(e.id for e in window.items) == ids[4:8]
    assert [e.id for e in store.list_experiments(search="run 1").items] == [
        f"exp{i}" for i in range(19, 9, -1)
    ]
    assert [e.id for e in store.list_experiments(search="50%_").items] == [
        ids[7]
    ]  # wildcards are literal
    assert [e.id for e in store.list_experiments(search="%").items] == [ids[7]]
    assert [e.id for e in store.list_experiments(search="exp2").items] == [
        "exp24",
        "exp23",
        "exp22",
        "exp21",
        "exp20",
    ]


def test_keyset_and_offset_pagination(store: ExperimentStore) -> None:
    ids = _make_many(store)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.list_experiments(limit=7, cursor=cursor)
        seen += [e.id for e in page.items]
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 4
    assert seen == sorted(ids, reverse=True)  # newest first, ties broken by id
    ascending = []
    cursor = None
    while True:
        page = store.list_experiments(limit=10, cursor=cursor, sort="name", descending=False)
        ascending += [e.name for e in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert ascending == sorted(ascending) and len(ascending) == 25
    by_offset = store.list_experiments(limit=5, offset=20, sort="created_at", descending=False)
    assert [e.id for e in by_offset.items] == ids[20:25]
    with pytest.raises(ValueError, match="different sort"):
        store.list_experiments(cursor=store.list_experiments(limit=2).next_cursor, sort="name")
    with pytest.raises(ValueError, match="cannot sort"):
        store.list_experiments(sort="config")


@pytest.mark.parametrize(
    ("sort", "descending", "search"),
    [("created_at", True, None), ("name", False, None), ("created_at", True, "Run")],
)
def test_keyset_pages_go_back_the_way_they_came(
    store: ExperimentStore, sort: str, descending: bool, search: str | None
) -> None:
    _make_many(store)
    order = {"sort": sort, "descending": descending, "search": search}
    forward: list[list[str]] = []
    cursor = None
    while True:
        page = store.list_experiments(limit=6, cursor=cursor, **order)  # type: ignore[arg-type]
        forward.append([e.id for e in page.items])
        assert (page.prev_cursor is None) == (cursor is None)
        if (cursor := page.next_cursor) is None:
            break
    assert [len(p) for p in forward] == [6, 6, 6, 6, 1]
    backward = [forward[-1]]
    cursor = page.prev_cursor
    while cursor is not None:
        page = store.list_experiments(limit=6, cursor=cursor, **order)  # type: ignore[arg-type]
        backward.insert(0, [e.id for e in page.items])
        assert page.next_cursor is not None  # the way forward again
        cursor = page.prev_cursor
    assert backward == forward
    # back from page 2 after two rows of page 1 went: the first page, full, not a short one
    second = store.list_experiments(limit=6, **order).next_cursor  # type: ignore[arg-type]
    assert second is not None
    page_two = store.list_experiments(limit=6, cursor=second, **order)  # type: ignore[arg-type]
    for gone in forward[0][:2]:
        store.delete(gone)
    first = store.list_experiments(limit=6, cursor=page_two.prev_cursor, **order)  # type: ignore[arg-type]
    assert [e.id for e in first.items] == forward[0][2:] + forward[1][:2]
    assert first.prev_cursor is None


def test_estimated_totals(store: ExperimentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    _make_many(store)
    page = store.list_experiments(limit=5, estimate_total=True)
    assert (page.estimated_total, page.estimate_exact, page.total) == (25, True, None)
    odd = store.list_experiments(limit=5, tags="odd", search="Run 1", estimate_total=True)
    assert (odd.estimated_total, odd.estimate_exact) == (5, True)  # 11, 13, 15, 17, 19
    # past the exact count, PostgreSQL asks the planner; SQLite still counts
    monkeypatch.setattr(store, "EXACT_COUNT_UP_TO", 10)
    page = store.list_experiments(limit=5, estimate_total=True)
    if store.dialect == "postgresql":
        assert page.estimate_exact is False and page.estimated_total is not None
        assert page.estimated_total > 10
    else:
        assert (page.estimated_total, page.estimate_exact) == (25, True)


def test_concurrent_claim_threads(store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    barrier = threading.Barrier(6)
    winners: list[str] = []
    errors: list[BaseException] = []

    def claim(worker: str) -> None:
        try:
            barrier.wait()
            if store.claim(exp.id, worker) is not None:
                winners.append(worker)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(winners) == 1
    final = store.get(exp.id)
    assert final.worker == winners[0] and final.attempts == 1


CLAIM_SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from azuraforge_platform.store import ExperimentStore
    url, root, worker, go, *ids = sys.argv[1:]
    store = ExperimentStore(url, root)
    while not Path(go).exists():
        time.sleep(0.002)
    for exp_id in ids:
        print(exp_id, "won" if store.claim(exp_id, worker) else "lost")
""")


def test_concurrent_claim_processes(store: ExperimentStore, db_url: str, tmp_path: Path) -> None:
    """Separate processes (separate connections, no shared Python state) race on each job."""
    ids = [store.create(pipeline_id="p", config={}).id for _ in range(8)]
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIM_SCRIPT, db_url, str(tmp_path), f"p{i}", str(go), *ids],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    go.touch()
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    wins: dict[str, list[str]] = {exp_id: [] for exp_id in ids}
    for worker, out in enumerate(outs):
        lines = out.split()
        assert len(lines) == 2 * len(ids)
        for exp_id, verdict in zip(lines[::2], lines[1::2], strict=True):
            if verdict == "won":
                wins[exp_id].append(f"p{worker}")
    for exp_id, winners in wins.items():
        assert len(winners) == 1, (exp_id, winners)
        record = store.get(exp_id)
        assert record.worker == winners[0] and record.attempts == 1


def test_metric_batches_are_idempotent(store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    batch = [MetricValue("loss", step, 1.0 / (step + 1), epoch=step // 10) for step in range(1200)]
    batch += [MetricValue("val_loss", e, 0.5 - e / 10, epoch=e) for e in range(3)]
    store.append_metrics(exp.id, batch)
    store.append_metrics(exp.id, batch)  # a retried run reports the same steps again
    store.append_metrics(exp.id, batch[:50])
    points = store.metrics(exp.id)
    assert len(points) == 1203
    loss = [p for p in points if p.name == "loss"]
    assert [p.step for p in loss] == list(range(1200))
    assert loss[9].value == pytest.approx(0.1) and loss[15].epoch == 1
    # a newer value for an existing step replaces the old one (the retry's numbers win)
    store.append_metrics(exp.id, [MetricValue("val_loss", 1, 0.123, epoch=1)])
    val = store.metrics(exp.id, names=["val_loss"])
    assert [p.value for p in val] == pytest.approx([0.5, 0.123, 0.3])
    with pytest.raises(ExperimentNotFoundError):
        store.append_metrics("missing", [MetricValue("loss", 0, 1.0)])


def test_logs_in_order(store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    store.append_logs(exp.id, [("info", f"line {i}") for i in range(700)])
    store.append_logs(exp.id, [("warning", "careful")])
    first = store.logs(exp.id, limit=500)
    rest = store.logs(exp.id, after_id=first[-1].id)
    messages = [r.message for r in first + rest]
    assert messages == [f"line {i}" for i in range(700)] + ["careful"]
    assert rest[-1].level == "warning"


def test_event_seq_monotonic_under_concurrency(store: ExperimentStore) -> None:
    exp = store.create(pipeline_id="p", config={})
    per_thread: dict[int, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            seqs = []
            for i in range(15):
                if i % 5 == 4:
                    seqs += [e.seq for e in store.append_events(exp.id, [("b", {}), ("b", {})])]
                else:
                    seqs.append(store.append_event(exp.id, "tick", {"thread": n, "i": i}).seq)
            per_thread[n] = seqs
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    everything = sorted(s for seqs in per_thread.values() for s in seqs)
    assert everything == list(range(1, 4 * 18 + 1))  # unique, gap-free
    for seqs in per_thread.values():
        assert seqs == sorted(seqs)
    stored = store.events_after(exp.id, 0)
    assert [e.seq for e in stored] == everything
    assert [e.seq for e in store.events_after(exp.id, 70)] == [71, 72]
    assert store.get(exp.id).last_event_seq == 72


def test_delete_removes_rows_and_artifacts(store: ExperimentStore) -> None:
    parent = store.create(pipeline_id="p", config={})
    exp = store.create(pipeline_id="p", config={}, tags=["t"], parent_id=parent.id)
    folder = store.artifact_dir(exp.id)
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "weights.safetensors").write_bytes(b"\0" * 64)
    store.add_artifact(exp.id, "model/weights.safetensors", 64, "model")
    store.add_artifact(
        exp.id, "model/weights.safetensors", 65, "model"
    )  # re-indexed, not duplicated
    assert [(a.path, a.size) for a in store.artifacts(exp.id)] == [
        ("model/weights.safetensors", 65)
    ]
    with pytest.raises(ValueError):
        store.add_artifact(exp.id, "../escape", 1, "file")
    store.append_metrics(exp.id, [MetricValue("loss", 0, 1.0)])
    store.append_logs(exp.id, [("info", "x")])
    store.append_event(exp.id, "e", {})
    store.delete(parent.id)
    assert store.get(exp.id).parent_id is None  # the child outlives its parent
    store.delete(exp.id)
    assert not folder.exists()
    with pytest.raises(ExperimentNotFoundError):
        store.get(exp.id)
    assert store.metrics(exp.id) == [] and store.logs(exp.id) == []
    assert store.events_after(exp.id) == [] and store.artifacts(exp.id) == []
    assert store.list_experiments(tags="t").items == []
    with pytest.raises(ExperimentNotFoundError):
        store.delete(exp.id)


def test_non_finite_and_numpy_values_are_stored_as_strict_json(store: ExperimentStore) -> None:
    import numpy as np

    exp = store.create(pipeline_id="p", config={"lr": np.float32(0.5), "grid": np.arange(3)})
    assert store.get(exp.id).config == {"lr": 0.5, "grid": [0, 1, 2]}
    store.append_metrics(
        exp.id,
        [
            MetricValue("loss", 0, float("nan")),
            MetricValue("loss", 1, float("inf")),
            MetricValue("loss", 2, 0.5),
        ],
    )
    assert [p.value for p in store.metrics(exp.id)] == [None, None, 0.5]
    event = store.append_event(
        exp.id, "prediction", {"y": np.array([1.5, np.nan]), "score": float("-inf")}
    )
    assert event.payload == {"y": [1.5, None], "score": None}
    assert store.events_after(exp.id)[0].payload == {"y": [1.5, None], "score": None}
    store.claim(exp.id, "w")
    done = store.transition(exp.id, S.succeeded, summary={"best": float("nan"), "n": np.int64(3)})
    assert done.summary == {"best": None, "n": 3}
    with pytest.raises(TypeError, match="cannot store a object as JSON"):
        store.append_event(exp.id, "bad", {"x": object()})


def test_search_pages_match_a_plain_reading(
    store: ExperimentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A search reads a window of the newest rows first and collects all matches only when
    the window holds too few: with a 6-row window both paths run, and every page (keyset
    and numbered, each sort, with other filters) equals filtering and sorting in Python."""
    monkeypatch.setattr(ExperimentStore, "SEARCH_WINDOW", 6)
    names = ["alpha old", "beta", "gamma", "alpha"] * 10 + ["beta new"] * 12  # old matches
    made = [
        store.create(
            pipeline_id="p" if i % 3 else "q",
            config={},
            name=f"{n} {i:02d}",
            created_at=T0 + timedelta(minutes=i),
        )
        for i, n in enumerate(names)
    ]
    for term in ("ALPHA", "beta", "a 1", "zzz", made[5].id[:6]):
        for sort, descending in (("created_at", True), ("name", False), ("name", True)):
            for pipeline in (None, "p"):
                want = sorted(
                    (
                        e
                        for e in made
                        if (term.lower() in e.name.lower() or e.id.startswith(term))
                        and pipeline in (None, e.pipeline_id)
                    ),
                    key=lambda e: (getattr(e, sort), e.id),
                    reverse=descending,
                )
                args = {"search": term, "sort": sort, "descending": descending}
                args["pipeline_id"] = pipeline
                got, cursor = [], None
                while True:
                    page = store.list_experiments(limit=4, cursor=cursor, **args)
                    got += [e.id for e in page.items]
                    if (cursor := page.next_cursor) is None:
                        break
                assert got == [e.id for e in want], (term, sort, descending, pipeline)
                numbered = store.list_experiments(limit=3, offset=3, with_total=True, **args)
                assert [e.id for e in numbered.items] == [e.id for e in want][3:6]
                assert numbered.total == len(want)
