"""LSTM and GRU: the fused ops against unfused references and finite differences."""

from __future__ import annotations

import itertools
import json
import warnings

import numpy as np
import pytest

import azuraforge_core as af
from azuraforge_core import ShapeError, Tensor, no_grad
from azuraforge_core.testing import assert_grad_close, numerical_grad
from azuraforge_learner.layers import Linear
from azuraforge_learner.module import Sequential, build
from azuraforge_learner.recurrent import GRU, LSTM


# --------------------------------------------------------------------- helpers
def to_float64(module) -> None:
    for p in module.parameters():
        p.data = p.data.astype(np.float64)


def check_grads(module, inputs: list[Tensor], call=None, seed: int = 0) -> None:
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


def randn(*shape: int, seed: int = 1, grad: bool = True) -> Tensor:
    data = np.random.default_rng(seed).standard_normal(shape)
    return Tensor(data, requires_grad=grad, dtype=np.float64)


# ------------------------------------------------------------ unfused references
def reference_lstm(model: LSTM, x: Tensor, h0=None, c0=None) -> Tensor:
    """A plain LSTM from elementary af ops, reading the model's weights (gates i, f, g, o)."""
    hid = model.hidden_size
    bsz, steps, _ = x.shape
    seq = x
    for layer in range(model.num_layers):
        w_ih = getattr(model, f"weight_ih_l{layer}")
        w_hh = getattr(model, f"weight_hh_l{layer}")
        b = getattr(model, f"bias_l{layer}")
        h = h0[layer] if h0 is not None else Tensor(np.zeros((bsz, hid)), dtype=np.float64)
        c = c0[layer] if c0 is not None else Tensor(np.zeros((bsz, hid)), dtype=np.float64)
        outs = []
        for t in range(steps):
            gates = seq[:, t, :] @ w_ih + h @ w_hh + b
            i = gates[:, :hid].sigmoid()
            f = gates[:, hid : 2 * hid].sigmoid()
            g = gates[:, 2 * hid : 3 * hid].tanh()
            o = gates[:, 3 * hid :].sigmoid()
            c = f * c + i * g
            h = o * c.tanh()
            outs.append(h)
        seq = af.stack(outs, axis=1)
    return seq if model.return_sequences else seq[:, -1, :]


def reference_gru(model: GRU, x: Tensor, h0=None) -> Tensor:
    hid = model.hidden_size
    bsz, steps, _ = x.shape
    seq = x
    for layer in range(model.num_layers):
        w_ih = getattr(model, f"weight_ih_l{layer}")
        w_hh = getattr(model, f"weight_hh_l{layer}")
        b_ih = getattr(model, f"bias_ih_l{layer}")
        b_hh = getattr(model, f"bias_hh_l{layer}")
        h = h0[layer] if h0 is not None else Tensor(np.zeros((bsz, hid)), dtype=np.float64)
        outs = []
        for t in range(steps):
            gi = seq[:, t, :] @ w_ih + b_ih
            gh = h @ w_hh + b_hh
            r = (gi[:, :hid] + gh[:, :hid]).sigmoid()
            z = (gi[:, hid : 2 * hid] + gh[:, hid : 2 * hid]).sigmoid()
            n = (gi[:, 2 * hid :] + r * gh[:, 2 * hid :]).tanh()
            h = (1 - z) * n + z * h
            outs.append(h)
        seq = af.stack(outs, axis=1)
    return seq if model.return_sequences else seq[:, -1, :]


