"""The smallest forecaster app: a daily 'value' column (plus an 'other' input) from a CSV,
its raw columns as the features. Lets the tests run ForecastPipeline without an app."""

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from azuraforge_forecasting import ForecastConfig, ForecastPipeline, prepare_frame, read_csv
from azuraforge_pipeline import RunContext


class ToyConfig(ForecastConfig):
    dataset: Literal["csv"] = "csv"
    target_mode: Literal["anomaly", "log_return"] = "anomaly"


class ToyForecaster(ForecastPipeline):
    id = "toy_forecaster"
    name = "Toy Forecaster"
    Config = ToyConfig

    def load_frame(self, config: Any, context: RunContext) -> tuple[pd.DataFrame, str]:
        frame = prepare_frame(read_csv(config.csv_path), required=["value"], quote_values=False)
        return frame, "a toy CSV"

    def make_recipe(self, config: Any, frame: pd.DataFrame) -> dict[str, Any]:
        return toy_recipe(config.window, config.target_mode)

    @classmethod
    def engineer(cls, frame: pd.DataFrame, recipe: Mapping[str, Any]) -> np.ndarray:
        return frame[list(recipe["inputs"])].to_numpy(np.float64)

    @classmethod
    def feature_names(cls, recipe: Mapping[str, Any]) -> list[str]:
        return list(recipe["inputs"])


class OtherForecaster(ToyForecaster):
    id = "other_forecaster"


def toy_recipe(window: int, target_mode: str = "anomaly") -> dict[str, Any]:
    return {
        "target": "value",
        "inputs": ["value", "other"],
        "target_mode": target_mode,
        "window": window,
        "step": 86400.0,  # daily
        "seasonal_cycles": None,
    }


def toy_series(n: int = 300, seed: int = 0, trend: float = 0.0) -> pd.DataFrame:
    """Daily rows whose value flips sign around its level day to day (phi = -0.8): the
    window predicts tomorrow well, while 'tomorrow = today' gets it badly wrong."""
    rng = np.random.default_rng(seed)
    anomaly = np.zeros(n)
    for t in range(1, n):
        anomaly[t] = -0.8 * anomaly[t - 1] + rng.normal(0, 1.0)
    return pd.DataFrame({
        "date": pd.date_range("2020-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "value": np.round(50 + trend * np.arange(n) + anomaly, 4),
        "other": np.round(rng.uniform(0, 1, n), 4),
    })  # fmt: skip
