"""Every op, forward against numpy and backward against finite differences (float64, CPU)."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from gradcheck import check_op, distinct
from op_cases import CASES, OpCase, conv2d_reference, params, pool2d_reference

import azuraforge_core as af
from azuraforge_core import Tensor


@pytest.mark.parametrize("case", params())
def test_op_forward_and_gradient(case: OpCase) -> None:
    rng = np.random.default_rng(zlib.crc32(case.id.encode()))  # stable across runs
    check_op(
        case.fn,
        *case.inputs(rng),
        reference=case.reference,
        wrt=case.wrt,
        atol=case.atol,
        rtol=case.rtol,
        seed=7,
    )


def test_case_ids_are_unique() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))


def test_check_op_catches_a_wrong_gradient() -> None:
    # The helper must be able to fail: an op with a deliberately wrong backward.
    class BadSquare(af.Function):
        def forward(self, a):
            self.a = a
            return a * a

        def backward(self, g):
            return g * self.a  # should be 2 * g * a

    with pytest.raises(AssertionError, match="finite differences"):
        check_op(lambda x: BadSquare()(x), (3, 2))


def test_check_op_catches_a_wrong_forward() -> None:
    with pytest.raises(AssertionError):
        check_op(lambda x: x * 2, (3,), reference=lambda x: x * 3)


# ----------------------------------------------------------- value checks
def test_max_ties_share_the_gradient() -> None:
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(axis=1).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]], rtol=1e-6)


def test_maximum_tie_goes_to_first_operand_once() -> None:
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    b = Tensor(np.array([1.0, 3.0]), requires_grad=True)
    af.maximum(a, b).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), [1.0, 0.0])
    np.testing.assert_array_equal(b.grad.numpy(), [0.0, 1.0])


def test_relu_gradient_at_zero_is_zero() -> None:
    x = Tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    x.relu().sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0, 1.0])


def test_getitem_repeated_indices_scatter_add() -> None:
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[np.array([1, 1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 3.0, 0.0, 1.0])


def test_item_and_numpy() -> None:
    t = Tensor(np.array([[2.5]]))
    assert t.item() == 2.5
    assert isinstance(t.item(), float)
    assert Tensor(np.arange(3.0)).sum().item() == 3.0
    with pytest.raises(ValueError, match="one element"):
        Tensor(np.ones(3)).item()
    out = Tensor(np.ones((2, 2))).numpy()
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float32


def test_detach_shares_values_and_cuts_the_graph() -> None:
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    d = x.detach()
    assert not d.requires_grad
    assert d.is_leaf
    np.testing.assert_array_equal(d.numpy(), x.numpy())
    # x * detach(x): the detached factor is a constant, so the gradient is x, not 2x
    (x * d).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 2.0, 3.0])


def test_conv2d_matches_reference_float32() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 2)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out = af.conv2d(Tensor(x), Tensor(w), Tensor(b), stride=(2, 3), padding=(1, 2))
    assert out.dtype == np.float32
    want = conv2d_reference(x, w, b, (2, 3), (1, 2))
    np.testing.assert_allclose(out.numpy(), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, None), (3, 2), (2, 1)])
def test_pooling_matches_reference_float32(kernel: int, stride: int | None) -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 8, 7)).astype(np.float32)
    mp = af.max_pool2d(Tensor(x), kernel, stride)
    ap = af.avg_pool2d(Tensor(x), kernel, stride)
    np.testing.assert_allclose(mp.numpy(), pool2d_reference(x, kernel, stride, np.max), rtol=1e-6)
    np.testing.assert_allclose(
        ap.numpy(), pool2d_reference(x, kernel, stride, np.mean), rtol=1e-5, atol=1e-6
    )


def test_max_pool_gradient_routes_to_the_argmax() -> None:
    x = Tensor(np.array([[[[1.0, 5.0], [3.0, 2.0]]]]), requires_grad=True)
    af.max_pool2d(x, 2).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [[[[0.0, 1.0], [0.0, 0.0]]]])


def _first_max_mask(window: np.ndarray) -> np.ndarray:
    mask = np.zeros(window.size)
    mask[np.argmax(window)] = 1.0  # numpy's argmax picks the first maximum in scan order
    return mask.reshape(window.shape)


@pytest.mark.parametrize("kernel", [2, 3, (2, 3)])
def test_max_pool_ties_send_the_gradient_to_the_first_maximum(kernel: Any) -> None:
    # Few distinct values, so most windows hold ties (as after a ReLU, where many are 0).
    kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, size=(2, 3, 2 * kh + 1, 2 * kw + 1)).astype(np.float32)
    t = Tensor(x, requires_grad=True)
    af.max_pool2d(t, kernel).sum().backward()
    want = np.zeros_like(x)
    for i in range(2):
        for j in range(2):
            win = (
                slice(None),
                slice(None),
                slice(i * kh, (i + 1) * kh),
                slice(j * kw, (j + 1) * kw),
            )
            for n in range(2):
                for c in range(3):
                    want[n, c][win[2:]] = _first_max_mask(x[n, c][win[2:]])
    np.testing.assert_array_equal(t.grad.numpy(), want)


def test_overlapping_max_pool_ties_go_to_the_first_offset() -> None:
    x = Tensor(np.zeros((1, 1, 3, 3)), requires_grad=True)
    af.max_pool2d(x, 2, 1).sum().backward()  # four windows of zeros, each picks its top-left
    np.testing.assert_array_equal(x.grad.numpy()[0, 0], [[1, 1, 0], [1, 1, 0], [0, 0, 0]])


# ---------------------------------------------------------------- dropout
def test_dropout_mask_statistics() -> None:
    p = 0.3
    x = Tensor(np.ones((200, 250)))
    y = af.dropout(x, p, training=True, rng=np.random.default_rng(0)).numpy()
    kept = y != 0
    # kept elements are scaled by 1/(1-p) so the expectation is unchanged
    np.testing.assert_allclose(y[kept], 1.0 / (1.0 - p), rtol=1e-6)
    frac_dropped = 1.0 - kept.mean()
    assert abs(frac_dropped - p) < 0.01  # 50,000 draws: std ~0.002
    assert abs(y.mean() - 1.0) < 0.02


def test_dropout_uses_the_seedable_default_generator() -> None:
    x = Tensor(np.ones((5, 6)))
    af.manual_seed(11)
    a = af.dropout(x, 0.5).numpy()
    af.manual_seed(11)
    b = af.dropout(x, 0.5).numpy()
    c = af.dropout(x, 0.5).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(b, c)


def test_dropout_identity_when_not_training() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((4, 5)), requires_grad=True)
    y = af.dropout(x, 0.9, training=False)
    np.testing.assert_array_equal(y.numpy(), x.numpy())
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.ones((4, 5), dtype=np.float32))
    assert af.dropout(x, 0.0, training=True).numpy() is not None


def test_dropout_gradient_is_the_mask() -> None:
    x = Tensor(np.random.default_rng(1).standard_normal((30, 40)), requires_grad=True)
    y = af.dropout(x, 0.4, training=True, rng=np.random.default_rng(2))
    y.sum().backward()
    mask = y.numpy() / x.numpy()
    np.testing.assert_allclose(x.grad.numpy(), mask, rtol=1e-5)
    g = x.grad.numpy()
    dropped, kept = np.isclose(g, 0.0), np.isclose(g, 1 / 0.6)
    assert np.all(dropped | kept) and dropped.any() and kept.any()


def test_dropout_p_one_zeroes_everything_and_bad_p_raises() -> None:
    x = Tensor(np.ones((3, 3)), requires_grad=True)
    assert np.all(af.dropout(x, 1.0).numpy() == 0)
    with pytest.raises(ValueError, match="p must be in"):
        af.dropout(x, 1.5)


# ------------------------------------------------------------ misc values
def test_var_ddof_and_gelu_values() -> None:
    x = np.array([1.0, 2.0, 4.0, 7.0])
    assert Tensor(x).var().item() == pytest.approx(np.var(x), rel=1e-6)
    assert Tensor(x).var(ddof=1).item() == pytest.approx(np.var(x, ddof=1), rel=1e-6)
    g = af.gelu(Tensor(np.array([-3.0, 0.0, 1.0, 3.0]))).numpy()
    # tanh approximation, close to x * Phi(x)
    np.testing.assert_allclose(g, [-0.0036, 0.0, 0.8412, 2.9964], atol=2e-4)


def test_clip_arguments_are_validated() -> None:
    x = Tensor(np.ones(3))
    with pytest.raises(ValueError, match="at least one"):
        x.clip()
    with pytest.raises(ValueError, match="greater than"):
        x.clip(1.0, 0.0)


def test_where_and_comparisons_give_no_gradient_to_the_condition() -> None:
    x = Tensor(distinct(np.random.default_rng(0), 3, 4), requires_grad=True)
    mask = x > 0
    assert mask.dtype == np.bool_
    assert not mask.requires_grad
    out = af.where(mask, x, -x)
    np.testing.assert_allclose(out.numpy(), np.abs(x.numpy()))
