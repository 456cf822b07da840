"""Metrics as plain numpy functions `metric(y_true, y_pred)`, and a registry by name.

Classification metrics accept labels, or scores: a 2-D `y_pred` with several columns
(logits or probabilities) is reduced with argmax; a single column of floats is read as
probabilities of class 1 and thresholded at 0.5.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from azuraforge_core import Tensor
from azuraforge_core.backend import to_numpy

MetricFn = Callable[[Any, Any], Any]


def _np(a: Any) -> np.ndarray:
    if isinstance(a, Tensor):
        return a.numpy()
    return np.asarray(to_numpy(a))


def to_labels(y_pred: Any, threshold: float = 0.5) -> np.ndarray:
    """Class labels from labels, scores (N, C) or probabilities (N,) / (N, 1)."""
    p = _np(y_pred)
    if p.ndim == 2 and p.shape[1] > 1:
        return p.argmax(axis=1)
    p = p.reshape(-1)
    if p.dtype.kind == "f" and not np.all(p == np.round(p)):
        return (p >= threshold).astype(np.int64)
    return p.astype(np.int64)


def _labels_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = to_labels(y_true)
    p = to_labels(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"metrics: {t.shape[0]} true labels but {p.shape[0]} predictions")
    return t, p


def accuracy(y_true: Any, y_pred: Any) -> float:
    t, p = _labels_pair(y_true, y_pred)
    return float((t == p).mean()) if t.size else float("nan")


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int | None = None) -> np.ndarray:
    """counts[i, j] = number of samples of true class i predicted as class j."""
    t, p = _labels_pair(y_true, y_pred)
    if t.size and (t.min() < 0 or p.min() < 0):
        raise ValueError("confusion_matrix: labels must be non-negative integers")
    k = (
        num_classes
        if num_classes is not None
        else int(max(t.max(initial=-1), p.max(initial=-1)) + 1)
    )
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def _per_class(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cm = confusion_matrix(y_true, y_pred)
    tp = np.diag(cm).astype(np.float64)
    return tp, cm.sum(axis=0).astype(np.float64), cm.sum(axis=1).astype(np.float64)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.zeros_like(a)
    np.divide(a, b, out=out, where=b > 0)  # a class never predicted/present scores 0
    return out


def precision(y_true: Any, y_pred: Any) -> float:
    """Macro-averaged precision over the classes present in either array."""
    tp, pred_pos, _ = _per_class(y_true, y_pred)
    return float(_safe_div(tp, pred_pos).mean()) if tp.size else float("nan")


def recall(y_true: Any, y_pred: Any) -> float:
    """Macro-averaged recall."""
    tp, _, actual = _per_class(y_true, y_pred)
    return float(_safe_div(tp, actual).mean()) if tp.size else float("nan")


def f1_score(y_true: Any, y_pred: Any) -> float:
    """Macro-averaged F1 (per-class F1, then the mean)."""
    tp, pred_pos, actual = _per_class(y_true, y_pred)
    if not tp.size:
        return float("nan")
    return float(_safe_div(2 * tp, pred_pos + actual).mean())


def _regression_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _np(y_true).astype(np.float64)
    p = _np(y_pred).astype(np.float64)
    if t.size != p.size:
        raise ValueError(f"metrics: y_true has {t.size} values but y_pred has {p.size}")
    return t.reshape(-1), p.reshape(-1)


def mse(y_true: Any, y_pred: Any) -> float:
    t, p = _regression_pair(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def mae(y_true: Any, y_pred: Any) -> float:
    t, p = _regression_pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def rmse(y_true: Any, y_pred: Any) -> float:
    return float(np.sqrt(mse(y_true, y_pred)))


def r2_score(y_true: Any, y_pred: Any) -> float:
    """1 - SS_res / SS_tot (1 is perfect, 0 is as good as predicting the mean)."""
    t, p = _regression_pair(y_true, y_pred)
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    ss_res = float(np.sum((t - p) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res == 0.0 else 0.0
    return 1.0 - ss_res / ss_tot


def mape(y_true: Any, y_pred: Any, eps: float = 1e-8) -> float:
    """Mean absolute percentage error, in percent; targets of exactly 0 are skipped."""
    t, p = _regression_pair(y_true, y_pred)
    keep = np.abs(t) > eps
    if not keep.any():
        return float("nan")
    return float(np.mean(np.abs((t[keep] - p[keep]) / t[keep])) * 100.0)


def directional_accuracy(y_true: Any, y_pred: Any, previous: Any = None) -> float:
    """Share of steps where the forecast moves in the same direction as the truth.

    With `previous` (the last known values before each target) it compares
    sign(y_true - previous) with sign(y_pred - previous). Without it, the series is read as
    consecutive steps: sign(y_true[i] - y_true[i-1]) against sign(y_pred[i] - y_true[i-1]),
    i.e. whether each forecast called the move from the last actual value correctly.
    """
    t, p = _regression_pair(y_true, y_pred)
    if previous is None:
        if t.size < 2:
            return float("nan")
        prev, t, p = t[:-1], t[1:], p[1:]
    else:
        prev = _np(previous).astype(np.float64).reshape(-1)
        if prev.size != t.size:
            raise ValueError(
                f"directional_accuracy: {t.size} targets but {prev.size} previous values"
            )
    return float(np.mean(np.sign(t - prev) == np.sign(p - prev)))


_REGISTRY: dict[str, MetricFn] = {
    "accuracy": accuracy,
    "acc": accuracy,
    "precision": precision,
    "recall": recall,
    "f1": f1_score,
    "f1_score": f1_score,
    "confusion_matrix": confusion_matrix,
    "mse": mse,
    "mae": mae,
    "rmse": rmse,
    "r2": r2_score,
    "r2_score": r2_score,
    "mape": mape,
    "directional_accuracy": directional_accuracy,
}

# Metrics where larger is better (EarlyStopping/ModelCheckpoint 'auto' mode).
HIGHER_IS_BETTER = frozenset(
    {
        "accuracy",
        "acc",
        "precision",
        "recall",
        "f1",
        "f1_score",
        "r2",
        "r2_score",
        "directional_accuracy",
    }
)


def get_metric(spec: str | MetricFn) -> tuple[str, MetricFn]:
    """(name, fn) from a registered name or a callable (named by its __name__)."""
    if isinstance(spec, str):
        fn = _REGISTRY.get(spec.lower())
        if fn is None:
            raise ValueError(f"unknown metric {spec!r}; known: {', '.join(sorted(_REGISTRY))}")
        return spec.lower(), fn
    if (
        isinstance(spec, tuple)
        and len(spec) == 2
        and isinstance(spec[0], str)
        and callable(spec[1])
    ):
        return spec[0], spec[1]
    if callable(spec):
        return getattr(spec, "__name__", type(spec).__name__), spec
    raise TypeError(f"a metric must be a name or a callable, got {type(spec).__name__}")


def higher_is_better(name: str) -> bool:
    base = name[4:] if name.startswith("val_") else name
    return base in HIGHER_IS_BETTER


def metric_value(value: Any) -> Any:
    """A metric result as JSON-able data: a float for scalars, nested lists for arrays."""
    arr = np.asarray(_np(value) if isinstance(value, Tensor) else value)
    if arr.ndim == 0:
        return float(arr)
    return arr.tolist()


__all__ = [
    "accuracy",
    "confusion_matrix",
    "directional_accuracy",
    "f1_score",
    "get_metric",
    "higher_is_better",
    "mae",
    "mape",
    "metric_value",
    "mse",
    "precision",
    "r2_score",
    "recall",
    "rmse",
    "to_labels",
]
