"""Optimizers: one-step (and two-step) updates against formulas written here, loss decrease,
state round trips, clipping, and the no-in-place-on-grads rule."""

from __future__ import annotations

import numpy as np
import pytest

from azuraforge_core import Tensor
from azuraforge_learner import Module, Parameter
from azuraforge_learner.optim import SGD, Adam, AdamW, RMSprop, clip_grad_norm, get_optimizer

RNG = np.random.default_rng(1)
W0 = RNG.normal(size=(3, 2))
G1 = RNG.normal(size=(3, 2))
G2 = RNG.normal(size=(3, 2))


def param(value: np.ndarray = W0) -> Parameter:
    return Parameter(value.copy(), dtype=np.float64)


def two_steps(opt_cls, **kw) -> np.ndarray:
    p = param()
    opt = opt_cls([p], **kw)
    for g in (G1, G2):
        p.grad = Tensor(g.copy(), dtype=np.float64)
        opt.step()
    return p.numpy()


def test_sgd_plain_and_weight_decay() -> None:
    np.testing.assert_allclose(two_steps(SGD, lr=0.1), W0 - 0.1 * G1 - 0.1 * G2)
    w1 = W0 - 0.1 * (G1 + 0.01 * W0)
    w2 = w1 - 0.1 * (G2 + 0.01 * w1)
    np.testing.assert_allclose(two_steps(SGD, lr=0.1, weight_decay=0.01), w2)


def test_sgd_momentum_and_nesterov() -> None:
    lr, m = 0.1, 0.9
    b1 = G1
    w1 = W0 - lr * b1
    b2 = m * b1 + G2
    np.testing.assert_allclose(two_steps(SGD, lr=lr, momentum=m), w1 - lr * b2)
    w1n = W0 - lr * (G1 + m * b1)
    w2n = w1n - lr * (G2 + m * b2)
    np.testing.assert_allclose(two_steps(SGD, lr=lr, momentum=m, nesterov=True), w2n)
    with pytest.raises(ValueError, match="nesterov"):
        SGD([param()], lr=0.1, nesterov=True)


def adam_reference(lr, b1, b2, eps, wd=0.0, decoupled=False) -> np.ndarray:
    w, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for t, g in enumerate((G1, G2), 1):
        if decoupled:
            w = w * (1 - lr * wd)
        else:
            g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        v_hat = v / (1 - b2**t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
    return w


def test_adam_bias_correction_matches_formula() -> None:
    got = two_steps(Adam, lr=0.01, betas=(0.8, 0.95), eps=1e-6)
    np.testing.assert_allclose(got, adam_reference(0.01, 0.8, 0.95, 1e-6), rtol=1e-12)
    # first step of Adam moves every weight by about lr (bias correction at work)
    p = param()
    p.grad = Tensor(G1, dtype=np.float64)
    Adam([p], lr=0.01).step()
    np.testing.assert_allclose(np.abs(p.numpy() - W0), 0.01, rtol=1e-4)


def test_adam_l2_vs_adamw_decoupled() -> None:
    np.testing.assert_allclose(
        two_steps(Adam, lr=0.01, weight_decay=0.1),
        adam_reference(0.01, 0.9, 0.999, 1e-8, 0.1),
        rtol=1e-12,
    )
    np.testing.assert_allclose(
        two_steps(AdamW, lr=0.01, weight_decay=0.1),
        adam_reference(0.01, 0.9, 0.999, 1e-8, 0.1, decoupled=True),
        rtol=1e-12,
    )


def test_rmsprop_matches_formula() -> None:
    lr, a, eps = 0.01, 0.9, 1e-8
    w, v = W0.copy(), np.zeros_like(W0)
    for g in (G1, G2):
        v = a * v + (1 - a) * g * g
        w = w - lr * g / (np.sqrt(v) + eps)
    np.testing.assert_allclose(two_steps(RMSprop, lr=lr, alpha=a, eps=eps), w, rtol=1e-12)
    # with momentum
    w, v, b = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for g in (G1, G2):
        v = a * v + (1 - a) * g * g
        b = 0.5 * b + g / (np.sqrt(v) + eps)
        w = w - lr * b
    np.testing.assert_allclose(
        two_steps(RMSprop, lr=lr, alpha=a, eps=eps, momentum=0.5), w, rtol=1e-12
    )
    # centered
    w, v, ga = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for g in (G1, G2):
        v = a * v + (1 - a) * g * g
        ga = a * ga + (1 - a) * g
        w = w - lr * g / (np.sqrt(v - ga * ga) + eps)
    np.testing.assert_allclose(
        two_steps(RMSprop, lr=lr, alpha=a, eps=eps, centered=True), w, rtol=1e-12
    )


class Quadratic(Module):
    """loss = mean((x @ w - y)^2) for a fixed random problem."""

    def __init__(self) -> None:
        super().__init__()
        self.w = Parameter(np.zeros((4, 1)))

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.w


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("sgd", {"lr": 0.05}),
        ("sgd", {"lr": 0.02, "momentum": 0.9, "nesterov": True}),
        ("adam", {"lr": 0.05}),
        ("adamw", {"lr": 0.05}),
        ("rmsprop", {"lr": 0.05}),
    ],
)
def test_every_optimizer_decreases_the_loss(name: str, kw: dict) -> None:
    rng = np.random.default_rng(2)
    X = Tensor(rng.normal(size=(64, 4)))
    y = X.numpy() @ np.array([[1.0], [-2.0], [0.5], [3.0]])
    model = Quadratic()
    opt = get_optimizer(name, model.named_parameters(), **kw)
    losses = []
    for _ in range(60):
        loss = ((model(X) - y) ** 2).mean()
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.1 * losses[0]


