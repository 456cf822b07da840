"""Time-series helpers that any forecaster needs, whatever its model: calendar features, a
seasonal profile fitted on training data, and forecast metrics set next to baselines.

Honest forecasting means judging a model against what needs no learning: the naive forecast
(tomorrow = today) and, where the series has a season, the seasonal average. These helpers
make that comparison one call:

    comparison = compare_forecasts(y_true, {"model": pred, "naive": last_values}, previous=last_values)
    comparison["mae_ratio"]["naive"]    # model MAE / naive MAE: < 1 means the model is better
    describe_comparison(comparison)      # one plain sentence per baseline

Dates are numpy datetime64 values (any unit) or anything `np.asarray(..., "datetime64[s]")`
accepts; everything here is plain numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .metrics import directional_accuracy, mae, mape, rmse

# Lengths of the calendar cycles, in days.
CYCLES: dict[str, float] = {"day": 1.0, "week": 7.0, "year": 365.2425}


def to_days(dates: Any) -> np.ndarray:
    """Days since 1970-01-01 as float64 (fractions for times of day)."""
    arr = np.asarray(dates, dtype="datetime64[s]")
    if np.isnat(arr).any():
        raise ValueError("to_days: the dates contain missing values (NaT)")
    return arr.astype(np.int64) / 86400.0


def _check_cycles(cycles: Sequence[str]) -> None:
    unknown = [c for c in cycles if c not in CYCLES]
    if unknown:
        raise ValueError(f"unknown calendar cycle(s) {unknown}; known: {', '.join(CYCLES)}")


def calendar_features(
    dates: Any, cycles: Sequence[str] = ("year",), harmonics: int = 1
) -> np.ndarray:
    """sin/cos of the position in each cycle ('day', 'week', 'year'), shape (N, 2*K*len(cycles)).

    Smooth and periodic, so 31 December sits next to 1 January and 23:00 next to 00:00.
    """
    _check_cycles(cycles)
    if harmonics < 1:
        raise ValueError(f"calendar_features: harmonics must be >= 1, got {harmonics}")
    days = to_days(dates)
    cols = []
    for cycle in cycles:
        phase = 2.0 * np.pi * days / CYCLES[cycle]
        for k in range(1, harmonics + 1):
            cols += [np.sin(k * phase), np.cos(k * phase)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(days), 0))


def calendar_feature_names(cycles: Sequence[str] = ("year",), harmonics: int = 1) -> list[str]:
    """Column names matching `calendar_features`: 'year_sin1', 'year_cos1', ..."""
    _check_cycles(cycles)
    return [f"{c}_{f}{k}" for c in cycles for k in range(1, harmonics + 1) for f in ("sin", "cos")]


class SeasonalProfile:
    """The seasonal average of one or more series: a least-squares fit of a constant plus
    sin/cos terms of the given cycles, on the TRAINING data only.

    `predict(dates)` is the climatology baseline ("what this day of the year usually looks
    like"), and `values - predict(dates)` the anomalies a model can learn from. Being a
    smooth fit, it stays sensible for days of the year that training never saw.
    """

    def __init__(self, cycles: Sequence[str] = ("year",), harmonics: int = 1) -> None:
        _check_cycles(cycles)
        self.cycles, self.harmonics = list(cycles), int(harmonics)
        self.coef: np.ndarray | None = None  # (1 + 2*K*cycles, F)
        self.one_d = False

    def _design(self, dates: Any) -> np.ndarray:
        cal = calendar_features(dates, self.cycles, self.harmonics)
        return np.concatenate([np.ones((len(cal), 1)), cal], axis=1)

    def fit(self, dates: Any, values: Any) -> SeasonalProfile:
        y = np.asarray(values, dtype=np.float64)
        self.one_d = y.ndim == 1
        y2 = y.reshape(len(y), -1)
        A = self._design(dates)
        if len(A) != len(y2):
            raise ValueError(f"SeasonalProfile.fit: {len(A)} dates but {len(y2)} values")
        if not np.all(np.isfinite(y2)):
            raise ValueError("SeasonalProfile.fit: the values contain NaN or infinite numbers")
        self.coef = np.linalg.lstsq(A, y2, rcond=None)[0]
        return self

    def predict(self, dates: Any) -> np.ndarray:
        if self.coef is None:
            raise RuntimeError("SeasonalProfile.predict: call fit() on the training data first")
        out = self._design(dates) @ self.coef
        return out[:, 0] if self.one_d else out

    def get_state(self) -> dict[str, Any]:
        """A JSON-able dict; `SeasonalProfile.from_state` rebuilds the fitted profile."""
        return {
            "cycles": self.cycles,
            "harmonics": self.harmonics,
            "one_d": self.one_d,
            "coef": None if self.coef is None else self.coef.tolist(),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> SeasonalProfile:
        profile = cls(state["cycles"], state["harmonics"])
        profile.one_d = bool(state.get("one_d", False))
        if state.get("coef") is not None:
            profile.coef = np.asarray(state["coef"], dtype=np.float64)
        return profile


def forecast_metrics(y_true: Any, y_pred: Any, previous: Any = None) -> dict[str, float | None]:
    """MAE, RMSE, MAPE (%) and, with `previous` (the last known value before each target),
    the share of steps whose direction of change the forecast called right. A forecast
    that never moves (the naive one) calls no direction: its accuracy is None."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    out: dict[str, float | None] = {"mae": mae(t, p), "rmse": rmse(t, p), "mape": mape(t, p)}
    if previous is not None:
        prev = np.asarray(previous, dtype=np.float64).reshape(-1)
        moves = bool(np.any(p != prev))
        out["directional_accuracy"] = directional_accuracy(t, p, prev) if moves else None
    return out


def compare_forecasts(
    y_true: Any,
    forecasts: Mapping[str, Any],
    previous: Any = None,
    reference: str = "model",
) -> dict[str, Any]:
    """Metrics of every forecast on the same targets, and the reference's standing.

    Returns {'metrics': {name: forecast_metrics}, 'mae_ratio': {baseline: ref MAE / its MAE},
    'beats': {baseline: bool}, 'reference': reference}. A ratio below 1 means the reference
    forecast is better than that baseline.
    """
    if reference not in forecasts:
        raise ValueError(f"compare_forecasts: no forecast named {reference!r}")
    metrics = {name: forecast_metrics(y_true, p, previous) for name, p in forecasts.items()}
    ref = float(metrics[reference]["mae"] or 0.0)
    ratios: dict[str, float] = {}
    beats: dict[str, bool] = {}
    for name, m in metrics.items():
        if name == reference:
            continue
        base = float(m["mae"] or 0.0)
        ratios[name] = float(ref / base) if base > 0 else float("inf")
        beats[name] = bool(ref < base)
    return {"reference": reference, "metrics": metrics, "mae_ratio": ratios, "beats": beats}


def describe_comparison(comparison: Mapping[str, Any], what: str = "The model") -> str:
    """Plain sentences: whether the reference forecast beat each baseline, by how much."""
    ref = comparison["metrics"][comparison["reference"]]["mae"]
    parts = []
    for name, ratio in comparison["mae_ratio"].items():
        base = comparison["metrics"][name]["mae"]
        change = abs(1.0 - ratio) * 100.0
        if comparison["beats"][name]:
            verdict = f"beat the {name} forecast: MAE {ref:.4g} vs {base:.4g}, {change:.1f}% lower"
        else:
            verdict = (
                f"did NOT beat the {name} forecast: MAE {ref:.4g} vs {base:.4g}, "
                f"{change:.1f}% higher"
            )
        parts.append(f"{what} {verdict}.")
    return " ".join(parts)


def downsample_indices(n: int, max_points: int) -> np.ndarray:
    """At most `max_points` evenly spread indices into range(n), first and last included."""
    if max_points < 1:
        raise ValueError(f"downsample_indices: max_points must be >= 1, got {max_points}")
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(np.int64))


__all__ = [
    "CYCLES",
    "SeasonalProfile",
    "calendar_feature_names",
    "calendar_features",
    "compare_forecasts",
    "describe_comparison",
    "downsample_indices",
    "forecast_metrics",
    "to_days",
]
