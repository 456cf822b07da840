"""One measurement in a fresh interpreter: one framework, one model, one thread count.

Started by `compare.py`, never by hand in normal use. The parent sets OMP_NUM_THREADS,
OPENBLAS_NUM_THREADS and MKL_NUM_THREADS before this interpreter starts (thread pools are
sized when their library loads); a torch child also calls `torch.set_num_threads`. An
engine child imports azuraforge and never torch; a torch child runs with `.torch-venv`'s
python, where azuraforge is not even installed. The child prints ONE line,
`RESULT {json}`, with its numbers and the evidence: its pid, the framework modules it
imported, and threadpoolctl's view of its thread pools (taken after the timing).

    python bench/child.py --framework engine --variant learner --model cnn --data cnn.npz
    python bench/child.py --framework torch --model mlp --data mlp.npz --first-step

Variants: `learner` trains as a user does (Sequential, Linear/Conv2D/LSTM, SGD/Adam, the
losses); `raw` uses azuraforge_core alone (Tensor parameters, af.linear/conv2d/..., the
optimizer written here in numpy). `torch` is plain torch.nn / torch.optim.
"""

from __future__ import annotations

import time

T_START = time.time()  # before anything else is imported

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from workloads import (  # noqa: E402
    ADAM_LR,
    LSTM_HIDDEN,
    LSTM_SEQ,
    MOMENTUM,
    SGD_LR,
    WORKLOADS,
    read_npz,
)

FRAMEWORK_MODULES = {"torch", "azuraforge_core", "azuraforge_learner"}
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
Step = Callable[[np.ndarray], Any]  # batch row indices -> the loss (a tensor)


# ----------------------------------------------------------------------- engine
def _engine_layout(arr: np.ndarray) -> np.ndarray:
    """torch's 2-D (out, in) weight -> the engine's (in, out); other arrays unchanged."""
    return np.ascontiguousarray(arr.T) if arr.ndim == 2 else arr


