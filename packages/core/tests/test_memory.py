"""Graphs are freed: no memory growth over a long training run, no reference cycles."""

from __future__ import annotations

import gc
import os
import resource
import tracemalloc
import weakref

import numpy as np
import pytest

import azuraforge_core as af
from azuraforge_core import Tensor, no_grad


def live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if isinstance(o, Tensor))


def test_memory_is_steady_over_2000_training_steps() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((64, 16)))
    y = rng.integers(0, 4, size=64)
    params = [
        Tensor(rng.standard_normal((16, 32)) * 0.25, requires_grad=True),
        Tensor(np.zeros(32), requires_grad=True),
        Tensor(rng.standard_normal((32, 4)) * 0.25, requires_grad=True),
        Tensor(np.zeros(4), requires_grad=True),
    ]
    w1, b1, w2, b2 = params
    losses = []

    def step() -> float:
        h = af.dropout(af.linear(x, w1, b1).relu(), 0.1, training=True)
        logits = h @ w2 + b2
        loss = af.cross_entropy(logits, y) + 1e-4 * (w1 * w1).sum()
        loss.backward()
        with no_grad():
            for p in params:
                p.data -= 0.1 * p.grad.data
                p.grad = None
        return loss.item()

    for _ in range(200):
        losses.append(step())
    tensors_at_200 = live_tensors()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        for _ in range(1800):
            losses.append(step())
        gc.collect()
        current, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    tensors_at_2000 = live_tensors()

    assert tensors_at_2000 <= tensors_at_200 + 2, (tensors_at_200, tensors_at_2000)
    # Each step allocates ~30 KB of arrays; 1,800 leaked steps would be tens of MB.
    assert current - base < 256 * 1024, f"memory grew by {(current - base) / 1024:.0f} KiB"
    assert losses[-1] < losses[0]  # it really trained


def test_backward_releases_the_graph() -> None:
    x = Tensor(np.ones((4, 3)), requires_grad=True)
    w = Tensor(np.full((3, 2), 0.5), requires_grad=True)
    h = x @ w
    probe = weakref.ref(h)
    loss = (h.relu() * 2.0).sum()
    del h
    assert probe() is not None  # the graph keeps the intermediate alive until backward
    loss.backward()
    assert probe() is None  # freed as soon as its gradient has flowed, loss still alive
    assert loss._ctx is None or loss._ctx.inputs is None


def test_dropping_the_loss_frees_the_graph_without_gc() -> None:
    # No reference cycles: plain reference counting frees an un-backpropagated graph.
    x = Tensor(np.ones((4, 3)), requires_grad=True)
    h = (x * 3.0).exp()
    probe = weakref.ref(h)
    loss = h.sum()
    del h
    gc.disable()
    try:
        assert probe() is not None
        del loss
        assert probe() is None
    finally:
        gc.enable()


def test_retain_graph_keeps_it_until_the_last_backward() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    h = x * 2.0
    probe = weakref.ref(h)
    loss = h.sum()
    del h
    loss.backward(retain_graph=True)
    assert probe() is not None
    loss.backward()
    assert probe() is None
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 4.0, 4.0])


def test_no_grad_keeps_no_graph() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    with no_grad():
        h = x * 2.0
        probe = weakref.ref(h)
        out = h + 1.0
    del h
    assert probe() is None
    assert out.is_leaf


@pytest.mark.skipif(
    not hasattr(os, "confstr") or not os.confstr("CS_GNU_LIBC_VERSION"), reason="glibc only"
)
def test_freed_arrays_are_reused_without_page_faults() -> None:
    # The first backward() tunes glibc to keep freed memory; without that, every 2 MiB
    # array below is fresh mmap memory and faults in about 512 pages.
    x = Tensor(np.ones(3), requires_grad=True)
    (x * x).sum().backward()
    assert af.backend._memory_kept
    assert af.backend.keep_freed_memory()
    for _ in range(3):
        np.ones(1 << 19, dtype=np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(50):
        a = np.ones(1 << 19, dtype=np.float32)
        b = a * 2
        del a, b
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    assert faults < 50 * 20, f"{faults} page faults for 100 re-allocated 2 MiB arrays"
