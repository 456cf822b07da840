"""End to end: an MLP made only of azuraforge_core tensors learns the 8x8 digits.

Plain minibatch gradient descent, no learner package: if a gradient failed to reach a
parameter, or had the wrong sign or scale, the accuracy bar would not be met.
"""

from __future__ import annotations

import itertools

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import azuraforge_core as af
from azuraforge_core import Tensor, no_grad


def init_mlp(rng: np.random.Generator, sizes: list[int]) -> list[Tensor]:
    params = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)  # He init for relu
        params.append(Tensor(w, requires_grad=True, name=f"w{len(params) // 2}"))
        params.append(Tensor(np.zeros(fan_out), requires_grad=True, name=f"b{len(params) // 2}"))
    return params


def forward(params: list[Tensor], x: Tensor) -> Tensor:
    h = x
    n_layers = len(params) // 2
    for i in range(n_layers):
        w, b = params[2 * i], params[2 * i + 1]
        h = h @ w + b  # broadcasting add: the bias gradient must be summed over the batch
        if i < n_layers - 1:
            h = h.relu()
    return h


def test_mlp_reaches_95_percent_on_digits() -> None:
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        digits.data, digits.target, test_size=0.25, stratify=digits.target, random_state=0
    )
    scaler = StandardScaler().fit(x_train)  # fitted on the training part only
    x_train = scaler.transform(x_train).astype(np.float32)
    x_test = scaler.transform(x_test).astype(np.float32)

    rng = np.random.default_rng(0)
    params = init_mlp(rng, [64, 64, 32, 10])
    lr, batch, epochs = 0.05, 32, 25
    first_grads: list[np.ndarray] = []
    losses: list[float] = []
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        epoch_loss = 0.0
        for start in range(0, len(order), batch):
            idx = order[start : start + batch]
            logits = forward(params, Tensor(x_train[idx]))
            loss = af.cross_entropy(logits, y_train[idx])
            loss.backward()
            if not first_grads:
                first_grads = [p.grad.numpy().copy() for p in params]
            with no_grad():
                for p in params:
                    p.data -= lr * p.grad.data
                    p.grad = None
            epoch_loss += loss.item() * len(idx)
        losses.append(epoch_loss / len(order))

    # every parameter got a real gradient, of its own shape and dtype
    for p, g in zip(params, first_grads, strict=True):
        assert g.shape == p.shape and g.dtype == np.float32
        assert np.abs(g).max() > 0, f"no gradient reached {p.name}"
    assert losses[-1] < 0.25 * losses[0]

    with no_grad():
        pred = forward(params, Tensor(x_test)).numpy().argmax(axis=1)
    accuracy = float((pred == y_test).mean())
    print(f"digits MLP: test accuracy {accuracy:.3f}, loss {losses[0]:.3f} -> {losses[-1]:.4f}")
    assert accuracy >= 0.95, f"test accuracy {accuracy:.3f}"
