"""The autograd engine: accumulation, grad modes, graph lifetime, dtypes, errors, stability."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import azuraforge_core as af
from azuraforge_core import ShapeError, Tensor, no_grad


def leaf(values, dtype=np.float64) -> Tensor:
    return Tensor(np.asarray(values, dtype=np.float64), requires_grad=True, dtype=dtype)


# ------------------------------------------------------------- accumulation
def test_gradients_accumulate_across_backward_calls() -> None:
    x = leaf([1.0, 2.0, 3.0])
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0, 6.0])
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [5.0, 7.0, 9.0])


def test_clearing_gradients() -> None:
    x = leaf([1.0, -2.0])
    (x * x).sum().backward()
    x.zero_grad()
    assert x.grad is None
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])
    x.grad = None
    x.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0, 1.0])


def test_accumulated_gradient_is_not_aliased_between_leaves() -> None:
    # a + b hands the same upstream array to both leaves; accumulating into one must not
    # change the other.
    a, b = leaf([1.0, 1.0]), leaf([2.0, 2.0])
    (a + b).sum().backward()
    (a * 5.0).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [6.0, 6.0])
    np.testing.assert_allclose(b.grad.numpy(), [1.0, 1.0])


def test_leaf_gradient_from_a_broadcast_is_its_own_writable_buffer() -> None:
    # Sum's backward broadcasts one value; an optimizer may update .grad in place.
    x = leaf(np.ones((3, 4)))
    x.sum().backward()
    x.grad.data *= 2.0
    np.testing.assert_array_equal(x.grad.numpy(), np.full((3, 4), 2.0))


def test_only_leaves_that_require_grad_get_one() -> None:
    x = leaf([1.0, 2.0])
    c = Tensor(np.array([3.0, 4.0]))
    y = x * c
    h = y * 2.0
    h.sum().backward()
    assert c.grad is None
    assert y.grad is None  # intermediates do not keep gradients
    np.testing.assert_allclose(x.grad.numpy(), [6.0, 8.0])


def test_scalar_leaf_gradient_is_an_array() -> None:
    s = leaf(2.0)
    (s * 3.0).backward()
    (s * s).backward()
    assert isinstance(s.grad.data, np.ndarray)
    assert s.grad.shape == ()
    assert s.grad.item() == pytest.approx(7.0)


def test_backward_on_a_leaf() -> None:
    x = leaf([[1.0, 2.0]])
    x.backward(np.array([[3.0, 4.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[3.0, 4.0]])


def test_diamond_graph_sums_both_paths() -> None:
    x = leaf([0.5, -1.5, 2.0])
    a = x * 2.0
    b = x.exp()
    y = a * b  # x reaches y through a and through b
    z = y + a  # and a is used twice
    z.sum().backward()
    xv = x.numpy()
    want = 2 * np.exp(xv) + 2 * xv * np.exp(xv) + 2
    np.testing.assert_allclose(x.grad.numpy(), want, rtol=1e-12)


def test_same_tensor_twice_in_one_op() -> None:
    x = leaf([1.5, -2.0])
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.numpy() + 1)


def test_long_chain_has_no_recursion_limit() -> None:
    x = leaf([1.0, 2.0])
    y = x
    depth = 10_000
    for _ in range(depth):
        y = y * 1.0001
    assert depth > sys.getrecursionlimit()
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [1.0001**depth] * 2, rtol=1e-9)


def test_long_chain_with_branches() -> None:
    x = leaf([0.3])
    y = x
    for _ in range(5_000):
        y = y + x * 0.001  # x feeds every step
    y.backward(np.ones(1))
    np.testing.assert_allclose(x.grad.numpy(), [1.0 + 5_000 * 0.001], rtol=1e-9)


# ------------------------------------------------------------------ no_grad
def test_no_grad_context_records_nothing() -> None:
    x = leaf([1.0, 2.0])
    with no_grad():
        assert not af.is_grad_enabled()
        y = (x * 2.0).exp().sum()
    assert af.is_grad_enabled()
    assert not y.requires_grad
    assert y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_no_grad_as_decorator() -> None:
    @no_grad()
    def predict(t: Tensor) -> Tensor:
        return (t @ t.T).relu()

    x = leaf([[1.0, -2.0], [0.5, 3.0]])
    out = predict(x)
    assert not out.requires_grad
    assert out.is_leaf
    assert predict.__name__ == "predict"
    assert af.is_grad_enabled()


def test_no_grad_restores_mode_after_an_exception_and_nests() -> None:
    with pytest.raises(ValueError), no_grad():
        raise ValueError("boom")
    assert af.is_grad_enabled()
    with no_grad():
        with no_grad():
            pass
        assert not af.is_grad_enabled()
        with af.enable_grad():
            assert af.is_grad_enabled()
            y = leaf([1.0]) * 2.0
        assert y.requires_grad
    assert af.is_grad_enabled()


def test_detach_stops_gradient() -> None:
    x = leaf([1.0, 2.0])
    d = (x * 3.0).detach()
    assert not d.requires_grad and d.is_leaf
    y = x * 2.0 + d
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 2.0])


# ------------------------------------------------------------ backward API
def test_backward_on_non_scalar_needs_a_gradient() -> None:
    y = leaf([[1.0, 2.0]]) * 2.0
    with pytest.raises(RuntimeError, match=r"non-scalar.*\(1, 2\).*gradient"):
        y.backward()


def test_backward_with_explicit_gradient() -> None:
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    y = x * x
    y.backward(np.array([[1.0, 0.0], [0.5, 2.0]]))
    np.testing.assert_allclose(x.grad.numpy(), [[2.0, 0.0], [3.0, 16.0]])


def test_backward_with_wrong_gradient_shape_raises() -> None:
    y = leaf([[1.0, 2.0]]) * 2.0
    with pytest.raises(ShapeError, match=r"\(2,\).*\(1, 2\)"):
        y.backward(np.ones(2))


def test_second_backward_through_freed_graph_raises() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=r"already freed.*retain_graph=True"):
        y.backward()


def test_retain_graph_allows_a_second_backward() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), [4.0, 8.0])


def test_backward_without_requires_grad_raises() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(3)).sum().backward()


# ------------------------------------------------------------------ dtypes
def test_float32_is_the_default() -> None:
    assert Tensor(np.ones(3, dtype=np.float64)).dtype == np.float32
    assert Tensor([1.0, 2.0]).dtype == np.float32
    assert Tensor(2.5).dtype == np.float32
    assert np.float32 == af.DEFAULT_DTYPE


def test_float64_is_kept_when_asked() -> None:
    x = Tensor(np.ones(3), dtype=np.float64, requires_grad=True)
    assert x.dtype == np.float64
    y = (x * 2.0 + 1).exp().sum()  # Python numbers do not change the dtype
    assert y.dtype == np.float64
    y.backward()
    assert x.grad.dtype == np.float64


def test_int_and_bool_keep_their_dtype() -> None:
    assert Tensor(np.arange(3)).dtype.kind == "i"
    assert Tensor(np.array([True, False])).dtype == np.bool_
    # A float constant must not be truncated to the int tensor's dtype.
    np.testing.assert_allclose((Tensor(np.array([1, 2])) + 0.5).numpy(), [1.5, 2.5])


def test_gradients_keep_the_parameter_dtype() -> None:
    w = Tensor(np.ones((2, 2)), requires_grad=True)  # float32
    x = Tensor(np.ones((3, 2)), dtype=np.float64)
    out = x @ w  # promoted to float64
    assert out.dtype == np.float64
    out.sum().backward()
    assert w.grad.dtype == np.float32
    np.testing.assert_allclose(w.grad.numpy(), np.full((2, 2), 3.0))


def test_float32_training_ops_stay_float32() -> None:
    x = Tensor(np.random.default_rng(0).standard_normal((4, 3)))
    w = Tensor(np.random.default_rng(1).standard_normal((3, 5)), requires_grad=True)
    loss = af.cross_entropy((x @ w).relu() * 0.5 + 1, np.array([0, 1, 2, 3])) + af.mse_loss(
        x, np.zeros((4, 3))
    )
    assert loss.dtype == np.float32
    loss.backward()
    assert w.grad.dtype == np.float32


def test_integer_tensors_cannot_require_grad() -> None:
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(np.arange(3), requires_grad=True)
    t = Tensor(np.arange(3))
    with pytest.raises(TypeError, match="floating-point"):
        t.requires_grad_()


# ------------------------------------------------------------------ errors
def test_matmul_shape_error_names_op_and_shapes() -> None:
    with pytest.raises(ShapeError, match=r"matmul.*\(2, 3\) @ \(4, 5\)"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))


def test_batched_matmul_batch_mismatch() -> None:
    with pytest.raises(ShapeError, match=r"(?i)matmul.*\(2, 3, 4\).*\(3, 4, 5\)"):
        Tensor(np.ones((2, 3, 4))) @ Tensor(np.ones((3, 4, 5)))


def test_add_shape_error_names_op_and_shapes() -> None:
    with pytest.raises(ShapeError, match=r"(?i)add.*\(3, 4\).*\(5,\)"):
        Tensor(np.ones((3, 4))) + Tensor(np.ones(5))
    with pytest.raises(ShapeError, match=r"(?i)mul.*\(3, 4\).*\(2, 4\)"):
        Tensor(np.ones((3, 4))) * np.ones((2, 4))


def test_shape_errors_are_value_errors() -> None:
    assert issubclass(ShapeError, ValueError)


def test_movement_and_loss_shape_errors() -> None:
    with pytest.raises(ShapeError, match=r"reshape.*\(2, 3\).*\(4, 2\)"):
        Tensor(np.ones((2, 3))).reshape(4, 2)
    with pytest.raises(ShapeError, match=r"concat.*\(2, 3\).*\(2, 4\)"):
        af.concat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))], axis=0)
    with pytest.raises(ShapeError, match=r"mse_loss.*\(4, 1\).*\(4,\)"):
        af.mse_loss(Tensor(np.ones((4, 1))), Tensor(np.ones(4)))
    with pytest.raises(ShapeError, match=r"linear.*3 features.*expects 4"):
        af.linear(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match="axis 3 is out of range"):
        Tensor(np.ones((2, 3))).sum(axis=3)


def test_conv2d_channel_mismatch() -> None:
    x = Tensor(np.ones((1, 3, 5, 5)))
    w = Tensor(np.ones((4, 2, 3, 3)))
    with pytest.raises(ShapeError, match=r"conv2d.*3 channels.*\(4, 2, 3, 3\).*expects 2"):
        af.conv2d(x, w)
    with pytest.raises(ShapeError, match=r"conv2d.*4-D"):
        af.conv2d(Tensor(np.ones((3, 5, 5))), w)
    with pytest.raises(ShapeError, match="smaller than the kernel"):
        af.conv2d(Tensor(np.ones((1, 2, 2, 2))), w)


def test_pool_window_larger_than_input() -> None:
    with pytest.raises(ShapeError, match=r"max_pool2d.*smaller than the kernel"):
        af.max_pool2d(Tensor(np.ones((1, 1, 2, 2))), 3)


def test_cross_entropy_label_errors() -> None:
    z = Tensor(np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\].*from 0 to 4"):
        af.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match="from -1"):
        af.cross_entropy(z, np.array([0, -1, 1]))
    with pytest.raises(ShapeError, match="expected 3 labels"):
        af.cross_entropy(z, np.array([0, 1]))
    with pytest.raises(ValueError, match="fractional"):
        af.cross_entropy(z, np.array([0.5, 1.0, 2.0]))
    with pytest.raises(ShapeError, match=r"\(batch, classes\)"):
        af.cross_entropy(Tensor(np.zeros(4)), np.array([1]))
    with pytest.raises(ValueError, match="reduction"):
        af.cross_entropy(z, np.array([0, 1, 2]), reduction="avg")


def test_float_index_is_rejected() -> None:
    with pytest.raises(IndexError, match="integers or booleans"):
        Tensor(np.ones(4))[Tensor(np.array([0.0, 1.0]))]


def test_to_cuda_says_what_is_missing_or_works() -> None:
    # This machine has no CuPy/GPU, so the error path runs here; on a GPU machine the move
    # must succeed instead (the CUDA ops themselves are tested in test_gpu.py).
    if af.cuda_available():
        assert Tensor(np.ones(3)).to("cuda").device.startswith("cuda")
    else:
        with pytest.raises(RuntimeError, match=r"CUDA device was requested but CuPy"):
            Tensor(np.ones(3)).to("cuda")


def test_to_cuda_error_when_cupy_cannot_be_imported() -> None:
    # A fresh interpreter in which `import cupy` fails, whatever this machine has installed.
    code = textwrap.dedent(
        """
        import sys
        sys.modules["cupy"] = None  # makes `import cupy` raise ImportError
        import numpy as np
        import azuraforge_core as af
        assert not af.cuda_available()
        try:
            af.Tensor(np.ones(2)).to("cuda:0")
        except RuntimeError as exc:
            print(exc)
        else:
            raise SystemExit("no error")
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "CuPy is not installed" in done.stdout
    assert "azuraforge-core[cuda]" in done.stdout


