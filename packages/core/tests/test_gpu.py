"""The same op checks on CuPy, plus device handling. Needs CuPy and a CUDA GPU.

Deselect with `-m "not gpu"` on machines without one; on a GPU machine these run for real
(they fail, never skip, when CuPy is missing).
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from gradcheck import check_op
from op_cases import OpCase, params

import azuraforge_core as af
from azuraforge_core import Tensor, no_grad

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("case", params())
def test_op_forward_and_gradient_on_cuda(case: OpCase) -> None:
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))
    check_op(
        case.fn,
        *case.inputs(rng),
        reference=case.reference,
        wrt=case.wrt,
        atol=case.atol,
        rtol=case.rtol,
        seed=7,
        device="cuda",
    )


def test_cuda_is_available() -> None:
    assert af.cuda_available()


def test_round_trip_keeps_values_dtype_and_requires_grad() -> None:
    host = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    x = Tensor(host, requires_grad=True)
    g = x.to("cuda")
    assert g.device.startswith("cuda")
    assert g.requires_grad and g.is_leaf
    assert g.dtype == np.float32
    assert g.to("cuda") is g
    back = g.to_cpu()
    assert back.device == "cpu"
    np.testing.assert_array_equal(back.numpy(), host)
    np.testing.assert_array_equal(g.numpy(), host)  # numpy() copies to the host


def test_gradients_live_on_the_device() -> None:
    w = Tensor(np.ones((3, 2)), requires_grad=True).to("cuda")
    x = Tensor(np.ones((4, 3))).to("cuda")
    loss = (x @ w).relu().mean()
    loss.backward()
    assert w.grad.device.startswith("cuda")
    assert w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad.numpy(), np.full((3, 2), 0.5), rtol=1e-6)
    assert isinstance(loss.item(), float)


def test_summed_gradient_is_an_independent_buffer_on_cuda() -> None:
    x = Tensor(np.ones((3, 4)), requires_grad=True).to("cuda")
    x.sum().backward()
    x.grad.data *= 2.0  # an aliased broadcast view would not give all 2s
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2.0))


def test_device_mismatch_is_a_clear_error() -> None:
    a = Tensor(np.ones(3)).to("cuda")
    b = Tensor(np.ones(3))
    with pytest.raises(RuntimeError, match=r"different devices \((cuda:0, cpu)\)"):
        a + b
    with pytest.raises(RuntimeError, match="different devices"):
        af.concat([b, a])


def test_numpy_operands_follow_the_tensor_to_the_device() -> None:
    a = Tensor(np.ones((2, 3))).to("cuda")
    out = np.full((2, 3), 2.0) * a + 1.0
    assert out.device.startswith("cuda")
    np.testing.assert_allclose(out.numpy(), np.full((2, 3), 3.0))
    masked = af.where(np.array([True, False, True]), a, 0.0)
    np.testing.assert_allclose(masked.numpy(), [[1, 0, 1], [1, 0, 1]])


def test_dropout_and_cross_entropy_on_cuda() -> None:
    x = Tensor(np.ones((100, 100)), requires_grad=True).to("cuda")
    y = af.dropout(x, 0.25, training=True, rng=np.random.default_rng(0))
    assert y.device.startswith("cuda")
    frac = float((y.numpy() == 0).mean())
    assert abs(frac - 0.25) < 0.03
    logits = Tensor(np.array([[1000.0, -1000.0], [0.0, 1.0]]), requires_grad=True).to("cuda")
    loss = af.cross_entropy(logits, np.array([0, 1]))
    loss.backward()
    assert np.isfinite(loss.item())
    assert logits.grad.device.startswith("cuda")


def test_training_steps_on_cuda_reduce_the_loss() -> None:
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((64, 8))).to("cuda")
    y = (rng.standard_normal(64) > 0).astype(np.int64)
    w = Tensor(rng.standard_normal((8, 2)) * 0.1, requires_grad=True).to("cuda")
    b = Tensor(np.zeros(2), requires_grad=True).to("cuda")
    first = last = 0.0
    for i in range(50):
        loss = af.cross_entropy(af.linear(x, w, b), y)
        loss.backward()
        with no_grad():
            for p in (w, b):
                p.data -= 0.5 * p.grad.data
                p.grad = None
        if i == 0:
            first = loss.item()
        last = loss.item()
    assert last < first
