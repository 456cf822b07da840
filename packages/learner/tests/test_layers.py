"""Feed-forward layers: shapes, values, gradients (finite differences, float64), modes,
describe/build and state_dict round trips, and that one SGD step moves every parameter."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import azuraforge_core as af
from azuraforge_core import ShapeError, Tensor, no_grad
from azuraforge_core.testing import assert_grad_close, numerical_grad
from azuraforge_learner.layers import (
    GELU,
    AvgPool2D,
    BatchNorm1d,
    BatchNorm2d,
    Conv2D,
    Dropout,
    Embedding,
    Flatten,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from azuraforge_learner.module import Module, Sequential, build
from azuraforge_learner.recurrent import GRU, LSTM


# --------------------------------------------------------------------- helpers
def to_float64(module: Module) -> Module:
    for p in module.parameters():
        p.data = p.data.astype(np.float64)
    return module


def randn(*shape: int, seed: int = 1, grad: bool = True) -> Tensor:
    data = np.random.default_rng(seed).standard_normal(shape)
    return Tensor(data, requires_grad=grad, dtype=np.float64)


def check_grads(module: Module, inputs: list[Tensor], call=None, seed: int = 0) -> None:
    """Every parameter's and input's gradient of sum(out * R) matches finite differences."""
    call = call or (lambda *xs: module(*xs))
    out = call(*inputs)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(weights, dtype=np.float64)).sum().backward()
    targets = list(module.named_parameters())
    targets += [(f"input{k}", t) for k, t in enumerate(inputs) if t.requires_grad]
    assert targets
    for name, t in targets:
        original = t.data

        def f(arr: np.ndarray, t: Tensor = t) -> float:
            t.data = arr
            with no_grad():
                return float((call(*inputs).data * weights).sum())

        numeric = numerical_grad(f, original)
        t.data = original
        assert_grad_close(t.grad, numeric, atol=1e-7, rtol=1e-5, name=name)


# ------------------------------------------------------------------------ Linear
def test_linear_forward_matches_numpy_and_keeps_batch_axes() -> None:
    af.manual_seed(0)
    layer = Linear(4, 3)
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    layer.bias.data = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    out = layer(x)
    assert out.shape == (5, 3)
    np.testing.assert_allclose(out.data, x @ layer.weight.data + layer.bias.data, rtol=1e-6)
    assert layer(np.zeros((2, 7, 4), dtype=np.float32)).shape == (2, 7, 3)
    assert layer.weight.shape == (4, 3)
    no_bias = Linear(4, 3, bias=False)
    assert [n for n, _ in no_bias.named_parameters()] == ["weight"]


def test_linear_gradients() -> None:
    af.manual_seed(0)
    check_grads(to_float64(Linear(3, 2)), [randn(4, 3)])
    check_grads(to_float64(Linear(3, 2, bias=False)), [randn(2, 2, 3)])


def test_linear_wrong_feature_count_names_both_numbers() -> None:
    layer = Linear(4, 3)
    with pytest.raises(ShapeError, match=r"expected 4 input features.*got 3"):
        layer(np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="in_features"):
        Linear(0, 3)


def test_linear_he_initialisation() -> None:
    af.manual_seed(0)
    layer = Linear(400, 300)
    w = layer.weight.numpy()
    assert w.dtype == np.float32
    assert abs(w.std() - math.sqrt(2 / 400)) < 0.05 * math.sqrt(2 / 400)
    assert abs(w.mean()) < 0.01
    np.testing.assert_array_equal(layer.bias.numpy(), 0.0)
    af.manual_seed(0)
    np.testing.assert_array_equal(Linear(400, 300).weight.numpy(), w)  # manual_seed decides


# ------------------------------------------------------------------------ Conv2D
def naive_conv(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> np.ndarray:
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, h, wd = x.shape
    o, _, kh, kw = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    out = np.zeros((n, o, oh, ow))
    for i in range(oh):
        for j in range(ow):
            patch = x[:, :, i * stride : i * stride + kh, j * stride : j * stride + kw]
            out[:, :, i, j] = np.tensordot(patch, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out


def test_conv2d_forward_matches_naive_loop() -> None:
    af.manual_seed(0)
    layer = to_float64(Conv2D(2, 3, kernel_size=3, stride=2, padding=1))
    layer.bias.data = np.array([0.1, -0.2, 0.3])
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 6))
    out = layer(Tensor(x, dtype=np.float64))
    assert out.shape == (2, 3, 4, 3)
    np.testing.assert_allclose(
        out.data, naive_conv(x, layer.weight.data, layer.bias.data, 2, 1), rtol=1e-10
    )


def test_conv2d_gradients_and_errors() -> None:
    af.manual_seed(0)
    check_grads(to_float64(Conv2D(2, 2, kernel_size=(2, 3), padding=1)), [randn(2, 2, 4, 4)])
    check_grads(to_float64(Conv2D(1, 2, 2, stride=2, bias=False)), [randn(1, 1, 4, 4)])
    layer = Conv2D(3, 4, 3)
    assert layer.weight.shape == (4, 3, 3, 3)
    with pytest.raises(ShapeError, match=r"\(batch, 3, height, width\).*\(2, 1, 8, 8\)"):
        layer(np.zeros((2, 1, 8, 8), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"\(batch, 3"):
        layer(np.zeros((3, 8, 8), dtype=np.float32))
    with pytest.raises(ValueError, match="kernel_size"):
        Conv2D(1, 1, 0)


# ---------------------------------------------------------------------- pooling
def test_pooling_values_shapes_and_gradients() -> None:
    x = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)
    mx = MaxPool2D(2)(Tensor(x, dtype=np.float64))
    av = AvgPool2D(2)(Tensor(x, dtype=np.float64))
    assert mx.shape == av.shape == (1, 2, 2, 2)
    np.testing.assert_array_equal(mx.data[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(av.data[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert MaxPool2D(3, stride=1)(np.zeros((2, 3, 5, 5), dtype=np.float32)).shape == (2, 3, 3, 3)
    check_grads(MaxPool2D(2), [randn(2, 2, 4, 4)])
    check_grads(AvgPool2D((2, 3), stride=1), [randn(1, 2, 4, 5)])
    with pytest.raises(ShapeError, match="4-D"):
        MaxPool2D(2)(np.zeros((4, 4), dtype=np.float32))


def test_flatten() -> None:
    x = randn(2, 3, 4, 5)
    assert Flatten()(x).shape == (2, 60)
    assert Flatten(start_axis=2)(x).shape == (2, 3, 20)
    check_grads(Flatten(), [randn(2, 3, 2)])


# ---------------------------------------------------------------------- Dropout
def test_dropout_train_versus_eval() -> None:
    af.manual_seed(0)
    layer = Dropout(0.3)
    x = Tensor(np.ones((200, 100), dtype=np.float32), requires_grad=True)
    out = layer(x)
    dropped = float((out.data == 0).mean())
    assert 0.27 < dropped < 0.33
    np.testing.assert_allclose(out.data[out.data != 0], 1 / 0.7, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.data, out.data)  # gradient is the same mask
    layer.eval()
    same = layer(x)
    np.testing.assert_array_equal(same.data, x.data)
    with pytest.raises(ValueError, match="p must be"):
        Dropout(1.5)


def test_dropout_gradient_with_fixed_mask() -> None:
    layer = Dropout(0.5)

    def call(x: Tensor) -> Tensor:
        af.manual_seed(7)  # the same mask on every evaluation
        return layer(x)

    check_grads(layer, [randn(3, 4)], call=call)


# -------------------------------------------------------------------- BatchNorm
@pytest.mark.parametrize("shape", [(8, 3), (6, 3, 4)])
def test_batchnorm1d_training_normalises_and_updates_running_stats(shape) -> None:
    layer = BatchNorm1d(3)
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
    out = layer(x).data
    axes = (0,) if len(shape) == 2 else (0, 2)
    np.testing.assert_allclose(out.mean(axis=axes), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.var(axis=axes), 1.0, atol=1e-3)
    n = x.size // 3
    expected_mean = 0.9 * 0.0 + 0.1 * x.mean(axis=axes)
    expected_var = 0.9 * 1.0 + 0.1 * x.var(axis=axes) * n / (n - 1)  # unbiased, like PyTorch
    np.testing.assert_allclose(layer.running_mean.numpy(), expected_mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var.numpy(), expected_var, rtol=1e-5)


def test_batchnorm_eval_uses_running_stats() -> None:
    layer = BatchNorm1d(2)
    layer.running_mean.data = np.array([1.0, -2.0], dtype=np.float32)
    layer.running_var.data = np.array([4.0, 0.25], dtype=np.float32)
    layer.weight.data = np.array([2.0, 1.0], dtype=np.float32)
    layer.bias.data = np.array([0.5, 0.0], dtype=np.float32)
    layer.eval()
    x = np.array([[3.0, -1.0]], dtype=np.float32)  # a batch of one is fine in eval
    out = layer(x).data
    expected = (x - [1.0, -2.0]) / np.sqrt(np.array([4.0, 0.25]) + 1e-5) * [2.0, 1.0] + [0.5, 0.0]
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    before = layer.running_mean.numpy().copy()
    layer(x)
    np.testing.assert_array_equal(layer.running_mean.numpy(), before)  # eval never updates


def test_batchnorm_gradients_train_and_eval() -> None:
    layer = to_float64(BatchNorm1d(3))
    layer.weight.data = np.array([1.5, -0.5, 2.0])
    layer.bias.data = np.array([0.1, 0.2, -0.3])
    check_grads(layer, [randn(5, 3)])
    layer.zero_grad()
    check_grads(layer, [randn(4, 3, 2, seed=2)])
    layer.eval()
    layer.zero_grad()
    check_grads(layer, [randn(4, 3, seed=3)])
    bn2 = to_float64(BatchNorm2d(2))
    bn2.weight.data = np.array([0.7, 1.3])
    check_grads(bn2, [randn(2, 2, 3, 3)])


def test_batchnorm2d_per_channel_statistics() -> None:
    layer = BatchNorm2d(3, momentum=0.5)
    x = np.random.default_rng(0).standard_normal((4, 3, 5, 5)).astype(np.float32) * 2 + 1
    out = layer(x).data
    np.testing.assert_allclose(out.mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(layer.running_mean.numpy(), 0.5 * x.mean(axis=(0, 2, 3)), rtol=1e-5)


def test_batchnorm_errors() -> None:
    with pytest.raises(ShapeError, match=r"BatchNorm1d\(3\).*3 channels.*\(4, 2\)"):
        BatchNorm1d(3)(np.zeros((4, 2), dtype=np.float32))
    with pytest.raises(ShapeError, match="height, width"):
        BatchNorm2d(3)(np.zeros((4, 3), dtype=np.float32))
    with pytest.raises(ValueError, match="more than one value per channel"):
        BatchNorm1d(3)(np.zeros((1, 3), dtype=np.float32))


def test_batchnorm_without_affine_has_no_parameters() -> None:
    layer = BatchNorm1d(2, affine=False)
    assert layer.parameters() == []
    assert set(layer.state_dict()) == {"running_mean", "running_var"}
    out = layer(np.array([[1.0, 2.0], [3.0, 6.0]], dtype=np.float32)).data
    np.testing.assert_allclose(out, [[-1, -1], [1, 1]], atol=1e-4)


# -------------------------------------------------------------------- LayerNorm
def test_layernorm_values_and_gradients() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    layer = to_float64(LayerNorm(5))
    out = layer(Tensor(x, dtype=np.float64)).data
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-10)
    layer.weight.data = np.linspace(0.5, 1.5, 5)
    layer.bias.data = np.linspace(-1, 1, 5)
    check_grads(layer, [randn(2, 3, 5)])
    two = to_float64(LayerNorm([3, 4]))
    two.weight.data = np.random.default_rng(1).standard_normal((3, 4))
    check_grads(two, [randn(2, 3, 4)])
    with pytest.raises(ShapeError, match=r"\(3, 4\)"):
        two(np.zeros((2, 4, 3), dtype=np.float32))


# -------------------------------------------------------------------- Embedding
def test_embedding_lookup_and_scatter_add_gradient() -> None:
    af.manual_seed(0)
    layer = Embedding(5, 3)
    ids = np.array([[0, 2, 2], [4, 2, 1]])
    out = layer(ids)
    assert out.shape == (2, 3, 3)
    np.testing.assert_array_equal(out.data[1, 0], layer.weight.data[4])
    out.sum().backward()
    grad = layer.weight.grad.numpy()
    np.testing.assert_array_equal(grad[:, 0], [1, 1, 3, 0, 1])  # id 2 used three times
    np.testing.assert_array_equal(layer(ids.astype(np.float32)).data, out.data)  # whole floats ok
    emb = to_float64(Embedding(4, 2))
    check_grads(emb, [], call=lambda: emb(np.array([3, 1, 3, 0])))


def test_embedding_errors() -> None:
    layer = Embedding(5, 3)
    with pytest.raises(IndexError, match=r"\[0, 4\].*from 0 to 5"):
        layer(np.array([0, 5]))
    with pytest.raises(ValueError, match="whole numbers"):
        layer(np.array([0.5]))


# ------------------------------------------------------------------- activations
@pytest.mark.parametrize(
    ("layer", "fn"),
    [
        (ReLU(), lambda x: np.maximum(x, 0)),
        (LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x)),
        (Tanh(), np.tanh),
        (Sigmoid(), lambda x: 1 / (1 + np.exp(-x))),
        (
            GELU(),
            lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
        ),
        (Softmax(axis=-1), lambda x: np.exp(x) / np.exp(x).sum(-1, keepdims=True)),
        (Identity(), lambda x: x),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Module) else "",
)
def test_activations_values_and_gradients(layer: Module, fn) -> None:
    x = np.random.default_rng(0).standard_normal((3, 4)) + 0.05  # keep clear of ReLU's kink
    np.testing.assert_allclose(
        layer(Tensor(x, dtype=np.float64)).data, fn(x), rtol=1e-10, atol=1e-12
    )
    check_grads(layer, [randn(3, 4, seed=5)])


# --------------------------------------------------- describe/build and state dicts
ALL_LAYERS = [
    lambda: Linear(4, 3, bias=False),
    lambda: Conv2D(2, 3, kernel_size=(3, 2), stride=(2, 1), padding=1),
    lambda: MaxPool2D(2, stride=1),
    lambda: AvgPool2D([2, 2]),
    lambda: Flatten(start_axis=1),
    lambda: Dropout(0.25),
    lambda: BatchNorm1d(4, eps=1e-3, momentum=0.2),
    lambda: BatchNorm2d(3, affine=False),
    lambda: LayerNorm([2, 3], eps=1e-4),
    lambda: Embedding(10, 4),
    lambda: LSTM(3, 4, num_layers=2, return_sequences=True),
    lambda: GRU(3, 4),
    lambda: ReLU(),
    lambda: LeakyReLU(0.3),
    lambda: Tanh(),
    lambda: Sigmoid(),
    lambda: GELU(),
    lambda: Softmax(axis=1),
    lambda: Identity(),
    lambda: Sequential(Linear(2, 3), ReLU(), Sequential(Linear(3, 1), Sigmoid())),
]


@pytest.mark.parametrize("make", ALL_LAYERS, ids=lambda m: type(m()).__name__)
def test_describe_build_round_trip(make) -> None:
    layer = make()
    desc = json.loads(json.dumps(layer.describe()))  # must be plain JSON
    rebuilt = build(desc)
    assert type(rebuilt) is type(layer)
    assert rebuilt.describe() == desc
    assert sorted(rebuilt.state_dict()) == sorted(layer.state_dict())
    for name, value in layer.state_dict().items():
        assert rebuilt.state_dict()[name].shape == value.shape, name


def test_state_dict_round_trip_includes_buffers() -> None:
    af.manual_seed(0)
    model = Sequential(Linear(3, 4), BatchNorm1d(4), ReLU(), Linear(4, 2))
    x = np.random.default_rng(0).standard_normal((8, 3)).astype(np.float32)
    model(x)  # training step: running stats move away from their defaults
    state = model.state_dict()
    assert {"1.running_mean", "1.running_var", "1.weight", "0.weight", "3.bias"} <= set(state)
    assert not np.allclose(state["1.running_mean"], 0.0)
    af.manual_seed(1)
    other = build(model.describe())
    other.load_state_dict(state)
    model.eval()
    other.eval()
    np.testing.assert_array_equal(model(x).data, other(x).data)
    np.testing.assert_array_equal(other.state_dict()["1.running_var"], state["1.running_var"])


def test_train_eval_reach_nested_modules() -> None:
    inner = Sequential(Dropout(0.5), BatchNorm1d(3))
    model = Sequential(Linear(3, 3), inner, LSTM(1, 2))
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    x = np.ones((4, 3), dtype=np.float32)
    model.eval()
    a = Sequential(*model.layers[:2])(x).data
    b = Sequential(*model.layers[:2])(x).data
    np.testing.assert_array_equal(a, b)  # nested Dropout is off in eval


# ------------------------------------------------------------- one SGD step moves all
def _loss_for(layer: Module) -> Tensor:
    rng = np.random.default_rng(0)
    if isinstance(layer, Embedding):
        out = layer(np.array([[0, 1, 2, 3], [4, 5, 6, 7]]))
    elif isinstance(layer, Conv2D):
        out = layer(rng.standard_normal((2, 2, 5, 5)).astype(np.float32))
    elif isinstance(layer, (LSTM, GRU)):
        out = layer(rng.standard_normal((2, 5, 3)).astype(np.float32))
    elif isinstance(layer, BatchNorm2d):
        out = layer(rng.standard_normal((2, 3, 4, 4)).astype(np.float32))
    elif isinstance(layer, LayerNorm):
        out = layer(rng.standard_normal((4, 2, 3)).astype(np.float32))
    else:
        out = layer(rng.standard_normal((6, 4)).astype(np.float32))
    # A target-free loss that depends on every output element non-trivially.
    target = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    return ((out - target) ** 2).mean()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Linear(4, 3),
        lambda: Conv2D(2, 3, 3, padding=1),
        lambda: BatchNorm1d(4),
        lambda: BatchNorm2d(3),
        lambda: LayerNorm([2, 3]),
        lambda: Embedding(10, 4),
        lambda: LSTM(3, 4, num_layers=2, return_sequences=True),
        lambda: GRU(3, 4, num_layers=2),
    ],
    ids=lambda m: type(m()).__name__,
)
def test_one_sgd_step_moves_every_parameter(make) -> None:
    af.manual_seed(0)
    layer = make()
    params = layer.parameters()
    assert params
    before = [p.numpy().copy() for p in params]
    _loss_for(layer).backward()
    for p in params:
        p.data -= 0.1 * p.grad.data
    for (name, p), old in zip(layer.named_parameters(), before):
        assert not np.allclose(old, p.numpy()), f"{type(layer).__name__}.{name} did not move"


def test_small_cnn_trains_end_to_end() -> None:
    """Conv -> BN -> ReLU -> pool -> flatten -> dense learns to separate two image classes."""
    af.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 1, 6, 6)).astype(np.float32) * 0.3
    labels = np.arange(32) % 2
    x[labels == 1, :, :3, :] += 1.0  # class 1 is bright on top
    model = Sequential(
        Conv2D(1, 4, 3, padding=1), BatchNorm2d(4), ReLU(), MaxPool2D(2), Flatten(), Linear(36, 2)
    )
    losses = []
    for _ in range(40):
        loss = af.cross_entropy(model(x), labels)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad.data
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0]
    model.eval()
    accuracy = float((model(x).data.argmax(axis=1) == labels).mean())
    assert accuracy > 0.9


# ---------------------------------------------------------------- fusion
def _unfused(model: Sequential, x: Tensor) -> Tensor:
    for layer in model.layers:  # calling the layers one by one never fuses
        x = layer(x)
    return x


def test_sequential_fuses_linear_and_conv_with_relu_without_changing_results() -> None:
    af.manual_seed(3)
    model = Sequential(
        Conv2D(2, 3, 3, padding=1), ReLU(), MaxPool2D(2), Flatten(),
        Linear(12, 5), ReLU(), Linear(5, 2),
    )  # fmt: skip
    x = randn(4, 2, 4, 4, grad=False)
    out = model(x)
    # Conv2D+ReLU+MaxPool2D and Linear+ReLU each became one node: the graph is conv-pool,
    # flatten, linear, linear.
    assert _node_kinds(out) == ["Linear", "Linear", "Reshape", "Conv2dMaxPool"]
    out.sum().backward()
    fused_grads = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    reference = _unfused(model, x)
    reference.sum().backward()
    np.testing.assert_array_equal(out.numpy(), reference.numpy())
    for got, want in zip(fused_grads, [p.grad.numpy() for p in model.parameters()], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def _node_kinds(out: Tensor) -> list[str]:
    kinds = []
    node = out
    while node._ctx is not None:
        kinds.append(type(node._ctx).__name__)
        node = node._ctx.inputs[0]
    return kinds


@pytest.mark.parametrize(
    "conv_stride,pool,kinds",
    [
        (1, MaxPool2D(3), ["Conv2dMaxPool"]),  # any square pool whose stride is its size
        (2, MaxPool2D(2), ["MaxPool2d", "Conv2d"]),  # strided conv: conv+ReLU, then the pool
        (1, MaxPool2D(2, stride=1), ["MaxPool2d", "Conv2d"]),  # overlapping windows
        (1, MaxPool2D((2, 1)), ["MaxPool2d", "Conv2d"]),  # not square
    ],
)
def test_sequential_fuses_conv_relu_pool_only_where_it_can(
    conv_stride: int, pool: MaxPool2D, kinds: list[str]
) -> None:
    af.manual_seed(6)
    model = Sequential(Conv2D(2, 3, 3, stride=conv_stride, padding=1), ReLU(), pool)
    x = randn(3, 2, 9, 8, grad=False)
    out = model(x)
    assert _node_kinds(out) == kinds
    out.sum().backward()
    fused_grads = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    reference = _unfused(model, x)
    reference.sum().backward()
    np.testing.assert_array_equal(out.numpy(), reference.numpy())
    for got, want in zip(fused_grads, [p.grad.numpy() for p in model.parameters()], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_sequential_fused_relu_gradients_match_finite_differences() -> None:
    af.manual_seed(4)
    model = to_float64(Sequential(Linear(3, 4), ReLU(), Linear(4, 1)))
    x = randn(6, 3, seed=5, grad=False)
    x.data = x.data.astype(np.float64)
    model(x).sum().backward()
    w = model.layers[0].weight

    def loss(values: np.ndarray) -> float:
        saved = w.data
        w.data = values
        try:
            return float(model(x).sum().item())
        finally:
            w.data = saved

    assert_grad_close(w.grad.numpy(), numerical_grad(loss, w.data.copy()))


def test_sequential_does_not_fuse_subclasses_that_change_forward() -> None:
    class HalfReLU(ReLU):
        def forward(self, x: object) -> Tensor:
            return super().forward(x) * 0.5

    af.manual_seed(5)
    model = Sequential(Linear(3, 4), HalfReLU())
    x = randn(2, 3, grad=False)
    np.testing.assert_allclose(model(x).numpy(), _unfused(model, x).numpy())
    np.testing.assert_allclose(
        model(x).numpy(), 0.5 * np.maximum(model.layers[0](x).numpy(), 0), rtol=1e-6
    )