def test_to_cpu_and_device_names() -> None:
    x = Tensor(np.ones(3), requires_grad=True)
    assert x.device == "cpu"
    assert x.to("cpu") is x
    assert x.to_cpu() is x
    with pytest.raises(ValueError, match="unknown device"):
        x.to("tpu")


# -------------------------------------------------------- numerical stability
BIG = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0], [5.0, 1000.0, 1000.0]])


def stable_softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_family_with_huge_logits(dtype) -> None:
    z = Tensor(BIG, dtype=dtype, requires_grad=True)
    p = z.softmax(axis=1)
    assert np.all(np.isfinite(p.numpy()))
    np.testing.assert_allclose(p.numpy(), stable_softmax(BIG), atol=1e-6)
    up = np.array([[1.0, 2.0, 3.0], [0.5, -1.0, 2.0], [1.0, 0.0, -1.0]])
    p.backward(up)
    s = stable_softmax(BIG)
    want = s * (up - (up * s).sum(axis=1, keepdims=True))
    assert np.all(np.isfinite(z.grad.numpy()))
    np.testing.assert_allclose(z.grad.numpy(), want, atol=1e-6)

    z2 = Tensor(BIG, dtype=dtype, requires_grad=True)
    lp = z2.log_softmax(axis=1)
    assert np.all(np.isfinite(lp.numpy()))
    np.testing.assert_allclose(lp.numpy()[0], [0.0, -2000.0, -1000.0], rtol=1e-6)
    lp.sum().backward()
    want = 1.0 - 3 * s
    np.testing.assert_allclose(z2.grad.numpy(), want, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_huge_logits(dtype) -> None:
    labels = np.array([1, 2, 0])
    z = Tensor(BIG, dtype=dtype, requires_grad=True)
    loss = af.cross_entropy(z, labels)
    # sample 0 puts -2000 vs max 1000 on its label; sample 1 is right; sample 2: 5 vs 1000, 1000
    want = (2000.0 + 0.0 + (995.0 + np.log(2.0))) / 3
    assert np.isfinite(loss.item())
    assert loss.item() == pytest.approx(want, rel=1e-6)
    loss.backward()
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(z.grad.numpy(), (stable_softmax(BIG) - onehot) / 3, atol=1e-6)


def test_sigmoid_and_tanh_saturate_without_overflow() -> None:
    with np.errstate(all="raise"):  # no overflow warnings either
        x = Tensor(np.array([-100.0, -30.0, 0.0, 30.0, 100.0]), requires_grad=True)
        y = x.sigmoid()
        y.sum().backward()
    v = y.numpy()
    assert np.all(np.isfinite(v))
    np.testing.assert_allclose(v[[0, 2, 4]], [0.0, 0.5, 1.0], atol=1e-7)
    assert np.all(np.isfinite(x.grad.numpy()))
    assert x.grad.numpy()[2] == pytest.approx(0.25)
    t = Tensor(np.array([-100.0, 100.0])).tanh().numpy()
    np.testing.assert_allclose(t, [-1.0, 1.0])
