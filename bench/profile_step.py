"""Profile one training step of a benchmark model, built as a user builds it with the learner.

    uv run python bench/profile_step.py cnn [--steps 40] [--top 25] [--threads 1]
    uv run python bench/profile_step.py lstm --no-profile --steps 200   # CPU ms per step only

The models are the benchmarks' (bench/README.md), through azuraforge_learner's public API:
`mlp` (Linear 784-256-128-10 with ReLU, SGD momentum, batch 128, MNIST), `cnn` (LeNet-style
Conv2D/MaxPool2D/Linear, SGD momentum, batch 64, MNIST) and `lstm` (LSTM(1 -> 64) over 30
steps, Linear 64 -> 1, MSE, Adam, batch 64, noisy sines).

First the CPU time per step (`time.process_time`, median and minimum over chunks of 10
steps, outside the profiler): on a machine shared with other jobs CPU time moves far less
than wall-clock time, so compare changes by it, at `--threads 1`, in alternating runs. Then
cProfile's functions by own time and by cumulative time: `nn.py:...(forward)` /
`(backward)` lines are the engine's ops (`azuraforge_core/ops/nn.py`), `recurrent.py` the
fused LSTM. numpy's ufuncs (add, multiply, tanh, ...) are not listed separately; their time
is inside the op that calls them.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from workloads import mnist5k, sines

BENCHES = ("mlp", "cnn", "lstm")


def training_step(name: str) -> tuple[Callable[[np.ndarray], float], int, int]:
    """One optimisation step on a batch of row indices, the dataset size and the batch size."""
    import azuraforge_core as af
    from azuraforge_learner import (
        LSTM,
        SGD,
        Adam,
        Conv2D,
        CrossEntropyLoss,
        Flatten,
        Linear,
        MaxPool2D,
        MSELoss,
        ReLU,
        Sequential,
    )

    af.manual_seed(0)
    if name == "lstm":
        x, y = sines()
        model = Sequential(LSTM(1, 64), Linear(64, 1))
        loss_fn: Any = MSELoss()
        opt: Any = Adam(model.parameters(), lr=1e-3)
        batch = 64
    else:
        x, y = mnist5k()
        loss_fn = CrossEntropyLoss()
        if name == "mlp":
            model = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
            batch = 128
        else:
            x = x.reshape(-1, 1, 28, 28)
            model = Sequential(
                Conv2D(1, 8, 3), ReLU(), MaxPool2D(2), Conv2D(8, 16, 3), ReLU(), MaxPool2D(2),
                Flatten(), Linear(16 * 5 * 5, 10),
            )  # fmt: skip
            batch = 64
        opt = SGD(model.parameters(), lr=0.05, momentum=0.9)

    def step(idx: np.ndarray) -> float:
        loss = loss_fn(model(af.Tensor(x[idx])), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step, len(x), batch


def cpu_ms_per_step(
    step: Callable[[np.ndarray], float], batches: list[np.ndarray], chunk: int = 10
) -> list[float]:
    """CPU milliseconds per step, one value per chunk of `chunk` steps."""
    out = []
    for k in range(0, len(batches) - chunk + 1, chunk):
        start = time.process_time()
        for idx in batches[k : k + chunk]:
            step(idx)
        out.append((time.process_time() - start) / chunk * 1e3)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("bench", choices=BENCHES)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    ap.add_argument("--no-profile", action="store_true", help="only the CPU time per step")
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=args.threads)
    step, n, batch = training_step(args.bench)
    rng = np.random.default_rng(0)
    batches = [rng.permutation(n)[:batch] for _ in range(args.steps)]
    for idx in batches[:3]:  # warm-up: first calls allocate and fill caches
        step(idx)
    per_step = cpu_ms_per_step(step, batches, chunk=min(10, args.steps))
    load = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(
        f"{args.bench}: batch {batch}, {args.threads} BLAS thread(s): CPU "
        f"{statistics.median(per_step):.3f} ms/step median, {min(per_step):.3f} min "
        f"({args.steps} steps; load average {load})"
    )
    if args.no_profile:
        return
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for idx in batches:
        step(idx)
    prof.disable()
    wall = time.perf_counter() - t0
    print(f"{args.steps} steps in {wall:.2f} s under the profiler")
    stats = pstats.Stats(prof).strip_dirs()
    print("\n--- by own time (tottime) ---")
    stats.sort_stats("tottime").print_stats(args.top)
    print("--- by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    sys.exit(main())
