"""Run every benchmark and print one summary table.

    uv run python bench/run_all.py            # all of them (a few minutes on 2 cores)
    uv run python bench/run_all.py --quick    # fewer rounds, 3 MNIST epochs (accuracy target not meaningful)
    uv run python bench/run_all.py --only mlp cnn

Numbers are printed, never asserted: a FAIL here is a performance finding, not a broken
build. The exit status is 1 only when a benchmark crashed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable

import cnn
import lstm
import mlp
import mnist_cnn
from _common import THREADS, Result, print_results


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer rounds and epochs")
    ap.add_argument(
        "--only", nargs="+", choices=("mlp", "cnn", "lstm", "mnist_cnn"), help="a subset to run"
    )
    ap.add_argument("--threads", type=int, default=THREADS, help="BLAS/torch threads (default 2)")
    args = ap.parse_args(argv)
    q, th = args.quick, args.threads
    benches: dict[str, Callable[[], list[Result]]] = {
        "mlp": lambda: mlp.run(rounds=3 if q else 7, first_step_repeats=2 if q else 5, threads=th),
        "cnn": lambda: cnn.run(rounds=3 if q else 5, batches=15 if q else 40, threads=th),
        "lstm": lambda: lstm.run(rounds=3 if q else 5, batches=8 if q else 20, threads=th),
        "mnist_cnn": lambda: mnist_cnn.run(epochs=3 if q else mnist_cnn.EPOCHS, threads=th),
    }
    results: list[Result] = []
    crashed = False
    load_before = _load()
    t0 = time.perf_counter()
    for name, fn in benches.items():
        if args.only and name not in args.only:
            continue
        print(f"\n########## {name} ##########", flush=True)
        try:
            results += fn()
        except Exception as exc:  # one broken benchmark must not hide the others' numbers
            traceback.print_exc()
            results.append(Result(name, "crashed", None, note=f"{type(exc).__name__}: {exc}"[:80]))
            crashed = True
    print(f"\n########## summary ({time.perf_counter() - t0:.0f} s) ##########")
    print(
        f"load average (1, 5, 15 min): before {load_before}, after {_load()}; {os.cpu_count()} cpus"
    )
    print(f"threads per engine: {th}")
    if q:
        print("--quick: fewer rounds and 3 MNIST epochs; the accuracy target needs the full run")
    print_results(results, "All benchmarks")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
