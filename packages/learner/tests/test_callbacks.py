"""Callbacks: event order and payload, stopping, EarlyStopping, ModelCheckpoint,
ProgressBar, History."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import azuraforge_core as af
from azuraforge_core import Tensor
from azuraforge_learner import Module, Parameter
from azuraforge_learner.callbacks import (
    PAYLOAD_KEYS,
    Callback,
    EarlyStopping,
    LambdaCallback,
    ModelCheckpoint,
    ProgressBar,
)
from azuraforge_learner.learner import Learner, NonFiniteLossError
from azuraforge_learner.losses import MSELoss
from azuraforge_learner.optim import SGD, Adam
from azuraforge_learner.serialization import load_model


class CAffine(Module):
    def __init__(self, n_in: int = 2, n_out: int = 1) -> None:
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        self.w = Parameter(af.random.default_rng().normal(size=(n_in, n_out)))
        self.b = Parameter(np.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        return af.linear(x, self.w, self.b)

    def get_config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out}


RNG = np.random.default_rng(0)
X = RNG.normal(size=(30, 2)).astype(np.float32)
Y = (X @ np.array([[1.0], [2.0]])).astype(np.float32)


class Recorder(Callback):
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def _rec(self, logs: dict[str, Any]) -> None:
        self.events.append((logs["event"], dict(logs)))

    on_train_begin = on_epoch_begin = on_batch_end = on_epoch_end = on_train_end = _rec


def make_learner(callbacks: list[Callback], **kw: Any) -> Learner:
    af.manual_seed(0)
    model = CAffine()
    return Learner(
        model, MSELoss(), SGD(model.named_parameters(), lr=0.05), callbacks=callbacks, seed=0, **kw
    )


def test_events_in_order_with_full_payload() -> None:
    rec = Recorder()
    learner = make_learner([rec], metrics=["mae"])
    learner.fit(X, Y, epochs=2, batch_size=12, validation_data=(X[:10], Y[:10]))
    names = [e for e, _ in rec.events]
    per_epoch = ["epoch_begin", "batch_end", "batch_end", "batch_end", "epoch_end"]
    assert names == ["train_begin", *per_epoch, *per_epoch, "train_end"]
    for _, logs in rec.events:
        assert set(PAYLOAD_KEYS) <= set(logs)
        assert logs["epochs"] == 2 and logs["steps"] == 3 and logs["num_samples"] == 30
        assert logs["batch_size"] == 12 and logs["lr"] == pytest.approx(0.05)
    batches = [logs for e, logs in rec.events if e == "batch_end"]
    assert [b["step"] for b in batches] == [1, 2, 3, 1, 2, 3]
    assert [b["epoch"] for b in batches] == [1, 1, 1, 2, 2, 2]
    assert [b["global_step"] for b in batches] == [1, 2, 3, 4, 5, 6]
    assert all(b["samples_per_sec"] > 0 and np.isfinite(b["loss"]) for b in batches)
    ends = [logs for e, logs in rec.events if e == "epoch_end"]
    assert all(e["val_loss"] is not None for e in ends)
    assert set(ends[0]["metrics"]) == {"mae", "val_mae"}
    elapsed = [logs["elapsed"] for _, logs in rec.events]
    assert elapsed == sorted(elapsed)
    assert rec.events[-1][1]["status"] == "completed"


def test_returning_true_stops_after_that_batch() -> None:
    rec = Recorder()
    stopper = LambdaCallback(on_batch_end=lambda logs: logs["global_step"] == 2)
    learner = make_learner([stopper, rec])
    h = learner.fit(X, Y, epochs=10, batch_size=10)
    assert [e for e, _ in rec.events].count("batch_end") == 2
    assert rec.events[-1][0] == "train_end" and rec.events[-1][1]["status"] == "stopped"
    assert h.epoch == [] and learner.epoch == 0  # the interrupted epoch does not count


def test_setting_stop_training_stops_at_epoch_end() -> None:
    class StopAt2(Callback):
        def on_epoch_end(self, logs: dict[str, Any]) -> None:
            if logs["epoch"] == 2:
                self.learner.stop_training = True

    learner = make_learner([StopAt2()])
    h = learner.fit(X, Y, epochs=10, batch_size=10)
    assert h.epoch == [1, 2]
    # the next fit starts fresh (stop flag cleared)
    learner.callbacks = []
    assert learner.fit(X, Y, epochs=1).epoch == [1, 2, 3]


def test_train_end_fires_on_error() -> None:
    rec = Recorder()
    learner = make_learner([rec])
    Xbad = X.copy()
    Xbad[0, 0] = np.inf
    with pytest.raises(NonFiniteLossError):
        learner.fit(Xbad, Y, epochs=1, shuffle=False)
    assert rec.events[-1][0] == "train_end" and rec.events[-1][1]["status"] == "error"


def sequence_metric(values: list[float]):
    """A metric returning `values` in turn (two calls per epoch: train, then validation)."""
    it = iter(values)

    def fake(y_true: Any, y_pred: Any) -> float:
        return next(it)

    return fake


class Snapshots(Callback):
    def __init__(self) -> None:
        self.by_epoch: dict[int, dict[str, np.ndarray]] = {}

    def on_epoch_end(self, logs: dict[str, Any]) -> None:
        self.by_epoch[logs["epoch"]] = self.learner.model.state_dict()


def test_early_stopping_stops_and_restores_best_weights() -> None:
    val = [3.0, 1.0, 2.0, 1.5, 1.2, 0.1, 0.1]  # best at epoch 2, then 3 epochs without gain
    seq = [x for v in val for x in (0.0, v)]
    snaps = Snapshots()
    es = EarlyStopping(monitor="val_fake", patience=2, mode="min")
    learner = make_learner([snaps, es], metrics=[sequence_metric(seq)])
    h = learner.fit(X, Y, epochs=20, batch_size=10, validation_data=(X, Y))
    assert h.epoch == [1, 2, 3, 4, 5] and es.stopped_epoch == 5 and es.best_epoch == 2
    final = learner.model.state_dict()
    for k, v in snaps.by_epoch[2].items():
        np.testing.assert_array_equal(final[k], v)
    assert not np.array_equal(snaps.by_epoch[5]["w"], snaps.by_epoch[2]["w"])


def test_early_stopping_min_delta_auto_mode_and_missing_monitor() -> None:
    es = EarlyStopping(monitor="val_accuracy")
    assert es.mode == "max"
    es = EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    learner = make_learner([es])
    h = learner.fit(X, Y, epochs=10, batch_size=10)  # improvements < 10 do not count
    assert h.epoch == [1, 2]
    learner = make_learner([EarlyStopping()])
    with pytest.raises(KeyError, match=r"val_loss.*pass validation_data"):
        learner.fit(X, Y, epochs=1)


def test_model_checkpoint_saves_best_and_last_with_optimizer_state(tmp_path: Path) -> None:
    val = [3.0, 1.0, 2.0]
    seq = [x for v in val for x in (0.0, v)]
    af.manual_seed(0)
    model = CAffine()
    ckpt = ModelCheckpoint(tmp_path / "ck", monitor="val_fake", mode="min")
    snaps = Snapshots()
    learner = Learner(
        model, MSELoss(), Adam(model.named_parameters(), lr=0.01),
        metrics=[sequence_metric(seq)], callbacks=[snaps, ckpt], seed=0,
    )  # fmt: skip
    learner.fit(X, Y, epochs=3, batch_size=10, validation_data=(X, Y))
    assert ckpt.best_path.exists() and ckpt.last_path.exists() and ckpt.best_epoch == 2
    af.manual_seed(5)
    model2 = CAffine()
    fresh = Learner(model2, MSELoss(), Adam(model2.named_parameters(), lr=0.5))
    info = fresh.load_checkpoint(ckpt.best_path)
    assert info["epoch"] == 2 and fresh.epoch == 2 and info["extra"]["best"] == 1.0
    np.testing.assert_array_equal(model2.w.numpy(), snaps.by_epoch[2]["w"])
    assert fresh.optimizer.state["w"]["step"] == 6 and fresh.optimizer.lr == 0.01
    last = load_model(ckpt.last_path)
    np.testing.assert_array_equal(last.state_dict()["w"], snaps.by_epoch[3]["w"])


def test_progress_bar_renders_to_a_console() -> None:
    from rich.console import Console

    buf = io.StringIO()
    bar = ProgressBar(console=Console(file=buf, width=200, force_terminal=False))
    learner = make_learner([bar], metrics=["mae"])
    learner.fit(X, Y, epochs=2, batch_size=10, validation_data=(X, Y))
    out = buf.getvalue()
    assert "epoch 1/2" in out and "epoch 2/2" in out
    assert "val_loss" in out and "val_mae" in out and "samples/s" in out


def test_importing_the_learner_does_not_import_rich_or_safetensors() -> None:
    code = (
        "import sys, azuraforge_learner; print('rich' in sys.modules, 'safetensors' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_history_records_and_serialises() -> None:
    learner = make_learner([], metrics=["rmse"])
    h = learner.fit(X, Y, epochs=3, batch_size=10, validation_data=(X, Y))
    assert {"loss", "val_loss", "rmse", "val_rmse", "lr", "elapsed"} <= set(h.keys())
    assert len(h["val_rmse"]) == 3 and h.to_dict()["epoch"] == [1, 2, 3]
    with pytest.raises(ValueError, match="unknown hook"):
        LambdaCallback(on_step=print)
