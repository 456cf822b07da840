"""Helpers of the single-process benchmarks (`mnist_cnn.py`): results, tables, threads.

The engine-against-PyTorch comparison does not use these: it runs every measurement in a
process of its own (`compare.py`, `child.py`, `workloads.py`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from workloads import mnist5k

THREADS = 2  # BLAS threads unless told otherwise


@dataclass
class Result:
    """One reported number; `target` is a human-readable goal, `ok` None when there is none."""

    bench: str
    metric: str
    value: float | None
    unit: str = ""
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def status(self) -> str:
        if self.ok is None:
            return "-" if self.value is not None else "SKIP"
        return "PASS" if self.ok else "FAIL"


def fmt(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], title: str = "") -> None:
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    if title:
        print(f"\n{title}")
    line = "  ".join("-" * w for w in widths)
    print(line)
    for k, row in enumerate(cells):
        print(
            "  ".join(
                c.rjust(w) if k and i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if k == 0:
            print(line)
    print(line)


def print_results(results: Sequence[Result], title: str = "Targets") -> None:
    rows = [
        (r.bench, r.metric, f"{fmt(r.value)} {r.unit}".strip(), r.target or "-", r.status, r.note)
        for r in results
    ]
    print_table(("bench", "metric", "value", "target", "status", "note"), rows, title)


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """X float32 (5000, 784) scaled to [0, 1], y int64 (5000,) with 500 digits per class."""
    return mnist5k()


def stratified_split(
    y: np.ndarray, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices with each class split in the same proportion (seeded)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = round(len(idx) * test_fraction)
        test.append(idx[:k])
        train.append(idx[k:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def set_threads(n: int = THREADS) -> None:
    """Pin numpy's BLAS to n threads for the rest of the process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)


def print_environment() -> None:
    from threadpoolctl import threadpool_info

    blas = [
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')}): "
        f"{i.get('num_threads')} threads"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}, "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(f"BLAS: {'; '.join(blas) or 'none found'}")
