"""run_experiment in this process: the full lifecycle against the real store and event bus."""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import Field

from azuraforge_pipeline import Pipeline, PipelineConfig, PipelineRegistry, RunContext
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment, seed_for
from azuraforge_platform.store import ExperimentStatus, ExperimentStore

S = ExperimentStatus


class Trainer(Pipeline):
    id = "trainer"
    name = "Trainer"
    version = "2.0.0"

    class Config(PipelineConfig):
        epochs: int = Field(3, ge=1)
        fail_at: int | None = Field(None, description="raise in this epoch")
        sleep: float = Field(0.0, ge=0)

    def run(self, config: Config, context: RunContext) -> dict[str, float]:
        loss = 1.0
        for epoch in range(1, config.epochs + 1):
            context.check_cancelled()
            if config.fail_at == epoch:
                raise ValueError(f"diverged at epoch {epoch}")
            loss /= 2
            context.progress(epoch=epoch, total_epochs=config.epochs)
            context.log_metrics({"loss": loss, "acc": 1 - loss}, epoch=epoch)
            context.log(f"epoch {epoch} done")
            time.sleep(config.sleep)
        context.emit("prediction", {"y": context.rng.normal(size=2).tolist()})
        context.save_artifact("result.json", {"loss": loss})
        return {"loss": loss}


@pytest.fixture
def registry() -> PipelineRegistry:
    reg = PipelineRegistry()
    reg.register(Trainer)
    return reg


@pytest.fixture
def events(store: ExperimentStore) -> EventService:
    return EventService(store, InProcessEventBus())


def test_success_persists_everything(
    events: EventService, store: ExperimentStore, registry: PipelineRegistry
) -> None:
    exp = store.create(pipeline_id="trainer", config={"epochs": 3})
    with events.stream(exp.id) as stream:
        final = run_experiment(exp.id, events, registry=registry, worker="w1")
        total = store.get(exp.id).last_event_seq
        live = [stream.get(timeout=5) for _ in range(total)]
        assert stream.get(timeout=0.05) is None
    assert final.status is S.succeeded and final.summary == {"loss": 0.125}
    assert final.worker == "w1" and final.attempts == 1 and final.finished_at is not None
    loss = [m.value for m in store.metrics(exp.id, names=["loss"])]
    assert loss == [0.5, 0.25, 0.125]
    assert [m.epoch for m in store.metrics(exp.id, names=["acc"])] == [1, 2, 3]
    assert [line.message for line in store.logs(exp.id)] == [f"epoch {i} done" for i in (1, 2, 3)]
    assert [(a.path, a.kind) for a in store.artifacts(exp.id)] == [("result.json", "json")]
    assert (store.artifact_dir(exp.id) / "result.json").exists()
    stored = store.events_after(exp.id)
    assert [e.seq for e in stored] == list(range(1, len(stored) + 1))
    types = [e.type for e in stored]
    assert types[0] == "status" and types[-1] == "status"
    assert stored[-1].payload["status"] == "succeeded"
    assert {"progress", "metrics", "log", "prediction", "artifact"} <= set(types)
    assert [e.seq for e in live if e is not None] == [e.seq for e in stored]
    # reproducible: the seed comes from the experiment id
    import numpy as np

    pred = next(e for e in stored if e.type == "prediction").payload["y"]
    assert pred == np.random.default_rng(seed_for(exp.id, {})).normal(size=2).tolist()


def test_rerun_is_a_no_op(
    events: EventService, store: ExperimentStore, registry: PipelineRegistry
) -> None:
    exp = store.create(pipeline_id="trainer", config={"epochs": 1})
    first = run_experiment(exp.id, events, registry=registry)
    again = run_experiment(exp.id, events, registry=registry)
    assert again == first  # no second claim, no new events


def test_failure_stores_traceback(
    events: EventService, store: ExperimentStore, registry: PipelineRegistry
) -> None:
    exp = store.create(pipeline_id="trainer", config={"epochs": 3, "fail_at": 2})
    final = run_experiment(exp.id, events, registry=registry)
    assert final.status is S.failed
    assert final.error == "ValueError: diverged at epoch 2"
    assert final.traceback is not None and "in run" in final.traceback
    assert [m.value for m in store.metrics(exp.id, names=["loss"])] == [0.5]


