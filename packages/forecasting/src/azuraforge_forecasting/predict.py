"""Forecasting from a saved model and raw rows: what `ForecastPipeline.predict` does.

The model file carries its whole preprocessing (the recipe: target, inputs, window, the
scalers and the seasonal profile), so the rows come in the dataset's own form and the
answer is in the original units. Steps after the first feed each prediction back as a
new row, so a horizon costs one model call per step: it is bounded by MAX_HORIZON.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from azuraforge_learner import Learner, load_model, scaler_from_state

from .data import DataError, frame_from_rows
from .problem import decode_target, iso_dates, next_dates

if TYPE_CHECKING:
    from .pipeline import ForecastPipeline

MAX_HORIZON = 1000  # steps one `predict` forecasts at most: each is one more model call


def forecast_horizon(value: Any) -> int:
    """A user's `horizon` as a whole number of steps in 1..MAX_HORIZON, or a DataError that
    says what is wrong (a float like 1e20 or Infinity must not become a loop count)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DataError(f"horizon must be a whole number of steps, got {type(value).__name__}")
    whole = not isinstance(value, (float, np.floating)) or (
        np.isfinite(value) and float(value).is_integer()
    )
    if not whole:
        raise DataError(f"horizon must be a whole number of steps, got {float(value)!r}")
    steps = int(value)
    if not 1 <= steps <= MAX_HORIZON:
        raise DataError(f"horizon must be between 1 and {MAX_HORIZON} steps, got {steps:g}")
    return steps


def predict(
    app: type[ForecastPipeline], model_path: str | os.PathLike[str], inputs: Any, horizon: int = 1
) -> dict[str, Any]:
    """`app.predict`: see `ForecastPipeline.predict`."""
    rows = inputs
    if isinstance(inputs, Mapping) and "rows" in inputs:
        rows, horizon = inputs["rows"], inputs.get("horizon", horizon)
        if isinstance(rows, (str, os.PathLike)):
            # A path here would bypass the checks a server applies to a path given as
            # the inputs themselves.
            raise DataError(
                "rows must be a list of row objects; to forecast from a CSV file, give "
                "the file itself as the inputs"
            )
    horizon = forecast_horizon(horizon)
    model, meta = load_model(Path(model_path), with_metadata=True)
    recipe = meta.get("recipe") or {}
    if recipe.get("pipeline") != app.id:
        raise DataError(
            f"{Path(model_path).name} was not trained by {app.id!r} "
            f"(it says {recipe.get('pipeline')!r})"
        )
    target, window = recipe["target"], recipe["window"]
    frame = frame_from_rows(rows, required=[target, *recipe["inputs"]])
    need = app.warmup + window
    if len(frame) < need:
        raise DataError(f"{len(frame)} rows are too few: this model needs the last {need} rows")
    frame = frame[["date", target, *[c for c in recipe["inputs"] if c != target]]]
    scaler = scaler_from_state(recipe["feature_scaler"])
    tscaler = scaler_from_state(recipe["target_scaler"])
    dates, values = [], []
    learner = Learner(model, "mse")
    for _ in range(horizon):
        tail = frame.iloc[-(need + 1) :].reset_index(drop=True)
        feats = scaler.transform(app.engineer(tail, recipe)[-window:]).astype(np.float32)
        z = tscaler.inverse_transform(learner.predict(feats[None]).reshape(-1, 1))[0, 0]
        date = next_dates(tail["date"].to_numpy("datetime64[s]")[-1], 1, recipe["step"])
        last = float(tail[target].iloc[-1])
        value = float(decode_target(z, last, app.season(date, recipe)[0], recipe["target_mode"]))
        dates.append(date[0])
        values.append(value)
        new = app.next_row(tail.iloc[-1].to_dict(), pd.Timestamp(date[0]), value, recipe)
        # the tail is all the next step reads: copying the whole history every step
        # would make a long horizon over a long CSV quadratic
        frame = pd.concat([tail, pd.DataFrame([new])], ignore_index=True)
    return {"target": target, "dates": iso_dates(dates, recipe["step"]), "predictions": values}


__all__ = ["MAX_HORIZON", "forecast_horizon", "predict"]
