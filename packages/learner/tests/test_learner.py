"""The Learner: fit/evaluate/predict, proofs on real problems, exact resumption."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import azuraforge_core as af
from azuraforge_core import Tensor
from azuraforge_learner import Module, Parameter, Sequential
from azuraforge_learner.learner import Learner, NonFiniteLossError
from azuraforge_learner.losses import CrossEntropyLoss, MSELoss
from azuraforge_learner.metrics import accuracy
from azuraforge_learner.optim import SGD, Adam
from azuraforge_learner.schedulers import StepLR


class LAffine(Module):
    """A dense layer built from Parameter + af ops (independent of layers.py)."""

    def __init__(self, n_in: int, n_out: int, act: str = "none", drop: float = 0.0) -> None:
        super().__init__()
        self.n_in, self.n_out, self.act, self.drop = n_in, n_out, act, drop
        bound = np.sqrt(6.0 / n_in)
        self.w = Parameter(af.random.default_rng().uniform(-bound, bound, size=(n_in, n_out)))
        self.b = Parameter(np.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        y = af.linear(x, self.w, self.b)
        if self.act == "relu":
            y = y.relu()
        if self.drop:
            y = af.dropout(y, self.drop, self.training)
        return y

    def get_config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out, "act": self.act, "drop": self.drop}


def mlp(sizes: list[int], drop: float = 0.0) -> Sequential:
    layers = [LAffine(a, b, "relu", drop) for a, b in itertools.pairwise(sizes[:-1])]
    return Sequential(*layers, LAffine(sizes[-2], sizes[-1]))


def test_linear_regression_finds_true_weights() -> None:
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(256, 1))
    y = 2 * X + 1
    af.manual_seed(0)
    model = LAffine(1, 1)
    learner = Learner(model, MSELoss(), SGD(model.named_parameters(), lr=0.1), seed=0)
    history = learner.fit(X, y, epochs=60, batch_size=16)
    assert model.w.item() == pytest.approx(2.0, abs=1e-3)
    assert model.b.item() == pytest.approx(1.0, abs=1e-3)
    assert history["loss"][-1] < 1e-6 < history["loss"][0]
    assert history.epoch == list(range(1, 61))


def test_mlp_on_digits_reaches_97_percent() -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    af.manual_seed(0)
    model = mlp([64, 128, 10])
    learner = Learner(
        model,
        CrossEntropyLoss(),
        Adam(model.named_parameters(), lr=2e-3),
        metrics=["accuracy", "f1"],
        seed=0,
    )
    learner.fit(Xtr, ytr, epochs=25, batch_size=32, validation_data=(Xte, yte))
    result = learner.evaluate(Xte, yte)
    assert result["accuracy"] >= 0.97, result
    assert set(result) == {"loss", "accuracy", "f1"}
    assert learner.history["val_accuracy"][-1] == pytest.approx(result["accuracy"])
    assert accuracy(yte, learner.predict(Xte)) == pytest.approx(result["accuracy"])


def test_predict_is_batched_eval_mode_no_grad_numpy() -> None:
    af.manual_seed(1)
    model = mlp([4, 16, 2], drop=0.5)
    learner = Learner(model, "mse", "sgd")
    X = np.random.default_rng(1).normal(size=(300, 4))
    p1 = learner.predict(X, batch_size=64)
    p2 = learner.predict(X, batch_size=300)
    assert isinstance(p1, np.ndarray) and p1.shape == (300, 2) and p1.dtype == np.float32
    np.testing.assert_allclose(p1, p2, rtol=1e-6)  # dropout off in eval mode, batches agree
    assert model.training  # mode restored
    model.eval()
    learner.predict(X[:3])
    assert not model.training


def test_evaluate_matches_manual_loss_and_metrics() -> None:
    af.manual_seed(2)
    model = LAffine(3, 4)
    learner = Learner(model, CrossEntropyLoss(), metrics=["accuracy", accuracy])
    X = np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32)
    y = np.random.default_rng(3).integers(0, 4, size=50)
    res = learner.evaluate(X, y, batch_size=7)
    logits = model(Tensor(X))
    assert res["loss"] == pytest.approx(af.cross_entropy(logits, y).item(), rel=1e-5)
    assert res["accuracy"] == pytest.approx(accuracy(y, logits.numpy()))
    with pytest.raises(ValueError, match="samples"):
        learner.evaluate(X, y[:10])


def test_fit_continues_epochs_and_accepts_tensors() -> None:
    model = LAffine(2, 1)
    learner = Learner(model, MSELoss(), SGD(model.named_parameters(), lr=0.05), seed=1)
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = X.sum(1, keepdims=True)
    learner.fit(Tensor(X), Tensor(y), epochs=2, batch_size=8)
    h = learner.fit(X, y, epochs=3, batch_size=8)
    assert h.epoch == [1, 2, 3, 4, 5] and learner.epoch == 5 and learner.global_step == 25


def test_nan_loss_stops_with_clear_error() -> None:
    X = np.ones((100, 2))
    X[70, 0] = np.nan  # batch 3 (samples 64..95) without shuffling
    y = np.zeros((100, 1))
    model = LAffine(2, 1)
    learner = Learner(model, MSELoss(), SGD(model.named_parameters(), lr=0.01))
    with pytest.raises(NonFiniteLossError, match=r"nan at epoch 1, step 3/4") as info:
        learner.fit(X, y, epochs=2, batch_size=32, shuffle=False)
    assert info.value.epoch == 1 and info.value.step == 3
    assert np.all(np.isfinite(model.w.numpy()))  # the bad step was never applied
    # an exploding learning rate gives inf/nan too, also caught
    learner2 = Learner(LAffine(2, 1), MSELoss(), "sgd")
    learner2.optimizer.lr = 1e6
    with np.errstate(all="ignore"), pytest.raises(NonFiniteLossError, match="epoch"):
        learner2.fit(
            np.random.default_rng(0).normal(size=(64, 2)) * 100, np.ones((64, 1)), epochs=50
        )


def test_shape_mismatch_error_reaches_the_user() -> None:
    learner = Learner(LAffine(2, 1), MSELoss(), "sgd")
    with pytest.raises(ValueError, match="prediction shape"):
        learner.fit(np.zeros((8, 2)), np.zeros(8), epochs=1)


def test_scheduler_is_stepped_per_epoch() -> None:
    model = LAffine(2, 1)
    opt = SGD(model.named_parameters(), lr=0.1)
    learner = Learner(model, MSELoss(), opt, scheduler=StepLR(opt, step_size=2, gamma=0.5))
    X = np.random.default_rng(0).normal(size=(16, 2))
    h = learner.fit(X, X[:, :1], epochs=5, batch_size=8)
    assert h["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])


def test_reduce_on_plateau_uses_loss_without_validation() -> None:
    from azuraforge_learner.schedulers import ReduceLROnPlateau

    model = LAffine(2, 1)
    opt = SGD(model.named_parameters(), lr=0.0)  # lr 0: the loss never improves
    sched = ReduceLROnPlateau(opt, patience=0, factor=0.5)
    opt.lr = 0.0
    learner = Learner(model, MSELoss(), opt, scheduler=sched)
    X = np.random.default_rng(0).normal(size=(16, 2))
    learner.fit(X, X[:, :1] + 5, epochs=3)
    assert sched.best is not None and sched.num_bad_epochs == 0 and sched.last_epoch == 3


def _resume_setup(seed_model: int) -> Learner:
    af.manual_seed(seed_model)
    model = mlp([3, 16, 1], drop=0.2)  # dropout: the core RNG must be restored too
    opt = Adam(model.named_parameters(), lr=0.01)
    return Learner(model, MSELoss(), opt, scheduler=StepLR(opt, step_size=1, gamma=0.7), seed=0)


def test_resume_from_checkpoint_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(90, 3)).astype(np.float32)
    y = (X @ np.array([[1.0], [-1.0], [0.5]])).astype(np.float32)
    straight = _resume_setup(123)
    straight.fit(X, y, epochs=4, batch_size=16)

    first = _resume_setup(123)
    first.fit(X, y, epochs=2, batch_size=16)
    path = first.save_checkpoint(tmp_path / "ckpt.safetensors")
    af.random.default_rng().random(100)  # disturb the core RNG
    resumed = _resume_setup(999)  # fresh objects, different initial weights
    info = resumed.load_checkpoint(path)
    assert info["epoch"] == 2 and resumed.epoch == 2
    resumed.fit(X, y, epochs=2, batch_size=16)

    for (name, a), (_, b) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        np.testing.assert_array_equal(a, b, err_msg=name)  # bit for bit
    assert resumed.history.epoch == [1, 2, 3, 4]
    assert resumed.history["loss"] == pytest.approx(straight.history["loss"], rel=1e-6)
    assert resumed.optimizer.lr == pytest.approx(straight.optimizer.lr)


def test_learner_argument_errors() -> None:
    with pytest.raises(TypeError, match="Module"):
        Learner(object(), "mse")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown optimizer"):
        Learner(LAffine(1, 1), "mse", "adagrad")
    with pytest.raises(TypeError, match="Callback"):
        Learner(LAffine(1, 1), "mse", callbacks=[print])  # type: ignore[list-item]
    learner = Learner(LAffine(1, 1), "mse")
    with pytest.raises(ValueError, match="validation_data"):
        learner.fit(np.zeros((4, 1)), np.zeros((4, 1)), validation_data=np.zeros(3))  # type: ignore[arg-type]
