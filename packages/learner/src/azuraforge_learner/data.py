"""Data utilities: scalers (fit on training data only), sliding windows for time series,
chronological splits and a seeded batch iterator.

Scalers save their state as a JSON-able dict (`get_state()` / `scaler_from_state()`) so a
pipeline can store its preprocessing next to the model's weights.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from azuraforge_core import Tensor


def _as_2d_float(X: Any, who: str) -> tuple[np.ndarray, bool]:
    arr = X.numpy() if isinstance(X, Tensor) else np.asarray(X)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"{who}: expected numeric data, got dtype {arr.dtype}")
    if arr.ndim == 1:
        return arr.reshape(-1, 1).astype(np.float64), True
    if arr.ndim != 2:
        raise ValueError(
            f"{who}: expected a 1-D or 2-D array (samples, features), got shape {arr.shape}"
        )
    return arr.astype(np.float64), False


class _Scaler:
    _fields: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.n_features: int | None = None

    @property
    def fitted(self) -> bool:
        return self.n_features is not None

    def _check(self, X: Any, op: str) -> tuple[np.ndarray, bool, Any]:
        if not self.fitted:
            raise RuntimeError(f"{type(self).__name__}.{op}: call fit() on the training data first")
        arr, was_1d = _as_2d_float(X, f"{type(self).__name__}.{op}")
        if arr.shape[1] != self.n_features:
            raise ValueError(
                f"{type(self).__name__}.{op}: fitted on {self.n_features} features, got {arr.shape[1]}"
            )
        dtype = np.asarray(X).dtype if not isinstance(X, Tensor) else X.dtype
        return arr, was_1d, dtype if np.dtype(dtype).kind == "f" else np.float64

    def fit(self, X: Any) -> _Scaler:
        raise NotImplementedError

    def transform(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def inverse_transform(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def get_state(self) -> dict[str, Any]:
        """A JSON-able dict: {'type': class name, config and fitted statistics as lists}."""
        state: dict[str, Any] = {"type": type(self).__name__, "n_features": self.n_features}
        for f in self._fields:
            v = getattr(self, f)
            state[f] = v.tolist() if isinstance(v, np.ndarray) else v
        return state

    def set_state(self, state: dict[str, Any]) -> _Scaler:
        if state.get("type", type(self).__name__) != type(self).__name__:
            raise ValueError(f"cannot load a {state.get('type')} state into {type(self).__name__}")
        n = state.get("n_features")
        self.n_features = None if n is None else int(n)
        for f in self._fields:
            if f in state:
                v = state[f]
                setattr(self, f, np.asarray(v, dtype=np.float64) if isinstance(v, list) else v)
        return self

    to_dict = get_state


class StandardScaler(_Scaler):
    """(x - mean) / std per feature; a constant feature gets std 1 (it becomes 0)."""

    _fields = ("with_mean", "with_std", "mean", "scale")

    def __init__(self, with_mean: bool = True, with_std: bool = True) -> None:
        super().__init__()
        self.with_mean, self.with_std = with_mean, with_std
        self.mean: np.ndarray | None = None
        self.scale: np.ndarray | None = None

    def fit(self, X: Any) -> StandardScaler:
        arr, _ = _as_2d_float(X, "StandardScaler.fit")
        if arr.shape[0] == 0:
            raise ValueError("StandardScaler.fit: no samples")
        if not np.all(np.isfinite(arr)):
            raise ValueError("StandardScaler.fit: the data contains NaN or infinite values")
        self.n_features = arr.shape[1]
        self.mean = arr.mean(axis=0) if self.with_mean else np.zeros(arr.shape[1])
        std = arr.std(axis=0) if self.with_std else np.ones(arr.shape[1])
        self.scale = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: Any) -> np.ndarray:
        arr, was_1d, dtype = self._check(X, "transform")
        out = ((arr - self.mean) / self.scale).astype(dtype)
        return out.reshape(-1) if was_1d else out

    def inverse_transform(self, X: Any) -> np.ndarray:
        arr, was_1d, dtype = self._check(X, "inverse_transform")
        out = (arr * self.scale + self.mean).astype(dtype)
        return out.reshape(-1) if was_1d else out


class MinMaxScaler(_Scaler):
    """Maps each feature's training range onto `feature_range` (default [0, 1])."""

    _fields = ("feature_range", "data_min", "data_max")

    def __init__(self, feature_range: Sequence[float] = (0.0, 1.0)) -> None:
        super().__init__()
        lo, hi = float(feature_range[0]), float(feature_range[1])
        if not lo < hi:
            raise ValueError(
                f"MinMaxScaler: feature_range must be (low, high) with low < high, got {feature_range}"
            )
        self.feature_range = [lo, hi]
        self.data_min: np.ndarray | None = None
        self.data_max: np.ndarray | None = None

    def fit(self, X: Any) -> MinMaxScaler:
        arr, _ = _as_2d_float(X, "MinMaxScaler.fit")
        if arr.shape[0] == 0:
            raise ValueError("MinMaxScaler.fit: no samples")
        if not np.all(np.isfinite(arr)):
            raise ValueError("MinMaxScaler.fit: the data contains NaN or infinite values")
        self.n_features = arr.shape[1]
        self.data_min, self.data_max = arr.min(axis=0), arr.max(axis=0)
        return self

    def _scale(self) -> tuple[np.ndarray, float]:
        assert self.data_min is not None and self.data_max is not None
        span = self.data_max - self.data_min
        span = np.where(span > 0, span, 1.0)
        lo, hi = self.feature_range
        return (hi - lo) / span, lo

    def transform(self, X: Any) -> np.ndarray:
        arr, was_1d, dtype = self._check(X, "transform")
        scale, lo = self._scale()
        out = ((arr - self.data_min) * scale + lo).astype(dtype)
        return out.reshape(-1) if was_1d else out

    def inverse_transform(self, X: Any) -> np.ndarray:
        arr, was_1d, dtype = self._check(X, "inverse_transform")
        scale, lo = self._scale()
        out = ((arr - lo) / scale + self.data_min).astype(dtype)
        return out.reshape(-1) if was_1d else out


