"""Scalers, sliding windows, chronological splits and the seeded DataLoader."""

from __future__ import annotations

import json

import numpy as np
import pytest

from azuraforge_learner.data import (
    DataLoader,
    MinMaxScaler,
    StandardScaler,
    chronological_split,
    make_windows,
    scaler_from_state,
)

RNG = np.random.default_rng(4)


def test_standard_scaler_transform_inverse_and_state() -> None:
    X = RNG.normal(loc=[1.0, -5.0, 3.0], scale=[2.0, 0.5, 0.0], size=(100, 3))  # last col constant
    s = StandardScaler().fit(X)
    Z = s.transform(X)
    np.testing.assert_allclose(Z[:, :2].mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(Z[:, :2].std(0), 1, atol=1e-12)
    np.testing.assert_allclose(Z[:, 2], 0)  # constant feature -> 0, not NaN
    np.testing.assert_allclose(s.inverse_transform(Z), X)
    state = json.loads(json.dumps(s.get_state()))  # JSON-able
    s2 = scaler_from_state(state)
    np.testing.assert_allclose(s2.transform(X), Z)


def test_scaler_fits_on_training_data_only() -> None:
    train, test = np.arange(10.0), np.arange(10.0, 20.0)
    s = MinMaxScaler().fit(train)
    out = s.transform(test)  # the test period lies outside [0, 1]: nothing leaked from it
    assert out.min() > 1.0
    np.testing.assert_allclose(s.inverse_transform(out), test)
    assert out.shape == (10,)  # 1-D in, 1-D out


def test_minmax_range_dtype_and_errors() -> None:
    X = RNG.uniform(-3, 7, size=(50, 2)).astype(np.float32)
    s = MinMaxScaler(feature_range=(-1, 1)).fit(X)
    Z = s.transform(X)
    assert Z.dtype == np.float32
    np.testing.assert_allclose(Z.min(0), -1, atol=1e-6)
    np.testing.assert_allclose(Z.max(0), 1, atol=1e-6)
    s2 = scaler_from_state(json.loads(json.dumps(s.get_state())))
    np.testing.assert_allclose(s2.inverse_transform(Z), X, rtol=1e-5)
    with pytest.raises(RuntimeError, match="fit"):
        StandardScaler().transform(X)
    with pytest.raises(ValueError, match="2 features"):
        s.transform(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="NaN"):
        StandardScaler().fit(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="unknown scaler"):
        scaler_from_state({"type": "RobustScaler"})


def test_make_windows_1d() -> None:
    s = np.arange(10.0)
    X, y = make_windows(s, window=3, horizon=2)
    assert X.shape == (6, 3, 1) and y.shape == (6, 2)
    np.testing.assert_array_equal(X[0, :, 0], [0, 1, 2])
    np.testing.assert_array_equal(y[0], [3, 4])
    np.testing.assert_array_equal(X[-1, :, 0], [5, 6, 7])
    np.testing.assert_array_equal(y[-1], [8, 9])
    X2, y2 = make_windows(s, window=3, horizon=1, stride=2)
    np.testing.assert_array_equal(X2[:, 0, 0], [0, 2, 4, 6])
    np.testing.assert_array_equal(y2[:, 0], [3, 5, 7, 9])


def test_make_windows_multivariate_targets() -> None:
    s = np.stack([np.arange(8.0), 100 + np.arange(8.0)], axis=1)
    X, y = make_windows(s, window=4, horizon=1, target=1)
    assert X.shape == (4, 4, 2) and y.shape == (4, 1)
    np.testing.assert_array_equal(y[:, 0], [104, 105, 106, 107])
    X, y = make_windows(s, window=4, horizon=2)
    assert y.shape == (3, 2, 2)
    with pytest.raises(ValueError, match="too short"):
        make_windows(np.arange(3.0), window=3, horizon=1)
    with pytest.raises(ValueError, match="out of range"):
        make_windows(s, window=2, target=5)


def test_chronological_split() -> None:
    a = np.arange(100)
    tr, va, te = chronological_split(a, val_size=0.2, test_size=0.1)
    assert (len(tr), len(va), len(te)) == (70, 20, 10)
    assert tr[-1] < va[0] and va[-1] < te[0]  # order kept, nothing shuffled
    (Xtr, ytr), _, (Xte, yte) = chronological_split(a, a * 2, val_size=5, test_size=5)
    assert len(Xtr) == 90 and np.array_equal(ytr, Xtr * 2) and np.array_equal(yte, Xte * 2)
    with pytest.raises(ValueError, match="no training data"):
        chronological_split(np.arange(4), val_size=2, test_size=2)
    with pytest.raises(ValueError, match="fraction"):
        chronological_split(a, val_size=1.5)


def test_dataloader_batches_cover_data_once_and_are_seeded() -> None:
    X = np.arange(23).reshape(-1, 1)
    y = np.arange(23)
    dl = DataLoader(X, y, batch_size=5, shuffle=True, seed=7)
    assert len(dl) == 5
    batches = list(dl)
    assert [len(b[0]) for b in batches] == [5, 5, 5, 5, 3]
    seen = np.concatenate([b[1] for b in batches])
    assert sorted(seen.tolist()) == list(range(23)) and seen.tolist() != list(range(23))
    for xb, yb in batches:
        np.testing.assert_array_equal(xb[:, 0], yb)  # pairs stay aligned
    same = [b[1] for b in DataLoader(X, y, batch_size=5, shuffle=True, seed=7)]
    np.testing.assert_array_equal(np.concatenate(same), seen)
    # a second pass is a new permutation
    assert np.concatenate([b[1] for b in dl]).tolist() != seen.tolist()
    dl2 = DataLoader(X, batch_size=5, drop_last=True)
    assert len(dl2) == 4 and all(len(b) == 5 for b in dl2)
    before = np.random.get_state()[1].copy()
    list(DataLoader(X, y, shuffle=True, seed=1))
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # global RNG untouched


def test_dataloader_state_resumes_shuffling() -> None:
    X = np.arange(10)
    a = DataLoader(X, batch_size=10, shuffle=True, seed=3)
    next(iter(a))
    state = json.loads(json.dumps(a.get_state()))
    expected = next(iter(a))
    b = DataLoader(X, batch_size=10, shuffle=True, seed=99)
    b.set_state(state)
    np.testing.assert_array_equal(next(iter(b)), expected)
    with pytest.raises(ValueError, match="samples"):
        DataLoader(X, np.arange(3))