def test_unknown_pipeline_and_bad_config_fail_cleanly(
    events: EventService, store: ExperimentStore, registry: PipelineRegistry
) -> None:
    missing = store.create(pipeline_id="tranier", config={})
    final = run_experiment(missing.id, events, registry=registry)
    assert final.status is S.failed and "known pipelines: trainer" in (final.error or "")
    bad = store.create(pipeline_id="trainer", config={"epochs": 0, "lr": 1})
    final = run_experiment(bad.id, events, registry=registry)
    assert final.status is S.failed
    assert "epochs" in (final.error or "") and "lr" in (final.error or "")


def test_cancel_reaches_the_running_pipeline(
    events: EventService, store: ExperimentStore, registry: PipelineRegistry
) -> None:
    exp = store.create(pipeline_id="trainer", config={"epochs": 1000, "sleep": 0.01})
    result: dict[str, object] = {}
    thread = threading.Thread(
        target=lambda: result.update(
            final=run_experiment(exp.id, events, registry=registry, heartbeat_seconds=0.05)
        )
    )
    thread.start()
    deadline = time.monotonic() + 30
    while store.get(exp.id).status is not S.running or not store.metrics(exp.id):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert store.request_cancel(exp.id).status is S.cancelling
    thread.join(30)
    final = result["final"]
    assert final.status is S.cancelled  # type: ignore[attr-defined]
    assert 0 < len(store.metrics(exp.id, names=["loss"])) < 1000


def test_artifact_dir_is_per_experiment(store: ExperimentStore, tmp_path: Path) -> None:
    exp = store.create(pipeline_id="trainer", config={})
    assert store.artifact_dir(exp.id) == store.artifact_root / exp.id
    with pytest.raises(ValueError):
        store.artifact_dir("../x")


def test_reporter_buffers_then_writes_in_order(store: ExperimentStore) -> None:
    from azuraforge_platform.execution import StoreReporter

    exp = store.create(pipeline_id="trainer", config={})
    events = EventService(store, InProcessEventBus())
    reporter = StoreReporter(events, exp.id, flush_seconds=3600, max_buffer=50)
    for step in range(20):
        reporter.metrics({"loss": 1 / (step + 1)}, step=step)
        reporter.log(f"step {step}")
    assert store.metrics(exp.id) == [] and store.events_after(exp.id) == []  # still buffered
    for step in range(20, 25):  # the 50th report reaches max_buffer: everything is written
        reporter.metrics({"loss": 1 / (step + 1)}, step=step)
        reporter.log(f"step {step}")
    assert len(store.metrics(exp.id)) == 25 and len(store.events_after(exp.id)) == 50
    reporter.metrics({"loss": 0.0}, step=25)
    assert len(store.metrics(exp.id)) == 25
    reporter.flush()
    assert [m.step for m in store.metrics(exp.id)] == list(range(26))
    assert [line.message for line in store.logs(exp.id)] == [f"step {i}" for i in range(25)]
    stored = store.events_after(exp.id)
    assert [e.seq for e in stored] == list(range(1, 52))
    assert [e.type for e in stored[:4]] == ["metrics", "log", "metrics", "log"]


class _WorkerDied(BaseException):
    """Stands in for the process dying: not an Exception, so the runner records nothing."""


class Resumable(Pipeline):
    id = "resumable"
    name = "Resumable"

    class Config(PipelineConfig):
        epochs: int = 6
        die_after: int | None = None

    def run(self, config: Config, context: RunContext) -> dict[str, float]:
        import numpy as np

        checkpoint = context.load_checkpoint()
        start = checkpoint.meta["epoch"] + 1 if checkpoint else 1
        w = checkpoint.arrays["w"] if checkpoint else np.zeros(2)
        context.log(f"attempt {context.attempt} starts at epoch {start}")
        for epoch in range(start, config.epochs + 1):
            w = w + 1
            context.log_metrics({"w": float(w[0])}, epoch=epoch)
            if config.die_after == epoch and context.attempt == 1:
                # reported but not yet checkpointed: the retry reports this epoch again
                raise _WorkerDied
            context.save_checkpoint({"w": w}, {"epoch": epoch})
        return {"w": float(w[0])}


