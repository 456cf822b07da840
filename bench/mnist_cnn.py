"""A small CNN trained with azuraforge_learner's Learner on the 5,000 real MNIST digits.

Seeded, stratified split: 80% (4,000 digits) to train, 20% (1,000) held out and never seen
in training. Prints held-out accuracy (target >= 97%) and the training wall time.

    uv run python bench/mnist_cnn.py [--epochs 12] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import (
    THREADS,
    Result,
    load_mnist5k,
    print_environment,
    print_results,
    print_table,
    set_threads,
    stratified_split,
)

SEED = 0
EPOCHS = 12
BATCH = 64
LR = 2e-3
TARGET_ACCURACY = 0.97


def run(epochs: int = EPOCHS, seed: int = SEED, threads: int = THREADS) -> list[Result]:
    import azuraforge_core as af
    from azuraforge_learner import (
        Adam,
        Conv2D,
        CosineAnnealingLR,
        CrossEntropyLoss,
        Dropout,
        Flatten,
        Learner,
        Linear,
        MaxPool2D,
        ReLU,
        Sequential,
    )

    set_threads(threads)
    print(
        f"== MNIST CNN with the Learner: 5,000 real digits, 80/20 stratified, {epochs} epochs, seed {seed} =="
    )
    print_environment()
    x, y = load_mnist5k()
    x = x.reshape(-1, 1, 28, 28)
    train, test = stratified_split(y, 0.2, seed)

    af.manual_seed(seed)
    model = Sequential(
        Conv2D(1, 16, 3, padding=1),
        ReLU(),
        MaxPool2D(2),
        Conv2D(16, 32, 3, padding=1),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
        Dropout(0.25),
        Linear(32 * 7 * 7, 64),
        ReLU(),
        Dropout(0.25),
        Linear(64, 10),
    )
    opt = Adam(model.parameters(), lr=LR)
    learner = Learner(
        model, CrossEntropyLoss(), opt, scheduler=CosineAnnealingLR(opt, T_max=epochs), seed=seed
    )
    t0 = time.perf_counter()
    history = learner.fit(x[train], y[train], epochs=epochs, batch_size=BATCH)
    train_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    logits = np.asarray(learner.predict(x[test]))
    predict_s = time.perf_counter() - t1
    accuracy = float((logits.argmax(axis=1) == y[test]).mean())

    losses = history["loss"]
    print_table(
        ("epoch", "train loss"),
        [(i + 1, f"{v:.4f}") for i, v in enumerate(losses)],
        "Training loss per epoch",
    )
    return [
        Result("mnist_cnn", "held-out accuracy", 100 * accuracy, "%",
               f">= {100 * TARGET_ACCURACY:g} %", accuracy >= TARGET_ACCURACY,
               f"{len(test)} digits never trained on"),
        Result("mnist_cnn", "training time", train_s, "s", note=f"{epochs} epochs x {len(train)} digits"),
        Result("mnist_cnn", "training samples/s", epochs * len(train) / train_s, "1/s"),
        Result("mnist_cnn", "predict time", predict_s, "s", note=f"{len(test)} digits"),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--seed", type=int, default=SEED, help="split, initialisation and shuffling")
    ap.add_argument("--threads", type=int, default=THREADS, help="BLAS threads")
    args = ap.parse_args(argv)
    print_results(run(args.epochs, args.seed, args.threads), "MNIST CNN targets")


if __name__ == "__main__":
    sys.exit(main())