def randomise(model, seed: int = 3) -> None:
    """Non-trivial biases so every term of the gates is exercised."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        p.data = p.data + 0.3 * rng.standard_normal(p.shape)


# ------------------------------------------------------------------------ LSTM
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_matches_unfused_reference(num_layers: int, return_sequences: bool) -> None:
    af.manual_seed(0)
    model = LSTM(3, 4, num_layers=num_layers, return_sequences=return_sequences)
    to_float64(model)
    randomise(model)
    x = randn(2, 5, 3)
    out = model(x)
    ref = reference_lstm(model, x)
    expected_shape = (2, 5, 4) if return_sequences else (2, 4)
    assert out.shape == expected_shape
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-10, atol=1e-12)
    # gradients agree with autograd through the reference too
    weights = np.random.default_rng(9).standard_normal(out.shape)
    (out * weights).sum().backward()
    fused = {n: p.grad.data.copy() for n, p in model.named_parameters()}
    fused_x = x.grad.data.copy()
    model.zero_grad()
    x.grad = None
    (reference_lstm(model, x) * weights).sum().backward()
    for n, p in model.named_parameters():
        np.testing.assert_allclose(fused[n], p.grad.data, rtol=1e-9, atol=1e-12, err_msg=n)
    np.testing.assert_allclose(fused_x, x.grad.data, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_gradients_match_finite_differences(num_layers: int, return_sequences: bool) -> None:
    af.manual_seed(1)
    model = LSTM(2, 3, num_layers=num_layers, return_sequences=return_sequences)
    to_float64(model)
    randomise(model)
    check_grads(model, [randn(2, 4, 2)])


def test_lstm_cpu_and_gpu_ways_agree(monkeypatch) -> None:
    """On numpy the LSTM's forward also computes the factors backward needs, step by step,
    and backward sums the input and weight gradients inside its loop (in row blocks, at
    this size), and its gates go through exp; CuPy gets whole-sequence passes, a few big
    products and tanh gates instead. Every mix of them on the same float64 model: the same
    outputs and gradients, inputs included, also for a second backward through a retained
    graph."""
    from azuraforge_learner import recurrent

    af.manual_seed(4)
    model = LSTM(5, 48, num_layers=2, return_sequences=True)
    to_float64(model)
    randomise(model)
    x = randn(128, 6, 5)
    assert len(recurrent._row_blocks(4 * 48, 128, 48 + 48 + 1)) > 1  # layer 2 is split
    weights = np.random.default_rng(5).standard_normal((128, 6, 48))
    results = []
    ways = itertools.product((True, False), repeat=3)
    for factors, in_loop, by_exp in ways:
        monkeypatch.setattr(recurrent, "_FACTORS_IN_FORWARD", factors)
        monkeypatch.setattr(recurrent, "_GRADS_IN_LOOP", in_loop)
        monkeypatch.setattr(recurrent, "_GATES_BY_EXP", by_exp)
        model.zero_grad()
        x.grad = None
        out = model(x)
        loss = (out * weights).sum()
        loss.backward(retain_graph=True)
        first = [p.grad.data.copy() for p in model.parameters()] + [x.grad.data.copy()]
        loss.backward()  # accumulates the same gradients again
        second = [p.grad.data / 2 for p in model.parameters()] + [x.grad.data / 2]
        for a, b in zip(first, second, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        results.append([out.data.copy(), *first])
    for got in results[:-1]:
        for a, b in zip(got, results[-1], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_float32_gates_saturate_without_overflow(monkeypatch, cls) -> None:
    """Pre-activations far beyond float32's exp range (|v| ~ 1e4): every gate saturates to
    exactly 0 or 1 (tanh to -1 or 1) both ways, exp and tanh, so both give the same outputs;
    outputs and gradients are finite, and no overflow warning escapes (exp(-v) = inf is
    the right limit of 1 / (1 + exp(-v)))."""
    from azuraforge_learner import recurrent

    rng = np.random.default_rng(7)
    xs = rng.choice([-10.0, 10.0], size=(5, 6, 3)).astype(np.float32)
    outs = []
    for by_exp in (True, False):
        monkeypatch.setattr(recurrent, "_GATES_BY_EXP", by_exp)
        model = cls(3, 4, return_sequences=True)
        for k, p in enumerate(model.parameters()):
            signs = np.random.default_rng(k).choice([-1.0, 1.0], size=p.data.shape)
            p.data[...] = signs * 1e3
        x = Tensor(xs.copy(), requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = model(x)
            out.sum().backward()
        assert out.data.dtype == np.float32
        assert np.all(np.isfinite(out.data)) and np.all(np.abs(out.data) <= 1)
        for p in [x, *model.parameters()]:
            assert np.all(np.isfinite(p.grad.data))
        outs.append(out.data)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_gates_pass_is_chosen_by_numpys_tanh(monkeypatch) -> None:
    """On numpy the gates go through exp unless numpy has its AVX-512 tanh; never on
    another array module; an explicit setting wins either way."""
    from azuraforge_learner import recurrent

    monkeypatch.setattr(recurrent, "_GATES_BY_EXP", None)
    for avx512, expected in ((True, False), (False, True)):
        monkeypatch.setattr(recurrent, "_numpy_has_avx512_tanh", lambda a=avx512: a)
        assert recurrent._gates_by_exp(np) is expected
        assert recurrent._gates_by_exp(object()) is False  # CuPy: tanh, fewer launches
    from numpy._core._multiarray_umath import __cpu_features__

    monkeypatch.undo()
    recurrent._numpy_has_avx512_tanh.cache_clear()
    assert recurrent._numpy_has_avx512_tanh() is bool(__cpu_features__["AVX512_SKX"])
    for forced in (True, False):
        monkeypatch.setattr(recurrent, "_GATES_BY_EXP", forced)
        assert recurrent._gates_by_exp(np) is forced


def test_lstm_initial_state_gradients_and_final_state() -> None:
    af.manual_seed(2)
    model = LSTM(2, 3, num_layers=2, return_sequences=True)
    to_float64(model)
    randomise(model)
    x, h0, c0 = randn(2, 3, 2, seed=1), randn(2, 2, 3, seed=2), randn(2, 2, 3, seed=3)
    out, (h_n, c_n) = model(x, state=(h0, c0), return_state=True)
    ref = reference_lstm(model, x, h0, c0)
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-10, atol=1e-12)
    assert h_n.shape == c_n.shape == (2, 2, 3)
    np.testing.assert_allclose(h_n.data[-1], out.data[:, -1, :], rtol=1e-12)
    assert model.final_state[0] is h_n
    check_grads(model, [x, h0, c0], call=lambda a, b, c: model(a, state=(b, c)))


def test_lstm_final_cell_state_continues_the_sequence() -> None:
    """Running two halves with the carried (h, c) equals running the whole sequence."""
    af.manual_seed(3)
    model = LSTM(2, 4, return_sequences=True)
    x = np.random.default_rng(0).standard_normal((3, 6, 2)).astype(np.float32)
    whole = model(Tensor(x)).data
    first, state = model(Tensor(x[:, :3]), return_state=True)
    second = model(Tensor(x[:, 3:]), state=state)
    np.testing.assert_allclose(
        np.concatenate([first.data, second.data], axis=1), whole, rtol=1e-5, atol=1e-6
    )


def test_lstm_single_layer_accepts_2d_state() -> None:
    model = LSTM(1, 2)
    h0 = np.ones((3, 2), dtype=np.float32)
    a = model(np.zeros((3, 4, 1), dtype=np.float32), state=(h0, h0)).data
    b = model(np.zeros((3, 4, 1), dtype=np.float32), state=(h0[None], h0[None])).data
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, model(np.zeros((3, 4, 1), dtype=np.float32)).data)


def test_lstm_initialisation() -> None:
    af.manual_seed(0)
    model = LSTM(3, 5, num_layers=2)
    b = model.bias_l0.numpy()
    np.testing.assert_array_equal(b[5:10], 1.0)  # forget gate
    np.testing.assert_array_equal(np.delete(b, np.s_[5:10]), 0.0)
    w_hh = model.weight_hh_l0.numpy()
    for k in range(4):  # each gate's recurrent block is orthogonal
        block = w_hh[:, 5 * k : 5 * (k + 1)]
        np.testing.assert_allclose(block.T @ block, np.eye(5), atol=1e-5)
    assert model.weight_ih_l1.shape == (5, 20)
    assert model.weight_ih_l0.dtype == np.float32
    af.manual_seed(0)
    again = LSTM(3, 5, num_layers=2)
    for (n, p), (_, q) in zip(model.named_parameters(), again.named_parameters()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=n)


# ------------------------------------------------------------------------- GRU
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("by_exp", [True, False])  # gates through exp or tanh (`_gates_by_exp`)
def test_gru_matches_unfused_reference(
    monkeypatch, num_layers: int, return_sequences: bool, by_exp: bool
) -> None:
    from azuraforge_learner import recurrent

    monkeypatch.setattr(recurrent, "_GATES_BY_EXP", by_exp)
    af.manual_seed(0)
    model = GRU(3, 4, num_layers=num_layers, return_sequences=return_sequences)
    to_float64(model)
    randomise(model)
    x = randn(2, 5, 3)
    out = model(x)
    ref = reference_gru(model, x)
    assert out.shape == ((2, 5, 4) if return_sequences else (2, 4))
    np.testing.assert_allclose(out.data, ref.data, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("return_sequences", [False, True])
@pytest.mark.parametrize("by_exp", [True, False])  # gates through exp or tanh (`_gates_by_exp`)
def test_gru_gradients_match_finite_differences(
    monkeypatch, num_layers: int, return_sequences: bool, by_exp: bool
) -> None:
    from azuraforge_learner import recurrent

    monkeypatch.setattr(recurrent, "_GATES_BY_EXP", by_exp)
    af.manual_seed(1)
    model = GRU(2, 3, num_layers=num_layers, return_sequences=return_sequences)
    to_float64(model)
    randomise(model)
    check_grads(model, [randn(2, 4, 2)])


def test_gru_initial_state() -> None:
    af.manual_seed(2)
    model = GRU(2, 3, num_layers=2)
    to_float64(model)
    randomise(model)
    x, h0 = randn(2, 3, 2, seed=1), randn(2, 2, 3, seed=2)
    out, h_n = model(x, state=h0, return_state=True)
    np.testing.assert_allclose(out.data, reference_gru(model, x, h0).data, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h_n.data[-1], out.data, rtol=1e-12)
    check_grads(model, [x, h0], call=lambda a, b: model(a, state=b))


# --------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_recurrent_shape_errors_are_clear(cls) -> None:
    model = cls(3, 4)
    with pytest.raises(ShapeError, match=r"\(batch, seq, 3\).*\(2, 5, 2\)"):
        model(np.zeros((2, 5, 2), dtype=np.float32))
    with pytest.raises(ShapeError, match="reshape to"):
        cls(1, 4)(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ShapeError, match="initial"):
        state = np.zeros((1, 3, 4), dtype=np.float32)
        model(np.zeros((2, 5, 3), dtype=np.float32), state=(state, state) if cls is LSTM else state)
    with pytest.raises(ValueError, match="hidden_size"):
        cls(3, 0)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_recurrent_describe_build_round_trip(cls) -> None:
    model = cls(2, 5, num_layers=2, return_sequences=True, dropout=0.25)
    desc = json.loads(json.dumps(model.describe()))
    rebuilt = build(desc)
    assert type(rebuilt) is cls
    assert rebuilt.get_config() == model.get_config()
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    x = np.random.default_rng(0).standard_normal((2, 3, 2)).astype(np.float32)
    np.testing.assert_array_equal(model(x).data, rebuilt(x).data)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_recurrent_dropout_between_layers_only_in_training(cls) -> None:
    af.manual_seed(0)
    model = cls(2, 8, num_layers=2, dropout=0.5)
    x = np.random.default_rng(0).standard_normal((4, 3, 2)).astype(np.float32)
    model.eval()
    a, b = model(x).data, model(x).data
    np.testing.assert_array_equal(a, b)
    model.train()
    c = model(x).data
    assert not np.allclose(a, c)


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_recurrent_sgd_step_moves_every_parameter(cls) -> None:
    af.manual_seed(0)
    model = Sequential(cls(2, 4, num_layers=2), Linear(4, 1))
    x = np.random.default_rng(0).standard_normal((5, 6, 2)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((5, 1)).astype(np.float32)
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    af.mse_loss(model(x), y).backward()
    for p in model.parameters():
        p.data -= 0.1 * p.grad.data
    for n, p in model.named_parameters():
        assert not np.allclose(before[n], p.numpy()), f"{n} did not move"


def test_lstm_learns_a_simple_sequence_task() -> None:
    """Predict the sum of a sequence: a few hundred SGD steps cut the loss by a lot."""
    af.manual_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(64, 5, 1)).astype(np.float32)
    y = x.sum(axis=1)
    model = Sequential(LSTM(1, 16), Linear(16, 1))
    first = last = None
    for _ in range(300):
        loss = af.mse_loss(model(x), y)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.1 * p.grad.data
        first = loss.item() if first is None else first
        last = loss.item()
    assert last < 0.1 * first


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_recycled_buffers_never_alias_a_live_graph(cls) -> None:
    """Forward passes in between a forward and its backward (inference, another batch)
    must not disturb the arrays the first graph saved; a retained graph can be walked twice."""
    af.manual_seed(0)
    model = cls(2, 5, return_sequences=True)
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((3, 4, 2)).astype(np.float32)
    xb = rng.standard_normal((3, 4, 2)).astype(np.float32)

    def grads_of(x: np.ndarray) -> list[np.ndarray]:
        model.zero_grad()
        model(x).sum().backward()
        return [p.grad.numpy().copy() for p in model.parameters()]

    expected = grads_of(xa)
    model.zero_grad()
    out_a = model(xa)
    with no_grad():
        model(xb)  # same shapes: would reuse A's buffers if they had been handed back
    out_b = model(xb)  # a second live graph
    out_a.sum().backward(retain_graph=True)
    for got, want in zip([p.grad.numpy() for p in model.parameters()], expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    model.zero_grad()
    out_a.sum().backward()  # the retained graph again
    for got, want in zip([p.grad.numpy() for p in model.parameters()], expected):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    out_b.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


# ------------------------------------------------------- final states in the graph
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("return_sequences", [False, True])
def test_lstm_final_states_carry_gradients(num_layers: int, return_sequences: bool) -> None:
    """A loss on h_n and c_n (an encoder's summary) trains the layer: every gradient of
    sum(out * R1) + sum(h_n * R2) + sum(c_n * R3) matches finite differences."""
    af.manual_seed(4)
    model = LSTM(2, 3, num_layers=num_layers, return_sequences=return_sequences)
    to_float64(model)
    randomise(model)
    x, h0, c0 = (
        randn(2, 4, 2, seed=1),
        randn(num_layers, 2, 3, seed=2),
        randn(num_layers, 2, 3, seed=3),
    )
    out, (h_n, c_n) = model(x, state=(h0, c0), return_state=True)
    np.testing.assert_allclose(out.data, reference_lstm(model, x, h0, c0).data, rtol=1e-10)
    last = out.data[:, -1] if return_sequences else out.data
    np.testing.assert_allclose(h_n.data[-1], last, rtol=1e-12)
    # the same values as the detached copies kept without return_state
    again = model(x, state=(h0, c0))
    np.testing.assert_allclose(again.data, out.data, rtol=1e-12)
    np.testing.assert_allclose(model.final_state[1].data, c_n.data, rtol=1e-12)

    def everything(a: Tensor, b: Tensor, c: Tensor) -> Tensor:
        y, (h, cell) = model(a, state=(b, c), return_state=True)
        return af.concat([y.reshape(-1), h.reshape(-1), cell.reshape(-1)])

    check_grads(model, [x, h0, c0], call=everything)


@pytest.mark.parametrize("num_layers", [1, 2])
def test_gru_final_state_carries_gradients(num_layers: int) -> None:
    af.manual_seed(5)
    model = GRU(2, 3, num_layers=num_layers)
    to_float64(model)
    randomise(model)
    x, h0 = randn(2, 4, 2, seed=1), randn(num_layers, 2, 3, seed=2)

    def everything(a: Tensor, b: Tensor) -> Tensor:
        y, h = model(a, state=b, return_state=True)
        return af.concat([y.reshape(-1), h.reshape(-1)])

    check_grads(model, [x, h0], call=everything)


def test_an_lstm_encoder_learns_from_its_final_cell_state_alone() -> None:
    """Only c_n feeds the loss: without the state in the graph nothing would train."""
    af.manual_seed(6)
    model = LSTM(1, 4)
    x = randn(3, 5, 1, grad=False)
    _, (_, c_n) = model(x, return_state=True)
    (c_n * c_n).sum().backward()
    assert all(p.grad is not None and np.abs(p.grad.data).sum() > 0 for p in model.parameters())


def test_the_step_matmul_splits_mid_sized_products_as_asked() -> None:
    """ "rows": row blocks small enough for OpenBLAS's small-matrix kernels; "none": one
    call; "auto" (the default where those kernels exist) splits a short, wide product's
    inner axis. A product too big for `_MAX_BLOCKS` blocks is left to one call (and
    OpenBLAS's threads). Every way computes the same product."""
    from azuraforge_learner import recurrent

    rng = np.random.default_rng(0)
    w = rng.normal(size=(256, 66)).astype(np.float32)  # LSTM(64) gates over [h, x, 1], batch 64
    x = rng.normal(size=(66, 64)).astype(np.float32)
    exact = w.astype(np.float64) @ x
    rows = recurrent._StepMatmul(np, w, 64, split="rows")
    assert [r for r, _ in rows.blocks] == [slice(0, 128), slice(128, 256)]
    one = recurrent._StepMatmul(np, w, 64, split="none")
    assert not one.blocks and not one.inner_parts
    for step in (rows, one):
        np.testing.assert_allclose(step(x, np.empty((256, 64), np.float32)), exact, atol=1e-4)

    w_big = rng.normal(size=(2048, 520)).astype(np.float32)  # LSTM(512): 68M multiply-adds
    big = recurrent._StepMatmul(np, w_big, 64, split="rows")
    assert not big.blocks and not big.inner_parts
    xb = rng.normal(size=(520, 64)).astype(np.float32)
    np.testing.assert_array_equal(big(xb, np.empty((2048, 64), np.float32)), w_big @ xb)


def test_the_default_split_follows_the_blas_kernels(monkeypatch) -> None:
    """Row blocks only pay where OpenBLAS has small-matrix kernels; elsewhere (another CPU,
    or OPENBLAS_CORETYPE forcing an older kernel) a product is one call."""
    from azuraforge_learner import recurrent

    w = np.ones((256, 66), np.float32)
    monkeypatch.setattr(recurrent, "_small_kernels", lambda: False)
    assert not recurrent._StepMatmul(np, w, 64).blocks
    assert recurrent._lstm_split(np, 64, 66, 64, np.float32) == ("none", None)
    monkeypatch.setattr(recurrent, "_small_kernels", lambda: True)
    assert len(recurrent._StepMatmul(np, w, 64).blocks) == 2
    monkeypatch.setattr(recurrent, "_blas_threads", lambda: 1)
    assert recurrent._lstm_split(np, 64, 66, 64, np.float32) == ("auto", None)
    assert recurrent._lstm_split(np, 16, 18, 64, np.float32) == ("none", None)  # small: one call


_BIT_IDENTICAL_CHILD = """
import sys
import numpy as np
from azuraforge_learner import recurrent
assert recurrent._small_kernels(), recurrent._openblas().architecture
rng = np.random.default_rng(0)
for shape in ((256, 66), (64, 256), (512, 130)):  # LSTM(64) forward, backward; LSTM(128) fwd
    w = rng.normal(size=shape).astype(np.float32)
    x = rng.normal(size=(shape[1], 64)).astype(np.float32)
    rows = recurrent._StepMatmul(np, w, 64, split="rows")
    assert len(rows.blocks) > 1, shape
    out = rows(x, np.empty((shape[0], 64), np.float32))
    assert np.array_equal(out, w @ x), shape
print("identical")
"""


def _cpu_has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return " avx512f " in f.read().replace("\n", " ")
    except OSError:
        return False


@pytest.mark.parametrize("threads", ["1", "2"])
def test_the_two_ways_a_plan_picks_from_give_bit_identical_numbers(threads, monkeypatch) -> None:
    """A run's numbers must not depend on which way `_ProductPlan` found faster: with
    OpenBLAS's small-matrix kernels (forced in a child process where the CPU has AVX-512),
    row blocks equal one (threaded) call bit for bit. Where no such kernels can run, the
    plan is never consulted: one call, always."""
    import os
    import subprocess
    import sys

    from azuraforge_learner import recurrent

    if not _cpu_has_avx512():
        monkeypatch.setattr(recurrent, "_blas_threads", lambda: int(threads))
        assert recurrent._lstm_split(np, 64, 66, 64, np.float32) == ("none", None)
        return
    env = {**os.environ, "OPENBLAS_CORETYPE": "SkylakeX", "OPENBLAS_NUM_THREADS": threads}
    done = subprocess.run(
        [sys.executable, "-c", _BIT_IDENTICAL_CHILD], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and "identical" in done.stdout, done.stderr


def test_a_product_plan_times_both_ways_then_keeps_the_faster() -> None:
    """Row blocks for the first passes, then one call; the first pass of each way is not
    counted; the choice sums the fastest forward and the fastest backward of each way."""
    from azuraforge_learner.recurrent import _ProductPlan

    plan = _ProductPlan()
    ways = []
    for k in range(2 * plan.passes):
        way = plan.next_way()
        ways.append(way)
        slow_first = 10.0 if k % plan.passes == 0 else 0.0  # warm-up passes: never counted
        plan.record(way, 0, slow_first + (1.0 if way == "rows" else 1.2))
        plan.record(way, 1, 2.0 if way == "rows" else 1.5)  # "none" wins on the sum
    assert ways == ["rows"] * plan.passes + ["none"] * plan.passes
    assert plan.next_way() == "none" and plan.choice == "none"
    plan.record("rows", 0, 0.0)  # after the choice, timings change nothing
    assert plan.next_way() == "none"

    forward_only = _ProductPlan()  # inference: no backward timed
    for _ in range(2 * forward_only.passes):
        way = forward_only.next_way()
        forward_only.record(way, 0, 1.0 if way == "rows" else 1.2)
    assert forward_only.next_way() == "rows"


def test_an_lstm_trains_through_a_product_plan(monkeypatch) -> None:
    """With 2 BLAS threads and small-matrix kernels, an LSTM shape's first passes run both
    ways and then one: the plan of its shape makes its choice and training goes on."""
    from azuraforge_learner import recurrent

    monkeypatch.setattr(recurrent, "_small_kernels", lambda: True)
    monkeypatch.setattr(recurrent, "_blas_threads", lambda: 2)
    monkeypatch.setattr(recurrent, "_PLANS", {})
    af.manual_seed(7)
    model = LSTM(3, 64)
    x = randn(64, 5, 3, grad=False)
    for _ in range(2 * recurrent._ProductPlan.passes + 1):
        model.zero_grad()
        out = model(x)
        (out * out).sum().backward()
    assert all(p.grad is not None and np.isfinite(p.grad.data).all() for p in model.parameters())
    (plan,) = recurrent._PLANS.values()
    assert plan.choice in ("rows", "none")
    with no_grad():  # inference times no factors: a plan of its own
        model(x)
    assert len(recurrent._PLANS) == 2
    assert all(len(times[0]) == plan.passes for times in plan.times.values())
    assert all(len(times[1]) == plan.passes for times in plan.times.values())


def test_pooled_buffers_are_cache_line_aligned_and_views_never_enter_the_pool() -> None:
    """The fused ops' buffers start on a 64-byte line (numpy's own big arrays start 16
    bytes into one); the pool hands a returned buffer out again, never a view into one,
    which another live array may still share."""
    from azuraforge_learner import recurrent

    pool = recurrent._BufferPool()
    shapes = [(30, 256, 64), (64, 64), (3, 64, 33), (7,)]
    arrays = [pool.take(np, shape, np.float32) for shape in shapes]
    for arr, shape in zip(arrays, shapes, strict=True):
        assert arr.shape == shape and arr.dtype == np.float32 and arr.flags.c_contiguous
        assert arr.ctypes.data % 64 == 0
    big = arrays[0]
    pool.give([big[1], big[:, :64], np.empty((64, 64), np.float32), big])
    assert pool.take(np, (30, 256, 64), np.float32) is big
    step = pool.take(np, (256, 64), np.float32)  # not big[1]: a fresh buffer
    assert not np.shares_memory(step, big)
    fresh = pool.take(np, (64, 64), np.float32)  # numpy's unaligned array was not kept
    assert fresh.ctypes.data % 64 == 0


@pytest.mark.parametrize("cls", [LSTM, GRU])
def test_final_state_always_describes_the_latest_call(cls: type) -> None:
    """Without `return_state` the final state is stacked when read; it must still be the
    one of the call made last, whichever way the calls before were made."""
    af.manual_seed(6)
    model = cls(2, 3, num_layers=2)
    xs = [randn(2, 4, 2, seed=s) for s in (1, 2, 3)]

    def last_h(x: Tensor) -> np.ndarray:
        out = model(x, return_state=True)[1]
        return (out[0] if cls is LSTM else out).data.copy()

    expected = [last_h(x) for x in xs]
    model(xs[0])
    model(xs[1])
    state = model.final_state
    np.testing.assert_array_equal((state[0] if cls is LSTM else state).data, expected[1])
    model(xs[2], return_state=True)
    model(xs[0])
    state = model.final_state
    np.testing.assert_array_equal((state[0] if cls is LSTM else state).data, expected[0])
    assert model.final_state is state  # stacked once, then kept


@pytest.mark.parametrize(("threads", "after_loop"), [(1, False), (2, True)])
def test_lstm_weight_gradients_go_after_the_loop_with_more_blas_threads(
    threads, after_loop, monkeypatch
) -> None:
    """With one BLAS thread the LSTM sums its weight gradients step by step inside the
    backward loop; with more, in a few big products after it (which OpenBLAS threads).
    Decided by the thread count, never by timing: the two sum in different orders."""
    from azuraforge_learner import recurrent

    calls = []
    real = recurrent._rows_by_steps
    monkeypatch.setattr(recurrent, "_blas_threads", lambda: threads)
    monkeypatch.setattr(recurrent, "_rows_by_steps", lambda *a: calls.append(1) or real(*a))
    af.manual_seed(8)
    model = LSTM(2, 8)
    model(randn(4, 3, 2, grad=False)).sum().backward()
    assert bool(calls) is after_loop
    assert all(p.grad is not None for p in model.parameters())