def test_lost_run_is_retried_and_resumes_from_its_checkpoint(
    events: EventService, store: ExperimentStore
) -> None:
    registry = PipelineRegistry()
    registry.register(Resumable)
    exp = store.create(pipeline_id="resumable", config={"die_after": 4}, max_attempts=2)
    with pytest.raises(_WorkerDied):
        run_experiment(exp.id, events, registry=registry, worker="w1")
    assert store.get(exp.id).status is S.running  # nobody recorded an outcome
    requeued = store.recover(exp.id, worker="w1", reason="worker w1 vanished")
    assert requeued is not None and requeued.status is S.queued
    final = run_experiment(exp.id, events, registry=registry, worker="w2")
    assert final.status is S.succeeded and final.attempts == 2 and final.worker == "w2"
    assert final.summary == {"w": 6.0}  # resumed from epoch 3's weights, not from scratch
    points = store.metrics(exp.id)
    assert [(p.step, p.value) for p in points] == [(e, float(e)) for e in range(1, 7)]
    assert [line.message for line in store.logs(exp.id)] == [
        "attempt 1 starts at epoch 1",
        "attempt 2 starts at epoch 4",
    ]


class Diverging(Pipeline):
    """Non-finite losses three ways: the learner's own check, a reported metric, and a
    reported metric whose error the pipeline swallows."""

    id = "diverging"
    name = "Diverging"

    class Config(PipelineConfig):
        how: str = "learner"

    def run(self, config: Config, context: RunContext) -> dict[str, float]:
        import numpy as np

        if config.how == "learner":
            from azuraforge_learner import SGD, Learner, Linear, MSELoss

            rng = np.random.default_rng(0)
            X = rng.normal(size=(64, 4)).astype(np.float32) * 100
            y = X @ rng.normal(size=(4, 1)).astype(np.float32)
            model = Linear(4, 1)
            with np.errstate(all="ignore"):  # the overflow is the point
                Learner(model, MSELoss(), SGD(model.named_parameters(), lr=10.0)).fit(
                    X, y, epochs=20, batch_size=16
                )
        elif config.how == "metric":
            context.log_metrics({"val_loss": float("inf")}, epoch=1)
        else:
            with contextlib.suppress(FloatingPointError):
                context.log_metrics({"loss": float("nan")}, step=3)
        return {"done": 1.0}


@pytest.mark.parametrize(
    ("how", "message"),
    [
        ("learner", "NonFiniteLossError: the training loss became"),
        ("metric", "the loss metric 'val_loss' became inf at epoch 1"),
        ("swallowed", "the loss metric 'loss' became nan at step 3"),
    ],
)
def test_a_non_finite_loss_fails_the_run_saying_so(
    events: EventService, store: ExperimentStore, how: str, message: str
) -> None:
    registry = PipelineRegistry()
    registry.register(Diverging)
    exp = store.create(pipeline_id="diverging", config={"how": how})
    final = run_experiment(exp.id, events, registry=registry)
    assert final.status is S.failed and final.summary is None
    assert message in (final.error or ""), final.error
    assert final.traceback is not None


class Where(Pipeline):
    id = "where"
    name = "Where"

    def run(self, config: PipelineConfig, context: RunContext) -> dict[str, str]:
        return {"device": context.device}


def test_the_device_setting_reaches_the_run(store: ExperimentStore, tmp_path: Path) -> None:
    from azuraforge_platform.settings import Settings

    registry = PipelineRegistry()
    registry.register(Where)
    events = EventService(store, InProcessEventBus())
    for settings, device in [(None, "cpu"), (Settings(data_dir=tmp_path, device="cuda"), "cuda")]:
        exp = store.create(pipeline_id="where", config={})
        final = run_experiment(exp.id, events, registry=registry, worker="w1", settings=settings)
        assert final.status is S.succeeded and final.summary == {"device": device}


def test_a_checkpoint_never_gets_ahead_of_the_stored_reports(
    store: ExperimentStore, tmp_path: Path
) -> None:
    """A worker killed right after a checkpoint resumes after it: the reports made before the
    checkpoint must be in the store by then, however the reporter buffers."""
    from azuraforge_platform.execution.reporter import StoreReporter

    exp = store.create(pipeline_id="trainer", config={})
    reporter = StoreReporter(EventService(store, InProcessEventBus()), exp.id, flush_seconds=3600)
    context = RunContext(artifact_dir=tmp_path / "a", reporter=reporter)
    context.log_metrics({"loss": 0.5}, epoch=1)
    assert store.metrics(exp.id) == []  # buffered
    context.save_checkpoint({"w": np.zeros(2)}, {"epoch": 1})
    assert [(p.name, p.step) for p in store.metrics(exp.id)] == [("loss", 1)]
