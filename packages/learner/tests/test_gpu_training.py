"""The training proofs again with the model on a CUDA GPU (CuPy): an MLP and a CNN on
scikit-learn's real digits and an LSTM on a sine wave reach the CPU proofs' bars, the weights
stay on the device while training, and a model saved from the GPU loads on the CPU with the
same predictions. Marked `gpu`: `make test-gpu` runs them (they fail, never skip, without
CuPy)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import azuraforge_core as af
from azuraforge_learner import (
    LSTM,
    Adam,
    Conv2D,
    CrossEntropyLoss,
    Flatten,
    Learner,
    Linear,
    MaxPool2D,
    MinMaxScaler,
    MSELoss,
    ReLU,
    Sequential,
    chronological_split,
    load_model,
    make_windows,
    save_model,
)
from azuraforge_learner.metrics import accuracy, r2_score

pytestmark = pytest.mark.gpu


def _digits(image: bool) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32)
    if image:
        X = X.reshape(-1, 1, 8, 8)
    return tuple(train_test_split(X, y, test_size=0.25, random_state=0, stratify=y))


def _on_gpu(model: Sequential) -> None:
    assert all(p.device.startswith("cuda") for p in model.parameters())


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_digits_train_on_the_gpu(kind: str, tmp_path: Path) -> None:
    Xtr, Xte, ytr, yte = _digits(image=kind == "cnn")
    af.manual_seed(0)
    if kind == "mlp":
        model = Sequential(Linear(64, 128), ReLU(), Linear(128, 10))
    else:
        model = Sequential(
            Conv2D(1, 8, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(),
            Linear(8 * 4 * 4, 64), ReLU(), Linear(64, 10),
        )  # fmt: skip
    model.to("cuda")
    learner = Learner(model, CrossEntropyLoss(), Adam(model.named_parameters(), lr=3e-3), seed=0)
    learner.fit(Xtr, ytr, epochs=20, batch_size=32)
    _on_gpu(model)
    acc = accuracy(yte, learner.predict(Xte))
    assert acc >= 0.96, acc
    # saved from the device, loaded on the host: the same answers
    loaded = load_model(save_model(model, tmp_path / f"{kind}.safetensors"))
    assert all(p.device == "cpu" for p in loaded.parameters())
    assert accuracy(yte, Learner(loaded, CrossEntropyLoss()).predict(Xte)) == acc


def test_lstm_forecasts_a_sine_wave_on_the_gpu() -> None:
    t = np.arange(800, dtype=np.float64)
    series = np.sin(0.07 * t) + 0.5 * np.sin(0.023 * t)
    train, _, test = chronological_split(series, val_size=0.15, test_size=0.15)
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(train)
    Xtr, ytr = make_windows(scaler.transform(train), 24)
    Xte, yte = make_windows(scaler.transform(test), 24)
    af.manual_seed(0)
    model = Sequential(LSTM(1, 16), Linear(16, 1))
    model.to("cuda")
    learner = Learner(model, MSELoss(), Adam(model.named_parameters(), lr=1e-2), seed=0)
    learner.fit(Xtr, ytr, epochs=20, batch_size=32)
    _on_gpu(model)
    pred = scaler.inverse_transform(learner.predict(Xte))
    r2 = r2_score(scaler.inverse_transform(yte), pred)
    assert r2 >= 0.99, r2
