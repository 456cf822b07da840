"""LSTM training throughput: azuraforge_learner vs PyTorch.

LSTM(1 -> hidden 64) over 30 steps, last hidden state -> Linear 64 -> 1, mean squared error,
Adam, batch 64. The task: predict the next value of noisy sine waves of random frequency,
phase and amplitude (made here, seeded).

    uv run python bench/lstm.py [--rounds 5] [--batches 20]
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from _common import (
    THREADS,
    Result,
    compare_with_torch,
    make_step,
    throughput_cli,
    to_torch_params,
)

HIDDEN = 64
SEQ = 30
BATCH = 64
N_SEQUENCES = 2048
LR = 1e-3
SEED = 0
TARGET_RATIO = 0.5


def make_sines(
    n: int = N_SEQUENCES, seq: int = SEQ, seed: int = SEED
) -> tuple[np.ndarray, np.ndarray]:
    """x (n, seq, 1) and the value that follows each sequence, y (n, 1), float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(seq + 1, dtype=np.float64)
    freq = rng.uniform(0.1, 0.4, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    amp = rng.uniform(0.5, 1.5, (n, 1))
    wave = amp * np.sin(freq * t + phase) + rng.normal(0, 0.05, (n, seq + 1))
    wave = wave.astype(np.float32)
    return wave[:, :seq, None], wave[:, seq:]


def engine_step(x: np.ndarray, y: np.ndarray) -> tuple[Any, list[np.ndarray]]:
    import azuraforge_core as af
    from azuraforge_learner import LSTM, Adam, Linear, MSELoss, Sequential

    af.manual_seed(SEED)
    model = Sequential(LSTM(1, HIDDEN, return_sequences=False), Linear(HIDDEN, 1))
    loss_fn = MSELoss()
    opt = Adam(model.parameters(), lr=LR)
    init = [p.numpy().copy() for p in model.parameters()]

    return make_step(lambda idx: loss_fn(model(af.Tensor(x[idx])), y[idx]), opt), init


class _TorchLSTMRegressor:
    def __init__(self, torch: Any) -> None:
        self.lstm = torch.nn.LSTM(1, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 1)
        self.params = [*self.lstm.parameters(), *self.head.parameters()]

    def __call__(self, x: Any) -> Any:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


def torch_step(torch: Any, x: np.ndarray, y: np.ndarray, init: list[np.ndarray]) -> Any:
    model = _TorchLSTMRegressor(torch)
    # The engine keeps one bias per gate block, torch two (bias_ih + bias_hh): put it in
    # bias_ih and freeze bias_hh at zero, else Adam moves the sum twice as fast and the
    # losses (our correctness check) drift apart. Both order the gates i, f, g, o.
    w_ih, w_hh, bias, head_w, head_b = init
    to_torch_params(torch, [w_ih, w_hh, bias, np.zeros_like(bias), head_w, head_b], model.params)
    model.lstm.bias_hh_l0.requires_grad_(False)
    opt = torch.optim.Adam([p for p in model.params if p.requires_grad], lr=LR)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.functional.mse_loss

    def loss_of(idx: np.ndarray) -> Any:
        rows = torch.from_numpy(idx)
        return loss_fn(model(xt[rows]), yt[rows])

    return make_step(loss_of, opt)


def run(rounds: int = 5, batches: int | None = 20, threads: int = THREADS) -> list[Result]:
    print(f"== LSTM hidden {HIDDEN}, seq {SEQ}, 1 feature, batch {BATCH}, Adam, MSE ==")
    x, y = make_sines()
    return compare_with_torch(
        "lstm", x, y, engine_step, torch_step, batch=BATCH, seed=SEED,
        target_ratio=TARGET_RATIO, rounds=rounds, batches=batches, threads=threads,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    throughput_cli(__doc__, run, 20, "LSTM targets", argv)


if __name__ == "__main__":
    sys.exit(main())