def test_names_from_named_parameters_or_positions() -> None:
    model = Quadratic()
    assert [n for n, _ in SGD(model.named_parameters(), lr=0.1).named_params] == ["w"]
    assert [n for n, _ in SGD(model, lr=0.1).named_params] == ["w"]
    assert [n for n, _ in SGD([param(), param()], lr=0.1).named_params] == ["0", "1"]
    with pytest.raises(ValueError, match="twice"):
        p = param()
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="empty"):
        SGD([], lr=0.1)


def test_params_without_grad_are_skipped() -> None:
    a, b = param(), param()
    a.grad = Tensor(G1, dtype=np.float64)
    opt = Adam([a, b], lr=0.1)
    opt.step()
    np.testing.assert_array_equal(b.numpy(), W0)
    assert "1" not in opt.state and opt.state["0"]["step"] == 1


def test_shared_gradient_arrays_are_never_written() -> None:
    shared = G1.copy()
    for cls, kw in [
        (SGD, {"momentum": 0.9, "weight_decay": 0.1}),
        (Adam, {}),
        (AdamW, {}),
        (RMSprop, {"centered": True}),
    ]:
        a, b = param(), param()
        a.grad = Tensor._make(shared)
        b.grad = Tensor._make(shared)
        opt = cls([a, b], lr=0.1, **kw)
        opt.step()
        opt.step()
        np.testing.assert_array_equal(shared, G1)
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_update_is_in_place_on_data() -> None:
    p = param()
    buf = p.data
    p.grad = Tensor(G1, dtype=np.float64)
    Adam([p], lr=0.1).step()
    assert p.data is buf


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW, RMSprop])
def test_state_dict_round_trip_continues_identically(cls) -> None:
    kw = {"lr": 0.05}
    if cls is SGD:
        kw["momentum"] = 0.9
    if cls is RMSprop:
        kw["momentum"] = 0.3
    model_a = Quadratic()
    model_a.w.data[...] = RNG.normal(size=(4, 1))
    opt_a = cls(model_a.named_parameters(), **kw)
    grads = [RNG.normal(size=(4, 1)) for _ in range(4)]
    for g in grads[:2]:
        model_a.w.grad = Tensor(g, dtype=np.float64)
        opt_a.step()
    sd = opt_a.state_dict()
    assert set(sd["state"]) == {"w"}
    # fresh model + fresh optimizer (different lr, to check hyperparameters load too)
    model_b = Quadratic()
    model_b.load_state_dict(model_a.state_dict())
    opt_b = cls(model_b.named_parameters(), lr=1.0)
    opt_b.load_state_dict(sd)
    assert opt_b.lr == opt_a.lr
    for g in grads[2:]:
        for m, o in ((model_a, opt_a), (model_b, opt_b)):
            m.w.grad = Tensor(g, dtype=np.float64)
            o.step()
    np.testing.assert_array_equal(model_a.w.numpy(), model_b.w.numpy())
    # the state_dict holds copies: later steps do not change a saved one
    before = {k: np.array(v) for k, v in sd["state"]["w"].items()}
    opt_a.step()
    for k, v in before.items():
        np.testing.assert_array_equal(np.asarray(sd["state"]["w"][k]), v)


def test_load_state_dict_errors() -> None:
    p = param()
    p.grad = Tensor(G1, dtype=np.float64)
    opt = Adam([p], lr=0.1)
    opt.step()
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="Adam optimizer state into SGD"):
        SGD([param()], lr=0.1).load_state_dict(sd)
    with pytest.raises(KeyError, match="unknown parameters"):
        Adam([("other", param())], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="shape"):
        Adam([Parameter(np.zeros(5))], lr=0.1).load_state_dict(sd)


def test_clip_grad_norm_returns_norm_and_makes_new_arrays() -> None:
    a, b = Parameter(np.zeros(2), dtype=np.float64), Parameter(np.zeros(1), dtype=np.float64)
    ga, gb = np.array([3.0, 0.0]), np.array([4.0])
    a.grad, b.grad = Tensor._make(ga), Tensor._make(gb)
    norm = clip_grad_norm([a, b], max_norm=1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(a.grad.numpy(), [0.6, 0.0], rtol=1e-5)
    np.testing.assert_allclose(b.grad.numpy(), [0.8], rtol=1e-5)
    np.testing.assert_array_equal(ga, [3.0, 0.0])  # original arrays untouched
    # below the limit nothing changes
    assert clip_grad_norm([a, b], max_norm=10.0) == pytest.approx(1.0, rel=1e-5)
    with pytest.raises(ValueError, match="max_norm"):
        clip_grad_norm([a], 0)


def test_max_grad_norm_option_equals_clipping_first() -> None:
    g = G1 * 10
    p1, p2 = param(), param()
    p1.grad = Tensor(g, dtype=np.float64)
    p2.grad = Tensor(g, dtype=np.float64)
    clip_grad_norm([p1], 1.0)
    SGD([p1], lr=0.1).step()
    opt = SGD([p2], lr=0.1, max_grad_norm=1.0)
    opt.step()
    np.testing.assert_allclose(p1.numpy(), p2.numpy(), rtol=1e-12)
    assert opt.last_grad_norm == pytest.approx(np.linalg.norm(g))
    np.testing.assert_array_equal(p2.grad.numpy(), g)  # the option never rewrites grads


def test_float32_parameters_stay_float32() -> None:
    p = Parameter(np.ones((2, 2), np.float32))
    p.grad = Tensor(np.ones((2, 2), np.float32))
    for cls in (SGD, Adam, AdamW, RMSprop):
        cls([p], lr=0.1).step()
        assert p.dtype == np.float32
