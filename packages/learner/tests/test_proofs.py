"""End-to-end proofs with the real layers through Learner.fit: an LSTM forecasts a sine
wave (R2 >= 0.99 on a held-out later period) and a CNN classifies scikit-learn's digits
(>= 97% test accuracy). Both models then survive save_model/load_model."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import azuraforge_core as af
from azuraforge_learner import (
    LSTM,
    Adam,
    Conv2D,
    CosineAnnealingLR,
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


def test_lstm_forecasts_a_sine_wave(tmp_path: Path) -> None:
    t = np.arange(800, dtype=np.float64)
    series = np.sin(0.07 * t) + 0.5 * np.sin(0.023 * t)
    train, val, test = chronological_split(series, val_size=0.15, test_size=0.15)
    scaler = MinMaxScaler(feature_range=(-1, 1)).fit(train)  # training part only
    window = 24
    Xtr, ytr = make_windows(scaler.transform(train), window)
    Xva, yva = make_windows(scaler.transform(val), window)
    Xte, yte = make_windows(scaler.transform(test), window)
    af.manual_seed(0)
    model = Sequential(LSTM(1, 16), Linear(16, 1))
    learner = Learner(
        model, MSELoss(), Adam(model.named_parameters(), lr=1e-2), metrics=["r2"], seed=0
    )
    learner.fit(Xtr, ytr, epochs=20, batch_size=32, validation_data=(Xva, yva))
    pred = scaler.inverse_transform(learner.predict(Xte))
    truth = scaler.inverse_transform(yte)
    r2 = r2_score(truth, pred)
    assert r2 >= 0.99, r2
    path = save_model(model, tmp_path / "lstm.safetensors", metadata={"scaler": scaler.get_state()})
    loaded = load_model(path)
    np.testing.assert_allclose(
        Learner(loaded, "mse").predict(Xte), learner.predict(Xte), rtol=1e-6, atol=1e-7
    )


def test_cnn_on_digits_reaches_97_percent(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    X, y = load_digits(return_X_y=True)
    X = (X / 16.0).astype(np.float32).reshape(-1, 1, 8, 8)
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    af.manual_seed(0)
    model = Sequential(
        Conv2D(1, 8, 3, padding=1),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Linear(8 * 4 * 4, 64),
        ReLU(),
        Linear(64, 10),
    )
    opt = Adam(model.named_parameters(), lr=3e-3)
    sched = CosineAnnealingLR(opt, T_max=20)
    learner = Learner(model, CrossEntropyLoss(), opt, metrics=["accuracy"], scheduler=sched, seed=0)
    learner.fit(Xtr, ytr, epochs=20, batch_size=32)
    acc = learner.evaluate(Xte, yte)["accuracy"]
    assert acc >= 0.97, acc
    loaded = load_model(save_model(model, tmp_path / "cnn.safetensors"))
    assert accuracy(yte, Learner(loaded, CrossEntropyLoss()).predict(Xte)) == acc