def engine_learner(model: str, x: np.ndarray, y: np.ndarray, params: list[np.ndarray]) -> Step:
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

    net: Any
    if model == "mlp":
        net = Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), Linear(128, 10))
    elif model == "cnn":
        net = Sequential(
            Conv2D(1, 8, 3), ReLU(), MaxPool2D(2), Conv2D(8, 16, 3), ReLU(), MaxPool2D(2),
            Flatten(), Linear(16 * 5 * 5, 10),
        )  # fmt: skip
    else:
        net = Sequential(LSTM(1, LSTM_HIDDEN), Linear(LSTM_HIDDEN, 1))
    mine = list(net.parameters())
    if len(mine) != len(params):
        raise SystemExit(f"{model}: {len(mine)} engine parameters for {len(params)} arrays")
    for p, arr in zip(mine, params, strict=True):
        np.copyto(p.data, _engine_layout(arr))
    if model == "lstm":
        loss_fn: Any = MSELoss()
        opt: Any = Adam(net.parameters(), lr=ADAM_LR)
    else:
        loss_fn = CrossEntropyLoss()
        opt = SGD(net.parameters(), lr=SGD_LR, momentum=MOMENTUM)

    def step(idx: np.ndarray) -> Any:
        loss = loss_fn(net(af.Tensor(x[idx])), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


def engine_raw(model: str, x: np.ndarray, y: np.ndarray, params: list[np.ndarray]) -> Step:
    """azuraforge_core alone: raw Tensor parameters, core ops, the optimizer in numpy."""
    import azuraforge_core as af

    ws = [af.Tensor(_engine_layout(p).copy(), requires_grad=True) for p in params]

    def forward(xb: Any) -> Any:
        if model == "mlp":
            w1, b1, w2, b2, w3, b3 = ws
            h = af.linear(xb, w1, b1, relu=True)
            return af.linear(af.linear(h, w2, b2, relu=True), w3, b3)
        if model == "cnn":
            c1, cb1, c2, cb2, w, b = ws
            h = af.conv2d(xb, c1, cb1, relu=True, max_pool=2)  # conv, ReLU, 2x2 pool: one op
            h = af.conv2d(h, c2, cb2, relu=True, max_pool=2)
            return af.linear(h.reshape(h.shape[0], -1), w, b)
        # An LSTM from elementary ops (the core has no LSTM op; the learner's is fused).
        w_ih, w_hh, bias, hw, hb = ws
        hid = LSTM_HIDDEN
        h = c = af.Tensor(np.zeros((xb.shape[0], hid), dtype=np.float32))
        for t in range(LSTM_SEQ):
            gates = af.matmul(xb[:, t], w_ih) + af.matmul(h, w_hh) + bias
            i, f = gates[:, :hid].sigmoid(), gates[:, hid : 2 * hid].sigmoid()
            g, o = gates[:, 2 * hid : 3 * hid].tanh(), gates[:, 3 * hid :].sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
        return af.linear(h, hw, hb)

    velocity = [np.zeros_like(w.data) for w in ws]
    second = [np.zeros_like(w.data) for w in ws]
    scratch = [np.empty_like(w.data) for w in ws]
    t_adam = [0]

    def update() -> None:
        if model != "lstm":  # SGD with momentum, as torch: v = m v + g; w -= lr v
            for w, v, s in zip(ws, velocity, scratch, strict=True):
                v *= MOMENTUM
                v += w.grad.data
                np.multiply(v, SGD_LR, out=s)
                w.data -= s
            return
        t_adam[0] += 1  # Adam, as torch: w -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps)
        b1, b2, t = 0.9, 0.999, t_adam[0]
        for w, m, v, s in zip(ws, velocity, second, scratch, strict=True):
            g = w.grad.data
            m *= b1
            np.multiply(g, 1 - b1, out=s)
            m += s
            v *= b2
            np.multiply(g, g, out=s)
            s *= 1 - b2
            v += s
            np.sqrt(v, out=s)
            s *= 1 / np.sqrt(1 - b2**t)
            s += 1e-8
            np.divide(m, s, out=s)
            s *= ADAM_LR / (1 - b1**t)
            w.data -= s

    def step(idx: np.ndarray) -> Any:
        out = forward(af.Tensor(x[idx]))
        loss = af.mse_loss(out, y[idx]) if model == "lstm" else af.cross_entropy(out, y[idx])
        for w in ws:
            w.grad = None
        loss.backward()
        update()
        return loss

    return step


# ------------------------------------------------------------------------ torch
def torch_step(model: str, x: np.ndarray, y: np.ndarray, params: list[np.ndarray]) -> Step:
    import torch

    nn = torch.nn
    head: Any = None
    if model == "mlp":
        net: Any = nn.Sequential(
            nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
        )
        values = params
    elif model == "cnn":
        net = nn.Sequential(
            nn.Conv2d(1, 8, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(8, 16, 3), nn.ReLU(),
            nn.MaxPool2d(2), nn.Flatten(), nn.Linear(16 * 5 * 5, 10),
        )  # fmt: skip
        values = params
    else:
        net = nn.LSTM(1, LSTM_HIDDEN, batch_first=True)
        head = nn.Linear(LSTM_HIDDEN, 1)
        # The engine has one bias per gate block, torch two (bias_ih + bias_hh): the bias goes
        # into bias_ih and bias_hh stays frozen at zero, else Adam would move the sum twice as
        # fast and the losses (our correctness check) would drift apart.
        w_ih, w_hh, bias, hw, hb = params
        values = [w_ih, w_hh, bias, np.zeros_like(bias), hw, hb]
    mine = list(net.parameters()) + ([] if head is None else list(head.parameters()))
    with torch.no_grad():
        for p, arr in zip(mine, values, strict=True):
            p.copy_(torch.from_numpy(arr))
    if head is not None:
        net.bias_hh_l0.requires_grad_(False)
    trainable = [p for p in mine if p.requires_grad]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    F = torch.nn.functional
    if model == "lstm":
        opt: Any = torch.optim.Adam(trainable, lr=ADAM_LR)
    else:
        opt = torch.optim.SGD(trainable, lr=SGD_LR, momentum=MOMENTUM)

    def step(idx: np.ndarray) -> Any:
        rows = torch.from_numpy(idx)
        if head is None:
            loss = F.cross_entropy(net(xt[rows]), yt[rows])
        else:
            out, _ = net(xt[rows])
            loss = F.mse_loss(head(out[:, -1]), yt[rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss

    return step


# ----------------------------------------------------------------------- the run
def _threadpools() -> list[dict[str, Any]]:
    from threadpoolctl import threadpool_info

    keep = ("user_api", "internal_api", "num_threads", "version", "threading_layer", "architecture")
    out = []
    for info in threadpool_info():
        entry = {k: info[k] for k in keep if k in info}
        entry["library"] = os.path.basename(str(info.get("filepath", "")))
        out.append(entry)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--framework", choices=("engine", "torch"), required=True)
    ap.add_argument("--variant", choices=("learner", "raw", "nn"), default="learner")
    ap.add_argument("--model", choices=sorted(WORKLOADS), required=True)
    ap.add_argument("--data", required=True, help="the .npz written by workloads.write_npz")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (after the warm-up)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--threads", type=int, required=True, help="also set through the env")
    ap.add_argument(
        "--first-step", action="store_true", help="stop after one step; report time stamps"
    )
    args = ap.parse_args(argv)
    wl = WORKLOADS[args.model]
    steps = wl.steps if args.steps is None else args.steps
    warmup = wl.warmup if args.warmup is None else args.warmup

    torch_threads = None
    if args.framework == "torch":
        import torch

        torch.set_num_threads(args.threads)
        torch_threads = torch.get_num_threads()
        build: Callable[..., Step] = torch_step
        version = torch.__version__
    else:
        import azuraforge_core

        if args.variant == "learner":  # part of what a user's start-up costs
            import azuraforge_learner  # noqa: F401
        build = engine_learner if args.variant == "learner" else engine_raw
        version = azuraforge_core.__version__
    t_imports = time.time()
    x, y, batches, params = read_npz(args.data)
    t_data = time.time()
    step = build(args.model, x, y, params)
    loss_first = float(step(batches[0]).item())
    t_step = time.time()

    result: dict[str, Any] = {
        "framework": args.framework,
        "variant": args.variant,
        "model": args.model,
        "threads": args.threads,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "python": sys.executable,
        "version": version,
        "numpy": np.__version__,
        "env": {v: os.environ.get(v) for v in THREAD_VARS},
        "torch_threads": torch_threads,
        "stamps": {"start": T_START, "imports": t_imports, "data": t_data, "step": t_step},
        "loss_first": loss_first,
    }
    if not args.first_step:
        for k in range(1, warmup):
            step(batches[k])
        timed = batches[warmup : warmup + steps]
        if len(timed) < steps:
            raise SystemExit(f"{args.data} holds {len(batches)} batches, need {warmup + steps}")
        c0, t0 = time.process_time(), time.perf_counter()
        loss = None
        for idx in timed:
            loss = step(idx)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        result.update(
            steps=steps,
            warmup=warmup,
            samples_per_s=steps * wl.batch / wall,
            wall_ms_per_step=wall / steps * 1e3,
            cpu_ms_per_step=cpu / steps * 1e3,
            loss_last=float(loss.item()) if loss is not None else None,
        )
    # Evidence, gathered after the timing: what this process imported and its thread pools.
    result["imported"] = sorted({k.split(".")[0] for k in sys.modules} & FRAMEWORK_MODULES)
    result["threadpools"] = _threadpools()
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
