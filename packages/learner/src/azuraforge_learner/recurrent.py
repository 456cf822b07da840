"""LSTM and GRU layers, each layer of the stack computed by ONE fused autograd op.

Why fused: built from elementary tensor ops, one LSTM step is ~20 graph nodes, so a
30-step sequence is ~600 nodes of Python overhead per layer. The fused ops below loop
over time in raw array code instead:

* forward: each step is one matmul for all gates together plus a few in-place
  elementwise ops. The GRU projects the inputs of all timesteps in one matmul up front;
  the LSTM stacks [h_t; x_t; 1] so its per-step matmul covers the input and bias too;
* backward (BPTT): a reverse loop that propagates dh/dc and writes the per-step gate
  gradients. The GRU's weight gradients are then a few large matmuls over all steps; the
  LSTM's forward has already turned its gates into backward's factors, and on the CPU
  its loop also sums the weight and input gradients step by step (see LSTMCellSequence);
* the per-step products run as row blocks sized for OpenBLAS's small-matrix kernels or as
  one threaded call, whichever a short timing of the first passes finds faster on this
  machine (`_StepMatmul`, `_ProductPlan`; both give the same numbers);
* the big per-sequence arrays are recycled between calls (`_BufferPool`): fresh
  multi-megabyte arrays page-fault on first touch, which for a small LSTM cost more than
  the arithmetic (measured: about 3000 page faults and +7 ms per batch without it).

Arrays come from `get_array_module`, so the same code runs on numpy and CuPy. Inputs are
batch-first: (batch, seq, features).

Gate layout (columns of the weight matrices): LSTM i, f, g, o; GRU r, z, n, as in PyTorch.
Weights are stored (in, gates * hidden) so the projection is `x @ W`.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import itertools
import math
import threading
import time
from typing import Any

import numpy as np

import azuraforge_core as af
from azuraforge_core import Function, ShapeError, Tensor
from azuraforge_core.backend import get_array_module

from . import init
from .layers import as_input
from .module import Module, Parameter

# ---------------------------------------------------------- aligned numpy arrays
_ALIGN = 64  # bytes: one cache line, one AVX-512 register


def _empty(xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """`xp.empty`, on numpy aligned to a cache line. numpy only guarantees 16 bytes (its
    buffers here started 16, 32 or 48 bytes into a line), so every row of a (64, 64)
    float32 block straddled two lines and AVX-512 loads were split (measured: a training
    step of the benchmark LSTM 4-6% shorter with aligned buffers, alternated fresh
    processes). The array is a view of a byte buffer; `_is_aligned_whole` recognises it."""
    if xp is not np:
        return xp.empty(shape, dtype=dtype)
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + _ALIGN, dtype=np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def _is_aligned_whole(a: Any) -> bool:
    """True for an array made by `_empty` (not a view into one)."""
    raw = a.base
    return (
        type(raw) is np.ndarray
        and raw.base is None
        and raw.dtype == np.uint8
        and raw.nbytes - a.nbytes == _ALIGN
        and a.flags.c_contiguous
    )


# ------------------------------------------------------------------ buffer reuse
class _BufferPool(threading.local):
    """Recycles the big per-sequence arrays of the fused ops (one pool per thread).

    A fresh multi-megabyte numpy array is served by fresh pages from the OS, and touching
    them page-faults; for a small LSTM that costs more than the arithmetic. Arrays go back
    here when their op is done with them (after backward, or when the graph is dropped)
    and the next call of the same shape reuses them. CuPy arrays are not pooled (CuPy has
    its own memory pool).
    """

    max_per_shape = 6
    max_shapes = 48
    max_bytes = 256 << 20  # beyond this, arrays are simply left to the allocator

    def __init__(self) -> None:
        self.free: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
        self.nbytes = 0

    def take(self, xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        if xp is not np:
            return xp.empty(shape, dtype=dtype)
        stack = self.free.get((shape, np.dtype(dtype).str))
        if stack:
            arr = stack.pop()
            self.nbytes -= arr.nbytes
            return arr
        return _empty(np, shape, dtype)

    def give(self, arrays: list[Any]) -> None:
        for a in arrays:
            if type(a) is not np.ndarray or not _is_aligned_whole(a):
                continue
            stack = self.free.setdefault((a.shape, a.dtype.str), [])
            if len(stack) < self.max_per_shape and self.nbytes + a.nbytes <= self.max_bytes:
                stack.append(a)
                self.nbytes += a.nbytes
        while len(self.free) > self.max_shapes:  # forget the oldest shapes first
            dropped = self.free.pop(next(iter(self.free)))
            self.nbytes -= sum(a.nbytes for a in dropped)


_POOL = _BufferPool()


class _PooledFunction(Function):
    """A Function whose saved arrays come from `_POOL` and go back to it when released."""

    def _buffer(self, xp: Any, shape: tuple[int, ...], dtype: Any) -> Any:
        arr = _POOL.take(xp, shape, dtype)
        self.__dict__.setdefault("_owned", []).append(arr)
        return arr

    def _give_back(self) -> None:
        owned = self.__dict__.pop("_owned", None)
        if owned:
            _POOL.give(owned)

    def release(self) -> None:
        self._give_back()
        super().release()

    def __del__(self) -> None:  # graph dropped without backward (e.g. inference)
        with contextlib.suppress(Exception):  # at interpreter shutdown there is no pool left
            self._give_back()


class _Scratch:
    """Temporaries of one forward or backward pass, all returned to the pool at the end
    (a fresh aligned array costs several microseconds; a pooled one, under one)."""

    def __init__(self, xp: Any) -> None:
        self.xp = xp
        self.arrays: list[Any] = []

    def __call__(self, shape: tuple[int, ...], dtype: Any) -> Any:
        arr = _POOL.take(self.xp, shape, dtype)
        self.arrays.append(arr)
        return arr

    def zeros(self, shape: tuple[int, ...], dtype: Any) -> Any:
        arr = self(shape, dtype)
        arr.fill(0)
        return arr

    def copy(self, a: Any, dtype: Any = None) -> Any:
        """A C-ordered copy of `a` (cast to `dtype`)."""
        arr = self(a.shape, a.dtype if dtype is None else dtype)
        arr[...] = a
        return arr

    def done(self) -> None:
        _POOL.give(self.arrays)
        self.arrays = []


# ---------------------------------------------------------------- layout helpers
def _time_feature_batch(x: Any, dtype: Any, scratch: _Scratch) -> Any:
    """(B, T, F) -> contiguous (T, F, B)."""
    return scratch.copy(x.transpose(1, 2, 0), dtype)


def _rows_by_steps(xp: Any, a: Any, out: Any) -> Any:
    """(T, R, B) -> (R, T*B) in `out`: all steps side by side, for one big matmul."""
    steps, rows, bsz = a.shape
    xp.copyto(out.reshape(rows, steps, bsz), a.transpose(1, 0, 2))
    return out


def _input_projection(xp: Any, x: Any, w_t: Any, out: Any, scratch: _Scratch) -> Any:
    """out (T, G, B) = W^T x_t for every step at once; returns x as (I, T*B) for backward."""
    bsz, steps, n_in = x.shape
    dt = out.dtype
    xr = xp.ascontiguousarray(x.transpose(2, 1, 0)).astype(dt, copy=False)  # (I, T, B)
    if n_in == 1:  # an outer product: one broadcast multiply, no matmul or transpose
        xp.multiply(w_t[None, :, :], xr.reshape(steps, 1, bsz), out=out)
    else:
        proj = scratch((w_t.shape[0], steps * bsz), dt)
        xp.matmul(w_t, xr.reshape(n_in, steps * bsz), out=proj)
        xp.copyto(out, proj.reshape(-1, steps, bsz).transpose(1, 0, 2))
    return xr.reshape(n_in, steps * bsz)


def _sequence_output(xp: Any, hs: Any, return_sequences: bool) -> Any:
    """hs is (T+1, H, B) with the initial state first -> (B, T, H) or the last step (B, H).
    Always a fresh array: hs goes back to the pool."""
    if return_sequences:
        return xp.ascontiguousarray(hs[1:].transpose(2, 0, 1))
    return xp.array(hs[-1].T, order="C", copy=True)


def _incoming_grad(gy: Any, hid: int, dt: Any, seq: bool, scratch: _Scratch) -> tuple[Any, Any]:
    """The output gradient as (T, H, B) for sequences (dh starts at zero), else dh (H, B)."""
    if seq:
        return _time_feature_batch(gy, dt, scratch), scratch.zeros((hid, gy.shape[0]), dt)
    return None, scratch.copy(gy.T, dt)  # updated in place below


def _input_grad(xp: Any, w: Any, dg: Any, steps: int, bsz: int, dtype: Any) -> Any:
    """dL/dx (B, T, I) from the stacked pre-activation grads dg (G, T*B)."""
    gx = (w @ dg).reshape(-1, steps, bsz).transpose(2, 1, 0)
    return xp.ascontiguousarray(gx).astype(dtype, copy=False)


# The per-step products of a small LSTM (256x66 @ 66x64 forward, 64x256 @ 256x64 backward)
# sit just above two lines in OpenBLAS. Up to M*N*K = 1e6 multiply-adds it uses its
# "small matrix" kernels where it has them (its AVX-512 kernels: SkylakeX, Cooperlake,
# SapphireRapids), which skip packing the operands: measured on an Intel Xeon, one
# 256x66x64 call took 19.5 us, two 128-row halves 7.8 us each. Above 2**18 it splits a
# product across its threads. Which of the two is faster inside the recurrence depends on
# the machine, not on the product alone (a threaded call leaves OpenBLAS's other threads
# spinning for ~0.1 s, waiting for the next one, and cache lines move between the cores
# every step):
#   * Intel Xeon (model 207, 2 vCPUs): row blocks on the calling thread won, 15.8k against
#     13.8k samples/s (benchmark LSTM, 2 BLAS threads, 10 alternated rounds), and a busy
#     thread on the other vCPU slowed the LSTM loop by 0-35%, as where vCPUs share a core;
#   * AMD EPYC (family 26, 2 vCPUs, independent cores): one threaded call won, 41-45k
#     against 36-38k samples/s (4 alternated rounds), with the same OpenBLAS kernels.
# So with 2+ BLAS threads and small-matrix kernels, `_ProductPlan` times the first passes
# of each LSTM shape both ways and keeps the faster. The two ways give bit-identical
# numbers (OpenBLAS splits rows or columns among its threads, never the inner sum, and so
# do the blocks; a test checks it), so a run's numbers never depend on which won. With one
# BLAS thread the blocks always win; without small-matrix kernels (another CPU, or
# OPENBLAS_CORETYPE forcing an older kernel) blocks only add calls: one call, always.
_SMALL_GEMM = 1_000_000
_THIN_ROWS = 64  # row blocks thinner than this: split the inner axis instead
_MAX_BLOCKS = 8
_SMALL_KERNEL_CORES = frozenset({"skylakex", "cooperlake", "sapphirerapids"})


def _row_blocks(rows: int, inner: int, cols: int) -> list[slice]:
    """Equal row blocks (whole groups of 8 rows) of at most `_SMALL_GEMM` multiply-adds
    each; one block when the product is that small already or cannot be split so."""
    if rows * inner * cols <= _SMALL_GEMM:
        return [slice(0, rows)]
    for n in range(2, _MAX_BLOCKS + 1):
        step = -(-rows // (8 * n)) * 8
        if step * inner * cols <= _SMALL_GEMM:
            return [slice(r, r + step) for r in range(0, rows, step)]
    return [slice(0, rows)]


@functools.cache
def _openblas() -> Any:
    """threadpoolctl's controller of numpy's OpenBLAS, or None (another BLAS). Looked up
    once: threadpoolctl scans every loaded library (~40 ms)."""
    from threadpoolctl import ThreadpoolController

    found = [c for c in ThreadpoolController().lib_controllers if c.internal_api == "openblas"]
    found.sort(key=lambda c: "numpy" not in c.filepath)  # numpy's own first, if several
    return found[0] if found else None


def _small_kernels() -> bool:
    """Whether numpy's BLAS has OpenBLAS's small-matrix kernels (see above)."""
    blas = _openblas()
    return blas is not None and str(blas.architecture).lower() in _SMALL_KERNEL_CORES


def _blas_threads() -> int:
    blas = _openblas()
    return 1 if blas is None else int(blas.num_threads)  # read now: threadpoolctl may limit it


def _default_split() -> str:
    return "auto" if _small_kernels() else "none"


_FACTORS_IN_FORWARD = True  # the LSTM's CPU forward (see there); a test runs the other way too
# the LSTM's and GRU's gates through exp (True) or tanh (False), see the LSTM's forward:
# None decides by the CPU (`_gates_by_exp`); tests set it
_GATES_BY_EXP: bool | None = None


@functools.cache
def _numpy_has_avx512_tanh() -> bool:
    """Whether numpy runs its AVX-512 float32 tanh on this CPU (its AVX512_SKX loops: the
    coefficient tables held in registers). numpy's own runtime CPU dispatch table, as
    `np.show_runtime()` reads it (numpy 2: `numpy._core`, 1.26: `numpy.core`); False where it
    cannot be read. It honours NPY_DISABLE_CPU_FEATURES: with AVX-512 switched off there
    (numpy 2.4: "X86_V4"), numpy's AVX2 tanh took 33 us per 256x64 block on the Xeon
    where its exp took 16."""
    for module in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        with contextlib.suppress(ImportError, AttributeError):
            features = importlib.import_module(module).__cpu_features__
            return bool(features.get("AVX512_SKX"))
    return False


def _gates_by_exp(xp: Any) -> bool:
    """The gates' one transcendental pass: exp or tanh (see the LSTM's forward). Decided
    by the CPU, never by timing (the two round differently)."""
    if _GATES_BY_EXP is not None:
        return _GATES_BY_EXP
    return xp is np and not _numpy_has_avx512_tanh()


# the LSTM's CPU backward (see there): None decides by the BLAS thread count; a test sets it
_GRADS_IN_LOOP: bool | None = None


class _StepMatmul:
    """`w @ x` into `out` for a fixed w, on numpy split as `split` says (other arrays: one
    call always):

    * "none": one BLAS call (which OpenBLAS may thread);
    * "rows": row blocks of at most `_SMALL_GEMM` multiply-adds, on the calling thread;
      bit-identical to one call;
    * "auto": row blocks, but when they would be thin (a short, wide w: the LSTM's
      backward 64x256 @ 256x64) the inner axis is split instead: two 64x128 @ 128x64
      products and an add beat both one call and 32-row blocks on the Xeon (-0.06 ms a
      training step). A sum in another order: not bit-identical to one call.
    None: "auto" where OpenBLAS has small-matrix kernels, else "none"."""

    def __init__(
        self,
        xp: Any,
        w: Any,
        n_cols: int,
        scratch: _Scratch | None = None,
        split: str | None = None,
    ) -> None:
        scratch = scratch or _Scratch(xp)  # the caller's: its copies go back to the pool with it
        rows, inner = w.shape
        self.xp, self.w = xp, w
        self.blocks: list[tuple[slice, Any]] = []
        self.inner_parts: list[tuple[slice, Any]] = []
        blocks = _row_blocks(rows, inner, n_cols)
        if xp is not np or len(blocks) == 1:
            return
        split = split or _default_split()
        if split == "none":
            return
        if split == "auto" and blocks[0].stop < _THIN_ROWS:
            parts = _row_blocks(inner, rows, n_cols)  # the same sizes, along the inner axis
            if len(parts) > 1 and parts[0].stop >= _THIN_ROWS:
                self.inner_parts = [(k, scratch.copy(w[:, k])) for k in parts]
                self.spare = scratch((rows, n_cols), w.dtype)
                return
        self.blocks = [(r, scratch.copy(w[r])) for r in blocks]

    def __call__(self, x: Any, out: Any) -> Any:
        if self.blocks:
            for rows, w in self.blocks:
                np.matmul(w, x, out=out[rows])
        elif self.inner_parts:
            (first, w), *rest = self.inner_parts
            np.matmul(w, x[first], out=out)
            for part, w in rest:
                out += np.matmul(w, x[part], out=self.spare)
        else:
            self.xp.matmul(self.w, x, out=out)
        return out


class _ProductPlan:
    """How one LSTM shape runs its per-step products with 2+ BLAS threads: "rows" (row
    blocks on the calling thread) or "none" (one call each, threaded by OpenBLAS), found
    by timing (see above). The first `passes` forward passes of the shape run "rows",
    the next `passes` "none"; each pass's forward and backward loops are timed, and from
    then on the way with the lower sum of the fastest forward and fastest backward is
    kept, for the life of the process. The first pass of each way is not counted (first
    touches of fresh buffers, OpenBLAS waking its threads). "rows" goes first so that its
    passes are not slowed by OpenBLAS threads still spinning after threaded calls. One
    plan per (shape, batch, dtype, thread count, training or not): `_PLANS`."""

    passes = 4

    def __init__(self) -> None:
        self.started = 0
        self.times: dict[str, tuple[list[float], list[float]]] = {
            "rows": ([], []),
            "none": ([], []),
        }
        self.choice: str | None = None

    def next_way(self) -> str:
        if self.choice is None:
            n = self.started
            self.started += 1
            if n < 2 * self.passes:
                return "rows" if n < self.passes else "none"
            self.choice = self._faster()
        return self.choice

    def record(self, way: str, phase: int, seconds: float) -> None:
        """phase 0: a forward loop, 1: a backward loop."""
        if self.choice is None:
            self.times[way][phase].append(seconds)

    def _faster(self) -> str:
        counted = {way: [t[1:] for t in times] for way, times in self.times.items()}
        phases = [p for p in (0, 1) if all(counted[way][p] for way in counted)]
        if not phases:  # too few passes were timed (e.g. interleaved shapes): keep blocks
            return "rows"
        cost = {way: sum(min(counted[way][p]) for p in phases) for way in counted}
        return "rows" if cost["rows"] <= cost["none"] else "none"


_PLANS: dict[tuple[Any, ...], _ProductPlan] = {}


def _lstm_split(
    xp: Any, hid: int, rows: int, bsz: int, dtype: Any, training: bool = True
) -> tuple[str, Any]:
    """How an LSTM's per-step products split now, and the plan timing them (or None).
    Training and inference passes have plans of their own (a training forward also
    computes backward's factors, so their times do not compare)."""
    big = max(4 * hid * rows, hid * 4 * hid) * bsz > _SMALL_GEMM
    if xp is not np or not big or not _small_kernels():
        return "none", None
    threads = _blas_threads()
    if threads <= 1:
        return "auto", None
    key = (hid, rows, bsz, np.dtype(dtype).str, threads, training)
    plan = _PLANS.get(key) or _PLANS.setdefault(key, _ProductPlan())
    return plan.next_way(), plan


# Layout inside the fused ops: (time, features, batch), the transpose of the usual
# per-step layout. Each step's gates are one contiguous (gates*H, B) block computed as
# W^T @ h^T, every gate is a run of H rows, and all elementwise work touches contiguous
# memory. After the loop, weight gradients stack all steps side by side into one
# (G, T*B) matrix (the GRU, and the LSTM on a GPU).


# Inside LSTMCellSequence the gates are ordered g, i, f, o (the parameters: i, f, g, o): the
# three sigmoid gates are then one block of rows (H:4H), and so are the three whose gradient
# comes from dc (0:3H). Slice copies, not a fancy-index gather (several times slower).
def _to_internal_gates(src: Any, dst: Any) -> Any:
    hid = src.shape[-1] // 4
    dst[..., :hid] = src[..., 2 * hid : 3 * hid]
    dst[..., hid : 3 * hid] = src[..., : 2 * hid]
    dst[..., 3 * hid :] = src[..., 3 * hid :]
    return dst


def _from_internal_gates(src: Any, dst: Any) -> Any:
    hid = src.shape[-1] // 4
    dst[..., 2 * hid : 3 * hid] = src[..., :hid]
    dst[..., : 2 * hid] = src[..., hid : 3 * hid]
    dst[..., 3 * hid :] = src[..., 3 * hid :]
    return dst


class LSTMCellSequence(_PooledFunction):
    """One LSTM layer over a whole sequence.

    Inputs: x (B, T, I), w_ih (I, 4H), w_hh (H, 4H), b (4H,), h0 (B, H), c0 (B, H).
    Output: (B, T, H) when `return_sequences`, else the last hidden state (B, H). With
    `with_cell`, the final cell state follows as one more step, so that it is part of the
    graph: (B, T+1, H), or (B, 2, H) holding [h_T, c_T].
    After forward, `h_n` and `c_n` hold copies of the final states (B, H), no gradient.

    Each step is ONE matrix product [W_hh; W_ih; b]^T @ [h_t; x_t; 1] straight into that
    step's gate block: the inputs and a row of ones sit under h_t in the per-step state
    array, so there is no separate input projection, bias pass or add per step, and in
    backward one product over all steps gives the gradients of W_hh, W_ih and b together.
    """

    def __init__(self, return_sequences: bool, with_cell: bool = False) -> None:
        self.return_sequences = return_sequences
        self.with_cell = with_cell

    def forward(self, x: Any, w_ih: Any, w_hh: Any, b: Any, h0: Any, c0: Any) -> Any:
        xp = get_array_module(x)
        bsz, steps, n_in = x.shape
        hid = w_hh.shape[0]
        dt = w_hh.dtype
        if steps < 1:
            raise ShapeError(
                f"LSTM: the sequence must have at least one step, got shape {tuple(x.shape)}"
            )
        rows = hid + n_in + 1
        scratch = _Scratch(xp)
        w_all = self._buffer(xp, (rows, 4 * hid), dt)  # rows of [W_hh; W_ih; b], gates g, i, f, o
        _to_internal_gates(w_hh, w_all[:hid])
        _to_internal_gates(w_ih, w_all[hid:-1])
        _to_internal_gates(b, w_all[-1])
        # ONE transcendental pass per step serves all four gates, its scale folded into the
        # weights. Either tanh: sigmoid(v) = 0.5 tanh(0.5 v) + 0.5, rows pre-scaled by 0.5
        # (i, f, o) and 1 (g); or exp: sigmoid(v) = 1 / (1 + exp(-v)) and g = tanh(v) =
        # 2 sigmoid(2v) - 1, pre-scaled by -1 (i, f, o) and -2 (g), two more cheap passes.
        # exp where numpy has no AVX-512 tanh: its AVX2 float32 tanh gathers from tables,
        # 2-3x its exp on AMD EPYC (Zen 3: 44 us against 21 us per 256x64 block; training
        # step 5.95 against 6.60 ms, median of alternated 10-step chunks, 1 thread). With
        # AVX-512 its tanh is the cheaper pass (Xeon: 5.3 us against exp's 7.4 us + 6.3 us
        # of extra passes; step 3.74 against 4.08 ms, the same way). tanh on a GPU (fewer
        # kernel launches). bench/README has the runs.
        by_exp = _gates_by_exp(xp)
        scale = xp.full((4 * hid, 1), -1.0 if by_exp else 0.5, dtype=dt)
        scale[:hid] = -2.0 if by_exp else 1.0
        w_t = scratch((4 * hid, rows), dt)
        xp.multiply(w_all.T, scale, out=w_t)
        split, plan = _lstm_split(xp, hid, rows, bsz, dt, any(self.needs_input_grad))
        w_step = _StepMatmul(xp, w_t, bsz, scratch, split)
        # state[t] = [h_t; x_t; 1] (rows, B): the right-hand side of step t's product.
        state = self._buffer(xp, (steps + 1, rows, bsz), dt)
        state[:steps, hid:-1] = x.transpose(1, 2, 0)
        state[steps, hid:-1] = 0
        state[:, -1] = 1
        state[0, :hid] = h0.T
        acts = self._buffer(xp, (steps, 4 * hid, bsz), dt)
        terms = scratch((2 * hid, bsz), dt)  # i g and f c_prev, the two terms of c
        ig, fc = terms[:hid], terms[hid:]
        h1, h3 = hid, 3 * hid
        # On the CPU, when a gradient will be wanted, each step also turns its gates into
        # the factors backward needs (see there) while they are in cache: computed later
        # for the whole sequence, that is ten passes over arrays too big for the cache
        # (measured: 0.47 ms of a 3.7 ms training step; done here, the step is 0.10-0.13 ms
        # shorter, paired runs). A GPU would
        # rather launch the ten big passes than 270 small kernels.
        self.factored = xp is np and _FACTORS_IN_FORWARD and any(self.needs_input_grad)
        keep: Any = itertools.repeat((None, None))
        cs: Any = None  # (T+1, H, B) and (T, H, B) when backward will need them
        tcs: Any = None
        if self.factored:
            self.f_keep = self._buffer(xp, (steps, hid, bsz), dt)
            self.o_dtanh = self._buffer(xp, (steps, hid, bsz), dt)
            keep = zip(self.f_keep, self.o_dtanh, strict=True)
            # Backward needs neither c nor tanh(c) then (the factors hold what it needs), so
            # they live in two small buffers that stay in cache instead of two (T, H, B)
            # arrays that each step would write 32 KB more of fresh memory to.
            ring = scratch((3, hid, bsz), dt)
            ring[0] = c0.T
            c_prevs = itertools.cycle((ring[0], ring[1]))
            c_nexts = itertools.cycle((ring[1], ring[0]))
            t_cs = itertools.repeat(ring[2])
            c_last = ring[steps % 2]
        else:
            cs = self._buffer(xp, (steps + 1, hid, bsz), dt)
            tcs = self._buffer(xp, (steps, hid, bsz), dt)
            cs[0] = c0.T
            c_prevs, c_nexts, t_cs, c_last = iter(cs[:-1]), iter(cs[1:]), iter(tcs), cs[-1]
        # Outputs passed positionally and no in-place operators: each costs 50-120 ns more
        # per call, and this loop makes ~17 calls a step.
        mul, sub, add, tanh, copyto = xp.multiply, xp.subtract, xp.add, xp.tanh, xp.copyto
        exp, div = xp.exp, xp.divide
        # Per-step views by iteration (cheaper than indexing in the loop); the right-hand
        # side state[t] holds h_t, written by the step before.
        hs = state[:, :hid]
        gates = acts.reshape(steps, 4, hid, bsz)
        sigs, i_fs = acts[:, h1:], acts[:, h1:h3]
        per_step = zip(
            state, acts, gates, sigs, i_fs, c_prevs, c_nexts, t_cs, hs[1:], keep, strict=False
        )
        # exp(-v) overflows to inf for v < -88 (float32): 1 / (1 + inf) = 0 is the right
        # limit, so numpy's overflow warning is noise here
        quiet = np.errstate(over="ignore") if by_exp else contextlib.nullcontext()
        started = time.perf_counter()
        with quiet:
            for rhs, a, (g, i, f, o), sig, i_f, c_prev, c, tc, h, (f_keep, o_dtanh) in per_step:
                w_step(rhs, a)
                if by_exp:
                    exp(a, a)
                    add(a, 1, a)
                    div(1, a, a)  # every row a sigmoid now
                    mul(g, 2, g)
                    sub(g, 1, g)
                else:
                    tanh(a, a)
                    mul(sig, 0.5, sig)
                    add(sig, 0.5, sig)
                mul(i, g, ig)
                mul(f, c_prev, fc)
                add(ig, fc, c)
                tanh(c, tc)
                mul(o, tc, h)
                if f_keep is not None:
                    copyto(f_keep, f)
                    mul(h, tc, o_dtanh)
                    sub(o, o_dtanh, o_dtanh)  # o (1 - tanh(c)^2) = o - h tanh(c)
                    mul(ig, g, g)
                    sub(i, g, g)  # i (1 - g^2)
                    sub(1, sig, sig)  # 1 - s
                    mul(i_f, terms, i_f)  # g s_i (1 - s_i), c_prev s_f (1 - s_f)
                    mul(o, h, o)  # tanh(c) s_o (1 - s_o)
        if plan is not None:
            plan.record(split, 0, time.perf_counter() - started)
        self.split, self.plan = split, plan
        self.w_all = w_all
        self.acts, self.state, self.cs, self.tcs = acts, state, cs, tcs
        self.x_dtype = x.dtype
        hs = state[:, :hid]
        self.h_n, self.c_n = hs[-1].T.copy(), c_last.T.copy()
        scratch.done()
        if self.with_cell:
            first = steps if self.return_sequences else 1
            packed = xp.empty((bsz, first + 1, hid), dtype=dt)
            packed[:, :first] = hs[-first:].transpose(2, 0, 1)
            packed[:, first] = self.c_n
            return packed
        return _sequence_output(xp, hs, self.return_sequences)

    def _factors(self, xp: Any, acts: Any, scratch: _Scratch) -> tuple[Any, Any]:
        """For all steps at once, over the gate activations in acts: the factor that maps
        dc (gates g, i, f) or dh (gate o) to the gate's pre-activation gradient; the
        backward loop then writes those gradients over it. Returns f and o (1 - tanh(c)^2),
        the factors from dc and dh to dc_prev. Few and small arrays on purpose: a pass over
        a multi-megabyte array costs more in memory traffic than in arithmetic."""
        state, cs, tcs = self.state, self.cs, self.tcs
        hid = cs.shape[1]
        h1, h2, h3 = hid, 2 * hid, 3 * hid
        steps, _, bsz = acts.shape
        dt = acts.dtype
        g, i, f, o = acts[:, :h1], acts[:, h1:h2], acts[:, h2:h3], acts[:, h3:]
        hs = state[1:, :hid]  # h_t = o tanh(c_t)
        f_keep = scratch(tcs.shape, dt)
        xp.copyto(f_keep, f)
        o_dtanh = scratch(tcs.shape, dt)  # dh -> dc through h = o tanh(c): o (1 - tanh(c)^2)
        xp.multiply(hs, tcs, out=o_dtanh)
        xp.subtract(o, o_dtanh, out=o_dtanh)
        terms = scratch((steps, 2 * hid, bsz), dt)  # i g and f c_prev
        xp.multiply(i, g, out=terms[:, :h1])
        xp.multiply(f, cs[:-1], out=terms[:, h1:])
        xp.multiply(terms[:, :h1], g, out=g)
        xp.subtract(i, g, out=g)  # i (1 - g^2)
        sig = acts[:, h1:]
        xp.subtract(1, sig, out=sig)  # 1 - s
        i_f = acts[:, h1:h3]
        xp.multiply(i_f, terms, out=i_f)  # g s_i (1 - s_i), c_prev s_f (1 - s_f)
        o *= hs  # tanh(c) s_o (1 - s_o)
        return f_keep, o_dtanh

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        g_cell = None
        if self.with_cell:  # the last "step" is the final cell state's gradient
            g_cell = gy[:, -1]
            gy = gy[:, :-1] if self.return_sequences else gy[:, 0]
        acts, state = self.acts, self.state
        steps, _, bsz = acts.shape
        hid = self.w_all.shape[1] // 4
        dt = acts.dtype
        scratch = _Scratch(xp)
        if self.graph_retained:  # a later backward needs acts as they are: work on a copy
            acts = scratch(acts.shape, dt)
            xp.copyto(acts, self.acts)
        if self.factored:  # forward left the factors in acts
            f_keep, o_dtanh = self.f_keep, self.o_dtanh
        else:
            f_keep, o_dtanh = self._factors(xp, acts, scratch)
        dc = scratch.zeros((hid, bsz), dt) if g_cell is None else scratch.copy(g_cell.T, dt)
        tmp = scratch((hid, bsz), dt)
        gyt, dh = _incoming_grad(gy, hid, dt, self.return_sequences, scratch)
        split, plan = self.split, self.plan
        w_hh_r = _StepMatmul(xp, self.w_all[:hid], bsz, scratch, split)
        need = self.needs_input_grad
        rows = state.shape[1]
        need_w = need[1] or need[2] or need[3]
        # With one BLAS thread the input and weight gradients are summed step by step in the
        # loop, while the step's gate gradients are still in cache, in products small enough
        # for OpenBLAS's small-matrix kernels (`_row_blocks`); after the loop they need the
        # whole (T, 4H, B) gradient copied to (4H, T*B) and read again (Xeon, paired runs:
        # -0.15 ms a step). With more threads they are the one part of backward that is not
        # a chain of steps, so they go after the loop, as a few big products that OpenBLAS
        # spreads over its threads (EPYC, 2 threads, alternated processes: 41.8k -> 44.9k
        # samples/s; the Xeon had measured 0.07 ms a step the other way, with per-step
        # products that were not threaded). A GPU always prefers the few big products.
        # Decided by the thread count, never by timing: the two sum in different orders.
        in_loop = xp is np and (
            _GRADS_IN_LOOP if _GRADS_IN_LOOP is not None else _blas_threads() <= 1
        )
        if in_loop:
            if need_w:
                inputs_t = scratch((steps, bsz, rows), dt)  # [h_t; x_t; 1]^T per step
                xp.copyto(inputs_t, state[:-1].transpose(0, 2, 1))
                gw = scratch.zeros((4 * hid, rows), dt)  # [gW_hh; gW_ih; gb]^T
                gw_t = scratch((4 * hid, rows), dt)
                # row blocks where OpenBLAS has small-matrix kernels (which run them
                # faster), else one call; decided by the kernels alone, never by timing
                gw_rows = _row_blocks(4 * hid, bsz, rows) if _small_kernels() else [slice(None)]
            if need[0]:
                gx_t = scratch((steps, rows - hid - 1, bsz), dt)
                w_in = _StepMatmul(xp, self.w_all[hid:-1], bsz, scratch, split)
        mul, add = xp.multiply, xp.add  # outputs positional, as in forward
        grads = acts.reshape(steps, 4, hid, bsz)  # each step's gradients, written over acts
        back = slice(None, None, -1)  # per-step views by iteration, last step first
        per_step = zip(
            range(steps - 1, -1, -1),
            acts[back],  # this step's pre-activation gradients, (4H, B), once written
            grads[back, :3],
            grads[back, 3],
            o_dtanh[back],
            f_keep[back],
            itertools.repeat(None) if gyt is None else gyt[back],
            strict=False,  # repeat(None) never ends
        )
        started = time.perf_counter()
        for t, grad, d3, do, o_dt, f_t, gy_t in per_step:
            if gy_t is not None:
                add(dh, gy_t, dh)
            mul(dh, o_dt, tmp)
            add(dc, tmp, dc)
            mul(dc, d3, d3)  # dg, di, df
            mul(do, dh, do)
            mul(dc, f_t, dc)
            w_hh_r(grad, dh)  # grad no longer needs dh, so dh is overwritten in place
            if in_loop:
                if need_w:
                    inputs = inputs_t[t]
                    for block in gw_rows:
                        xp.matmul(grad[block], inputs, out=gw_t[block])
                    add(gw, gw_t, gw)
                if need[0]:
                    w_in(grad, gx_t[t])
        if plan is not None:
            plan.record(split, 1, time.perf_counter() - started)
        gx = gw_all = None
        if in_loop:
            if need[0]:  # a fresh array: gx_t goes back to the pool
                gx = xp.array(gx_t.transpose(2, 0, 1), dtype=self.x_dtype, order="C", copy=True)
        else:
            dg = _rows_by_steps(xp, acts, scratch((4 * hid, steps * bsz), dt))
            if need[0]:
                gx = _input_grad(xp, self.w_all[hid:-1], dg, steps, bsz, self.x_dtype)
            if need_w:
                inputs = _rows_by_steps(xp, state[:-1], scratch((rows, steps * bsz), dt))
                # OpenBLAS runs this long-inner-axis product ~10% faster with the wide
                # operand on the left: dg @ inputs^T, not inputs @ dg^T.
                gw = dg @ inputs.T
        gw_ih = gw_hh = gb = None
        if need_w:  # (rows, 4H) = [gW_hh; gW_ih; gb], the gates back in the order i, f, g, o
            gw_all = _from_internal_gates(gw.T, xp.empty((rows, 4 * hid), dtype=dt))
            gw_hh = gw_all[:hid] if need[2] else None
            gw_ih = gw_all[hid:-1] if need[1] else None
            gb = gw_all[-1] if need[3] else None
        dh0, dc0 = dh.T.copy(), dc.T.copy()  # fresh arrays: dh and dc go back to the pool
        scratch.done()
        return gx, gw_ih, gw_hh, gb, dh0, dc0


class GRUCellSequence(_PooledFunction):
    """One GRU layer over a whole sequence (PyTorch's formulation):

        r = sigmoid(x W_ir + b_ir + h W_hr + b_hr)
        z = sigmoid(x W_iz + b_iz + h W_hz + b_hz)
        n = tanh(x W_in + b_in + r * (h W_hn + b_hn))
        h' = (1 - z) * n + z * h

    Inputs: x (B, T, I), w_ih (I, 3H), w_hh (H, 3H), b_ih (3H,), b_hh (3H,), h0 (B, H).
    """

    def __init__(self, return_sequences: bool) -> None:
        self.return_sequences = return_sequences

    def forward(self, x: Any, w_ih: Any, w_hh: Any, b_ih: Any, b_hh: Any, h0: Any) -> Any:
        xp = get_array_module(x)
        bsz, steps, _ = x.shape
        hid = w_hh.shape[0]
        dt = w_hh.dtype
        if steps < 1:
            raise ShapeError(
                f"GRU: the sequence must have at least one step, got shape {tuple(x.shape)}"
            )
        # r and z rows pre-scaled for their sigmoid, as in the LSTM: by -1 for
        # 1 / (1 + exp(-v)) where `_gates_by_exp`, by 0.5 for 0.5 tanh(0.5 v) + 0.5 elsewhere
        # (GRU(1 -> 64) on an AVX-512 Xeon, 1 thread: 4.43 ms a step with tanh, 4.56 with exp).
        by_exp = _gates_by_exp(xp)
        scale = xp.ones((3 * hid, 1), dtype=dt)
        scale[: 2 * hid] = -1.0 if by_exp else 0.5
        scratch = _Scratch(xp)
        acts = self._buffer(xp, (steps, 3 * hid, bsz), dt)
        xr = _input_projection(xp, x, w_ih.T * scale, acts, scratch)
        acts += b_ih.reshape(-1, 1) * scale
        w_rec = _StepMatmul(xp, scratch.copy(w_hh.T * scale), bsz, scratch)
        b_rec = b_hh.reshape(-1, 1) * scale
        hh = self._buffer(xp, (steps, 3 * hid, bsz), dt)  # W_hh^T h + b_hh per step
        hs = self._buffer(xp, (steps + 1, hid, bsz), dt)
        hs[0] = h0.T
        tmp = scratch((hid, bsz), dt)
        h1, h2 = hid, 2 * hid
        quiet = np.errstate(over="ignore") if by_exp else contextlib.nullcontext()
        with quiet:
            for t in range(steps):
                rec = w_rec(hs[t], hh[t])
                rec += b_rec
                a = acts[t]
                rz = a[:h2]
                rz += rec[:h2]
                if by_exp:
                    xp.exp(rz, out=rz)  # exp(-v) = inf: the right limit, see the LSTM
                    rz += 1
                    xp.divide(1, rz, out=rz)
                else:
                    xp.tanh(rz, out=rz)
                    rz *= 0.5
                    rz += 0.5
                n = a[h2:]
                xp.multiply(a[:h1], rec[h2:], out=tmp)  # r * (W_hn h + b_hn)
                n += tmp
                xp.tanh(n, out=n)
                h = hs[t + 1]
                xp.subtract(hs[t], n, out=h)
                h *= a[h1:h2]
                h += n  # n + z * (h_prev - n)
        self.xr, self.w_ih, self.w_hh = xr, w_ih, w_hh
        self.acts, self.hh, self.hs = acts, hh, hs
        self.x_dtype = x.dtype
        self.h_n = hs[-1].T.copy()
        scratch.done()
        return _sequence_output(xp, hs, self.return_sequences)

    def backward(self, gy: Any) -> Any:
        xp = get_array_module(gy)
        acts, hs = self.acts, self.hs
        steps, _, bsz = acts.shape
        hid = hs.shape[1]
        h1, h2 = hid, 2 * hid
        dt = acts.dtype
        scratch = _Scratch(xp)
        r, z, n = acts[:, :h1], acts[:, h1:h2], acts[:, h2:]
        one_minus_z = scratch(z.shape, dt)
        xp.subtract(1, z, out=one_minus_z)
        p_n = scratch(n.shape, dt)  # dh -> d(n pre-activation): (1 - z) * (1 - n^2)
        xp.multiply(n, n, out=p_n)
        xp.subtract(1, p_n, out=p_n)
        p_n *= one_minus_z
        p_z = scratch(z.shape, dt)  # dh -> d(z pre-activation): (h_prev - n) * z * (1 - z)
        xp.subtract(hs[:-1], n, out=p_z)
        p_z *= z
        p_z *= one_minus_z
        p_r = scratch(r.shape, dt)  # d(n pre) -> d(r pre-activation): hhn * r * (1 - r)
        xp.subtract(1, r, out=p_r)
        p_r *= r
        p_r *= self.hh[:, h2:]
        dxp = scratch(acts.shape, dt)  # grads of the input-side pre-activations
        dhh = scratch(acts.shape, dt)  # grads of W_hh^T h + b_hh
        gyt, dh = _incoming_grad(gy, hid, dt, self.return_sequences, scratch)
        w_hh = _StepMatmul(xp, self.w_hh, bsz, scratch)
        dh_prev = scratch(dh.shape, dh.dtype)
        for t in range(steps - 1, -1, -1):
            if gyt is not None:
                dh += gyt[t]
            d, e = dxp[t], dhh[t]
            xp.multiply(dh, p_n[t], out=d[h2:])
            xp.multiply(dh, p_z[t], out=d[h1:h2])
            xp.multiply(d[h2:], p_r[t], out=d[:h1])
            e[:h2] = d[:h2]
            xp.multiply(d[h2:], r[t], out=e[h2:])
            w_hh(e, dh_prev)
            dh *= z[t]
            dh_prev += dh
            dh, dh_prev = dh_prev, dh
        dx = _rows_by_steps(xp, dxp, scratch((3 * hid, steps * bsz), dt))
        dr = _rows_by_steps(xp, dhh, scratch((3 * hid, steps * bsz), dt))
        need = self.needs_input_grad
        gx = gw_ih = gw_hh = gb_ih = gb_hh = None
        if need[0]:
            gx = _input_grad(xp, self.w_ih, dx, steps, bsz, self.x_dtype)
        if need[1]:
            gw_ih = self.xr @ dx.T
        if need[2]:
            h_prev = _rows_by_steps(xp, hs[:-1], scratch((hid, steps * bsz), dt))
            gw_hh = h_prev @ dr.T
        if need[3]:
            gb_ih = dx.sum(axis=1)
        if need[4]:
            gb_hh = dr.sum(axis=1)
        dh0 = dh.T.copy()  # a fresh array: dh goes back to the pool
        scratch.done()
        return gx, gw_ih, gw_hh, gb_ih, gb_hh, dh0


# ------------------------------------------------------------------------ modules
class _Recurrent(Module):
    """Shared constructor, checks and state handling of LSTM and GRU."""

    _gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        return_sequences: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        for label, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or int(value) != value or int(value) < 1:
                raise ValueError(f"{name}: {label} must be a positive integer, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1), got {dropout}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers = int(num_layers)
        self.return_sequences = bool(return_sequences)
        self.dropout = float(dropout)
        self.final_state = None

    @property
    def final_state(self) -> Any:
        """The final state(s) of the last call. After a call without `return_state` they
        are stacked here, on first access: a training loop that never reads them does not
        pay for two stack ops a call."""
        parts = self.__dict__.pop("_final_parts", None)
        if parts is not None:
            self.__dict__["_final_state"] = self._stacked_state(parts)
        return self.__dict__.get("_final_state")

    @final_state.setter
    def final_state(self, value: Any) -> None:
        self.__dict__.pop("_final_parts", None)
        self.__dict__["_final_state"] = value

    def _stacked_state(self, parts: Any) -> Any:
        raise NotImplementedError

    def _gate_weights(self, n_in: int) -> tuple[Any, Any]:
        """Glorot-uniform input weights and per-gate orthogonal recurrent weights."""
        hid, k = self.hidden_size, self._gates
        w_ih = init.glorot_uniform((n_in, k * hid), n_in, k * hid)
        blocks = [init.orthogonal(hid, hid) for _ in range(k)]
        return w_ih, np.concatenate(blocks, axis=1)

    def _check_input(self, x: Any) -> Tensor:
        x = as_input(x)
        name = type(self).__name__
        if x.ndim != 3 or x.shape[2] != self.input_size:
            hint = ""
            if x.ndim == 2 and self.input_size == 1:
                hint = "; for one feature per step, reshape to (batch, seq, 1)"
            raise ShapeError(
                f"{name} expected input (batch, seq, {self.input_size}) but got shape {x.shape}"
                f"; input_size={self.input_size}{hint}"
            )
        if x.shape[1] < 1:
            raise ShapeError(
                f"{name}: the sequence must have at least one step, got shape {x.shape}"
            )
        return x

    def _initial(self, state: Any, x: Tensor, what: str) -> list[Tensor]:
        """Per-layer initial state tensors (B, H): zeros, or slices of the given state."""
        bsz, hid, layers = x.shape[0], self.hidden_size, self.num_layers
        ref = self._parameters["weight_hh_l0"]
        if state is None:
            xp = get_array_module(ref.data)
            zero = Tensor._make(xp.zeros((bsz, hid), dtype=ref.dtype))
            return [zero] * layers
        s = as_input(state)
        if s.ndim == 2 and layers == 1:
            s = s.reshape(1, *s.shape)
        if s.shape != (layers, bsz, hid):
            raise ShapeError(
                f"{type(self).__name__}: initial {what} must have shape (num_layers, batch, hidden) "
                f"= {(layers, bsz, hid)}, got {s.shape}"
            )
        if s.dtype != ref.dtype:
            s = s.astype(ref.dtype)
        return [s[layer] for layer in range(layers)]

    def _between_layers(self, out: Tensor, layer: int) -> Tensor:
        if self.dropout and self.training and layer < self.num_layers - 1:
            return af.dropout(out, self.dropout, True)
        return out

    def _wants_sequence(self, layer: int) -> bool:
        return layer < self.num_layers - 1 or self.return_sequences

    def get_config(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "return_sequences": self.return_sequences,
            "dropout": self.dropout,
        }


class LSTM(_Recurrent):
    """Long short-term memory over batch-first input (batch, seq, input_size).

    Returns the last step's hidden state (batch, hidden) or, with `return_sequences=True`,
    every step's (batch, seq, hidden). `forward(x, state=(h0, c0))` starts from given states
    of shape (num_layers, batch, hidden) (or (batch, hidden) for one layer), which receive
    gradients. `return_state=True` also returns (h_n, c_n), each (num_layers, batch, hidden),
    as part of the graph: a loss on them trains the layer (an encoder's summary, say). After
    each call `final_state` holds them (without `return_state`: detached copies).

    Parameters per layer l: weight_ih_l{l} (in, 4H), weight_hh_l{l} (H, 4H), bias_l{l} (4H,),
    gates ordered i, f, g, o; the forget-gate bias starts at 1 so early training keeps memory.
    """

    _gates = 4

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        return_sequences: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, return_sequences, dropout)
        hid = self.hidden_size
        for layer in range(self.num_layers):
            w_ih, w_hh = self._gate_weights(self.input_size if layer == 0 else hid)
            bias = init.zeros((4 * hid,))
            bias[hid : 2 * hid] = 1.0
            setattr(self, f"weight_ih_l{layer}", Parameter(w_ih))
            setattr(self, f"weight_hh_l{layer}", Parameter(w_hh))
            setattr(self, f"bias_l{layer}", Parameter(bias))

    def forward(self, x: Any, state: Any = None, return_state: bool = False) -> Any:
        x = self._check_input(x)
        if state is None:
            h0s = c0s = self._initial(None, x, "h")
        else:
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError("LSTM: state must be a pair (h0, c0)")
            h0s, c0s = self._initial(state[0], x, "h0"), self._initial(state[1], x, "c0")
        out = x
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            seq = self._wants_sequence(layer)
            op = LSTMCellSequence(seq, with_cell=return_state)
            out = op(
                out,
                getattr(self, f"weight_ih_l{layer}"),
                getattr(self, f"weight_hh_l{layer}"),
                getattr(self, f"bias_l{layer}"),
                h0s[layer],
                c0s[layer],
            )
            if return_state:  # the states as slices of the op's output: in the graph
                h_n.append(out[:, -2] if seq else out[:, 0])
                c_n.append(out[:, -1])
                out = out[:, :-1] if seq else out[:, 0]
            else:
                h_n.append(Tensor._make(op.h_n))
                c_n.append(Tensor._make(op.c_n))
            out = self._between_layers(out, layer)
        if return_state:
            self.final_state = self._stacked_state((h_n, c_n))
            return out, self.final_state
        self.__dict__["_final_parts"] = (h_n, c_n)  # detached copies, stacked when read
        return out

    def _stacked_state(self, parts: Any) -> Any:
        h_n, c_n = parts
        return af.stack(h_n), af.stack(c_n)


class GRU(_Recurrent):
    """Gated recurrent unit over batch-first input (batch, seq, input_size).

    Same interface as `LSTM`, with a single state h: `forward(x, state=h0)`, and
    `final_state` is h_n (num_layers, batch, hidden), in the graph with `return_state=True`.
    Parameters per layer l: weight_ih_l{l} (in, 3H), weight_hh_l{l} (H, 3H), bias_ih_l{l},
    bias_hh_l{l} (3H,), gates ordered r, z, n.
    """

    _gates = 3

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        return_sequences: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers, return_sequences, dropout)
        hid = self.hidden_size
        for layer in range(self.num_layers):
            w_ih, w_hh = self._gate_weights(self.input_size if layer == 0 else hid)
            setattr(self, f"weight_ih_l{layer}", Parameter(w_ih))
            setattr(self, f"weight_hh_l{layer}", Parameter(w_hh))
            setattr(self, f"bias_ih_l{layer}", Parameter(init.zeros((3 * hid,))))
            setattr(self, f"bias_hh_l{layer}", Parameter(init.zeros((3 * hid,))))

    def forward(self, x: Any, state: Any = None, return_state: bool = False) -> Any:
        x = self._check_input(x)
        h0s = self._initial(state, x, "h0")
        out = x
        h_n = []
        for layer in range(self.num_layers):
            op = GRUCellSequence(self._wants_sequence(layer))
            out = op(
                out,
                getattr(self, f"weight_ih_l{layer}"),
                getattr(self, f"weight_hh_l{layer}"),
                getattr(self, f"bias_ih_l{layer}"),
                getattr(self, f"bias_hh_l{layer}"),
                h0s[layer],
            )
            if return_state:  # the last step of the output is the final state
                h_n.append(out[:, -1] if self._wants_sequence(layer) else out)
            else:
                h_n.append(Tensor._make(op.h_n))
            out = self._between_layers(out, layer)
        if return_state:
            self.final_state = self._stacked_state(h_n)
            return out, self.final_state
        self.__dict__["_final_parts"] = h_n  # detached copies, stacked when read
        return out

    def _stacked_state(self, parts: Any) -> Any:
        return af.stack(parts)


__all__ = ["GRU", "LSTM", "GRUCellSequence", "LSTMCellSequence"]
