"""Train a small MLP on scikit-learn's real 8x8 handwritten digits with the bare engine.

Everything here is azuraforge_core: tensors, autograd, softmax cross-entropy, and a
hand-written SGD-with-momentum update. Run it with `make run` (until the platform's
`azuraforge up` takes that command over) and watch the loss fall.
"""

from __future__ import annotations

import time

import numpy as np
from sklearn.datasets import load_digits

import azuraforge_core as af
from azuraforge_core import Tensor, no_grad


def main(epochs: int = 15, batch_size: int = 64, lr: float = 0.05, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = rng.permutation(len(x))
    split = int(0.8 * len(x))
    train, test = order[:split], order[split:]

    def param(*shape: int, scale: float) -> Tensor:
        return Tensor(rng.normal(0, scale, shape), requires_grad=True)

    w1, b1 = param(64, 128, scale=np.sqrt(2 / 64)), Tensor(np.zeros(128), requires_grad=True)
    w2, b2 = param(128, 10, scale=np.sqrt(2 / 128)), Tensor(np.zeros(10), requires_grad=True)
    params = [w1, b1, w2, b2]
    velocity = [np.zeros_like(p.data) for p in params]

    def logits(batch: np.ndarray) -> Tensor:
        return af.linear(af.linear(Tensor(batch), w1, b1).relu(), w2, b2)

    print(f"training a 64-128-10 MLP on {len(train)} real digits, testing on {len(test)}")
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        perm = rng.permutation(train)
        total = 0.0
        for i in range(0, len(perm), batch_size):
            idx = perm[i : i + batch_size]
            loss = af.cross_entropy(logits(x[idx]), y[idx])
            for p in params:
                p.grad = None
            loss.backward()
            for p, v in zip(params, velocity, strict=True):
                v *= 0.9
                v += p.grad.data
                p.data -= lr * v
            total += loss.item() * len(idx)
        with no_grad():
            acc = float((logits(x[test]).numpy().argmax(1) == y[test]).mean())
        print(f"epoch {epoch:2d}  train loss {total / len(train):.4f}  test accuracy {acc:.3f}")
    print(f"done in {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