_SCALERS: dict[str, type[_Scaler]] = {
    "StandardScaler": StandardScaler,
    "MinMaxScaler": MinMaxScaler,
}


def scaler_from_state(state: dict[str, Any]) -> _Scaler:
    """Rebuild a scaler from `get_state()` output."""
    kind = state.get("type") if isinstance(state, dict) else None
    cls = _SCALERS.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown scaler type {kind!r}; known: {', '.join(_SCALERS)}")
    return cls().set_state(state)


# ------------------------------------------------------------------ time series
def make_windows(
    series: Any,
    window: int,
    horizon: int = 1,
    target: int | Sequence[int] | None = None,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows over a series of shape (T,) or (T, F).

    Returns X of shape (N, window, F) (F = 1 for a 1-D series) and y holding the next
    `horizon` values of the target column(s): shape (N, horizon) for one target (a 1-D
    series or an int `target`), else (N, horizon, n_targets). Window i covers steps
    [i*stride, i*stride + window) and its targets the `horizon` steps right after it.
    """
    arr = series.numpy() if isinstance(series, Tensor) else np.asarray(series)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
        target = 0
    if arr.ndim != 2:
        raise ValueError(
            f"make_windows: series must be 1-D or 2-D (time, features), got shape {arr.shape}"
        )
    if window < 1 or horizon < 1 or stride < 1:
        raise ValueError(
            f"make_windows: window, horizon and stride must be >= 1, got {window}, {horizon}, {stride}"
        )
    T, F = arr.shape
    n = (T - window - horizon) // stride + 1
    if n < 1:
        raise ValueError(
            f"make_windows: a series of length {T} is too short for window {window} + horizon {horizon}"
        )
    starts = np.arange(n) * stride
    X = arr[starts[:, None] + np.arange(window)[None, :]]  # (n, window, F)
    y_idx = starts[:, None] + window + np.arange(horizon)[None, :]  # (n, horizon)
    if target is None:
        cols: list[int] = list(range(F))
        single = F == 1
    elif isinstance(target, (int, np.integer)):
        cols, single = [int(target)], True
    else:
        cols, single = [int(c) for c in target], False
    for c in cols:
        if not -F <= c < F:
            raise ValueError(f"make_windows: target column {c} is out of range for {F} features")
    y = arr[y_idx][:, :, cols]  # (n, horizon, n_targets)
    if single:
        y = y[:, :, 0]
    return np.ascontiguousarray(X), np.ascontiguousarray(y)


def _split_sizes(n: int, val_size: float | int, test_size: float | int) -> tuple[int, int]:
    def count(v: float | int, what: str) -> int:
        if isinstance(v, (float, np.floating)):
            if not 0.0 <= v < 1.0:
                raise ValueError(
                    f"chronological_split: {what} as a float is a fraction in [0, 1), got {v}; "
                    "pass an int for a count"
                )
            return round(n * float(v))
        if int(v) < 0:
            raise ValueError(f"chronological_split: {what} must be >= 0, got {v}")
        return int(v)

    n_val, n_test = count(val_size, "val_size"), count(test_size, "test_size")
    if n - n_val - n_test < 1:
        raise ValueError(
            f"chronological_split: {n} samples leave no training data after {n_val} validation "
            f"and {n_test} test samples"
        )
    return n_val, n_test


def chronological_split(
    *arrays: Any, val_size: float | int = 0.15, test_size: float | int = 0.15
) -> tuple[Any, Any, Any]:
    """Split in time order (never shuffled): the first part trains, the next validates, the
    last tests. Sizes are fractions (float < 1) or counts (int).

    One array gives (train, val, test); several give ((a_tr, b_tr), (a_va, b_va), (a_te, b_te)).
    """
    if not arrays:
        raise ValueError("chronological_split needs at least one array")
    n = len(arrays[0])
    for a in arrays[1:]:
        if len(a) != n:
            raise ValueError(
                f"chronological_split: arrays have different lengths ({n} and {len(a)})"
            )
    n_val, n_test = _split_sizes(n, val_size, test_size)
    a, b = n - n_val - n_test, n - n_test
    parts = [(x[:a], x[a:b], x[b:]) for x in arrays]
    if len(arrays) == 1:
        return parts[0]
    return tuple(tuple(p[i] for p in parts) for i in range(3))  # type: ignore[return-value]


# -------------------------------------------------------------------- batching
class DataLoader:
    """Batches of (X, y) numpy arrays (or X alone when y is None).

    With `shuffle`, each pass draws a new permutation from its own numpy Generator (`seed`,
    or a Generator passed as `rng`), so two loaders with the same seed give the same batches
    and the global numpy random state is never touched. `get_state()`/`set_state()` save
    the generator for exact resumption.
    """

    def __init__(
        self,
        X: Any,
        y: Any = None,
        batch_size: int = 32,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        rng: np.random.Generator | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.X = X.numpy() if isinstance(X, Tensor) else np.asarray(X)
        self.y = None if y is None else (y.numpy() if isinstance(y, Tensor) else np.asarray(y))
        if self.y is not None and len(self.y) != len(self.X):
            raise ValueError(f"DataLoader: X has {len(self.X)} samples but y has {len(self.y)}")
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.rng = rng if rng is not None else np.random.default_rng(seed)

    @property
    def num_samples(self) -> int:
        return len(self.X)

    def __len__(self) -> int:
        n, b = len(self.X), self.batch_size
        return n // b if self.drop_last else -(-n // b)

    def __iter__(self) -> Iterator[Any]:
        n = len(self.X)
        order = self.rng.permutation(n) if self.shuffle else None
        stop = (n // self.batch_size) * self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            if order is None:
                sl: Any = slice(start, start + self.batch_size)
            else:
                sl = order[start : start + self.batch_size]
            xb = self.X[sl]
            if self.y is None:
                yield xb
            else:
                yield xb, self.y[sl]

    def get_state(self) -> dict[str, Any]:
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state


__all__ = [
    "DataLoader",
    "MinMaxScaler",
    "StandardScaler",
    "chronological_split",
    "make_windows",
    "scaler_from_state",
]
