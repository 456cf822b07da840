"""Profile the engine's training step of one benchmark with cProfile.

    uv run python bench/profile_step.py cnn [--steps 40] [--top 25]

Prints the functions with the most own time (tottime) and the most cumulative time, so the
ops that dominate a step are visible (numpy calls appear by name, e.g. `matmul`).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from _common import THREADS, load_mnist5k, set_threads


def _step_for(name: str) -> tuple[Callable[[np.ndarray], Any], int, int]:
    """The engine step of a benchmark, its dataset size and its batch size."""
    if name == "mlp":
        import mlp

        x, y = load_mnist5k()
        return mlp.EngineMLP(x, y, mlp.init_params()).step, len(x), mlp.BATCH
    if name == "cnn":
        import cnn

        x, y = load_mnist5k()
        step, _ = cnn.engine_step(x.reshape(-1, 1, 28, 28), y)
        return step, len(x), cnn.BATCH
    if name == "lstm":
        import lstm

        x, y = lstm.make_sines()
        step, _ = lstm.engine_step(x, y)
        return step, len(x), lstm.BATCH
    raise SystemExit(f"unknown benchmark {name!r}: use mlp, cnn or lstm")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("bench", choices=("mlp", "cnn", "lstm"))
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--threads", type=int, default=THREADS)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    step, n, batch = _step_for(args.bench)
    rng = np.random.default_rng(0)
    batches = [rng.permutation(n)[:batch] for _ in range(args.steps)]
    for idx in batches[:3]:  # warm-up outside the profile
        step(idx)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for idx in batches:
        step(idx)
    prof.disable()
    wall = time.perf_counter() - t0
    print(f"{args.bench}: {args.steps} steps of batch {batch} in {wall:.2f} s under the profiler")
    stats = pstats.Stats(prof).strip_dirs()
    print("\n--- by own time (tottime) ---")
    stats.sort_stats("tottime").print_stats(args.top)
    print("--- by cumulative time ---")
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    sys.exit(main())
