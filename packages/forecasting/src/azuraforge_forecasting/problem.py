"""The training problem of one run: the rows turned into model inputs, targets and baselines.

The split is chronological (train, then validation, then test); the seasonal profile and
both scalers are fitted on the training rows only, so nothing about the validation or test
period leaks into the model. The model reads a window of `window` rows ending at row t and
is trained on the target of row t + 1, encoded as a log return or as an anomaly from the
seasonal average (`encode_target`; `decode_target` turns it back into the original units).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from azuraforge_learner import Learner, StandardScaler, chronological_split
from azuraforge_learner.timeseries import SeasonalProfile

from .data import DataError

if TYPE_CHECKING:
    from .pipeline import ForecastPipeline

MIN_SAMPLES = 20  # windows, before the split: fewer cannot train and test anything
# Steps ahead of the forecasts a run evaluates: each target is the row right after its
# window (`Problem`: actual = y[end + 1]); the DM test's autocovariance lags depend on it.
EVAL_HORIZON = 1


def encode_target(y_next: Any, y_last: Any, season_next: Any, mode: str) -> np.ndarray:
    """What the model learns for the value `y_next` after `y_last`: its log return, or its
    difference from the seasonal average ("anomaly")."""
    if mode == "log_return":
        return np.log(np.asarray(y_next) / np.asarray(y_last))
    return np.asarray(y_next) - np.asarray(season_next)  # "anomaly"


def decode_target(z: Any, y_last: Any, season_next: Any, mode: str) -> np.ndarray:
    """The inverse of `encode_target`: the value in the original units."""
    if mode == "log_return":
        return np.asarray(y_last) * np.exp(np.asarray(z))
    return np.asarray(season_next) + np.asarray(z)


def next_dates(last: Any, steps: int, step: str | float) -> np.ndarray:
    """The `steps` dates after `last`: business days for step 'B', else `step` seconds apart."""
    if step == "B":
        day = np.asarray(last, dtype="datetime64[D]")
        return np.busday_offset(day, np.arange(1, steps + 1), roll="forward").astype(
            "datetime64[s]"
        )
    base = np.asarray(last, dtype="datetime64[s]")
    return base + (np.arange(1, steps + 1) * float(step)).astype("timedelta64[s]")


def iso_dates(dates: Any, step: str | float) -> list[str]:
    """Dates as ISO strings: to the day for daily or coarser steps, else to the minute."""
    unit: Any = "D" if step == "B" or float(step) >= 86400 else "m"
    return [str(d) for d in np.datetime_as_string(np.asarray(dates, "datetime64[s]"), unit=unit)]


class Problem:
    """The data of one run turned into model inputs, targets and baselines per split."""

    def __init__(self, app: type[ForecastPipeline], frame: pd.DataFrame, recipe: dict[str, Any],
                 val_fraction: float, test_fraction: float) -> None:  # fmt: skip
        self.recipe = recipe
        window, target = recipe["window"], recipe["target"]
        y = frame[target].to_numpy(np.float64)
        dates = frame["date"].to_numpy("datetime64[s]")
        if recipe["target_mode"] == "log_return" and np.any(y <= 0):
            raise DataError(f"column {target!r} must be positive to forecast returns")
        # Features that need earlier rows (returns) are NaN at the start: samples begin after.
        first = app.warmup
        ends = np.arange(first + window - 1, len(frame) - 1)  # last row of each sample's window
        if len(ends) < MIN_SAMPLES:
            raise DataError(
                f"{len(frame)} rows are too few for a window of {window}: need at least "
                f"{first + window + MIN_SAMPLES} rows (far more for a useful model)"
            )
        try:
            split = chronological_split(ends, val_size=val_fraction, test_size=test_fraction)
        except ValueError as exc:
            raise DataError(f"{len(frame)} rows are too few to split: {exc}") from None
        if min(len(s) for s in split) < 1:
            raise DataError(
                f"{len(frame)} rows are too few for a window of {window} and the validation/"
                "test shares: every split needs at least one sample"
            )
        train_rows = slice(0, int(split[0][-1]) + 2)  # through the last training target
        if recipe.get("seasonal_cycles"):
            profile = SeasonalProfile(recipe["seasonal_cycles"], 1)
            cols = [target, *recipe["inputs"]]
            profile.fit(dates[train_rows], frame[cols].to_numpy(np.float64)[train_rows])
            recipe["seasonal"] = profile.get_state()
        feats = app.engineer(frame, recipe)
        scaler = StandardScaler().fit(feats[first : train_rows.stop - 1])
        recipe["feature_scaler"] = scaler.get_state()
        season = app.season(frame["date"], recipe)
        z = encode_target(y[1:], y[:-1], season[1:], recipe["target_mode"])  # target of row t at t
        tscaler = StandardScaler().fit(z[split[0]].reshape(-1, 1))
        recipe["target_scaler"] = tscaler.get_state()
        self.features = np.nan_to_num(scaler.transform(feats)).astype(np.float32)
        self.tscaler = tscaler
        self.idx_train, self.idx_val, self.idx_test = (np.asarray(s) for s in split)
        self.X: dict[str, np.ndarray] = {}
        self.z: dict[str, np.ndarray] = {}
        self.actual, self.naive, self.seasonal, self.dates_next = {}, {}, {}, {}
        for name, idx in (("train", split[0]), ("val", split[1]), ("test", split[2])):
            idx = np.asarray(idx)
            self.X[name] = self.features[idx[:, None] + np.arange(1 - window, 1)[None, :]]
            self.z[name] = tscaler.transform(z[idx].reshape(-1, 1)).astype(np.float32)
            self.actual[name], self.naive[name] = y[idx + 1], y[idx]
            self.seasonal[name] = season[idx + 1]
            self.dates_next[name] = dates[idx + 1]

    def predict_split(self, learner: Learner, name: str) -> np.ndarray:
        z = self.tscaler.inverse_transform(learner.predict(self.X[name]).reshape(-1, 1))
        return decode_target(
            z.reshape(-1), self.naive[name], self.seasonal[name], self.recipe["target_mode"]
        )


__all__ = [
    "EVAL_HORIZON",
    "MIN_SAMPLES",
    "Problem",
    "decode_target",
    "encode_target",
    "iso_dates",
    "next_dates",
]
