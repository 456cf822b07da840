"""The weather_forecaster pipeline: the next value of a weather reading (daily or hourly) from
a window of past rows, judged against persistence and the seasonal average."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from azuraforge_forecasting import DataError, ForecastConfig, ForecastPipeline
from azuraforge_learner.timeseries import SeasonalProfile, calendar_feature_names, calendar_features
from azuraforge_pipeline import DataPath, RunContext, applies_when

from . import data

PREFERRED_TARGETS = ("temp_max", "temp", "temperature", "temperature_2m")


ONLINE = applies_when(dataset=["open_meteo"])


class WeatherConfig(ForecastConfig):
    dataset: Literal["seattle", "sf_hourly", "open_meteo", "csv"] = Field(
        "seattle",
        title="Dataset",
        description="seattle: Seattle daily weather 2012-2015 (offline); sf_hourly: San "
        "Francisco hourly temperature 2010 (offline); open_meteo: Open-Meteo's archive for "
        "the coordinates below (online, cached); csv: your own file (csv_path).",
    )
    target: str | None = Field(
        None,
        title="Target column",
        description="What to forecast; empty: the main temperature column (temp_max, temp).",
    )
    features: list[str] | None = Field(
        None,
        title="Input columns",
        description="Columns the model reads (the target is always one); empty: every "
        "numeric column.",
    )
    window: int | None = Field(  # type: ignore[assignment]
        None,
        ge=1,
        le=365,
        title="Window",
        description="Past rows the model sees; empty: 2 for daily data, 24 for hourly.",
    )
    hidden_size: int = Field(32, ge=2, le=512, title="Hidden units")
    epochs: int = Field(100, ge=1, le=1000, title="Epochs", description="At most this many.")
    patience: int = Field(10, ge=0, le=100, title="Early-stopping patience")
    batch_size: int = Field(32, ge=1, le=4096, title="Batch size")
    learning_rate: float = Field(3e-3, gt=0, le=1, title="Learning rate (Adam)")
    # only the download reads these (the x-applies-when extension: a form shows them for it)
    latitude: float = Field(
        47.61, ge=-90, le=90, title="Latitude (open_meteo)", json_schema_extra=ONLINE
    )
    longitude: float = Field(
        -122.33, ge=-180, le=180, title="Longitude (open_meteo)", json_schema_extra=ONLINE
    )
    start_date: date = Field(
        date(2015, 1, 1), title="First day (open_meteo)", json_schema_extra=ONLINE
    )
    end_date: date = Field(
        date(2024, 12, 31), title="Last day (open_meteo)", json_schema_extra=ONLINE
    )
    frequency: Literal["daily", "hourly"] = Field(
        "daily", title="Rows (open_meteo)", json_schema_extra=ONLINE
    )
    cache_dir: DataPath | None = Field(
        None,
        title="Download cache",
        description="The folder downloads are kept in (on a server: inside a data root); "
        "empty: ~/.cache/azuraforge.",
        json_schema_extra=ONLINE,
    )


class WeatherForecaster(ForecastPipeline[WeatherConfig]):
    id = "weather_forecaster"
    name = "Weather Forecaster"
    description = (
        "Forecasts the next value of a weather reading (daily maximum temperature by default) "
        "from a window of past rows and calendar features, judged against persistence and "
        "the seasonal average."
    )
    version = "0.1.0"
    Config = WeatherConfig
    what = "weather"

    def load_frame(self, config: WeatherConfig, context: RunContext) -> tuple[pd.DataFrame, str]:
        if config.dataset in data.BUILTIN:
            return data.load_builtin(config.dataset)
        if config.dataset == "csv":
            if config.csv_path is None:  # validation refused this already: for the type checker
                raise DataError("csv_path is required when dataset is 'csv'")
            return data.load_csv(config.csv_path)
        if config.end_date < config.start_date:
            raise DataError("end_date is before start_date")
        url = data.open_meteo_url(config.latitude, config.longitude, config.start_date,
                                  config.end_date, config.frequency)  # fmt: skip
        cache = Path(config.cache_dir or Path.home() / ".cache" / "azuraforge").expanduser()
        context.log(f"Open-Meteo archive: {url}")
        frame = data.parse_open_meteo(data.fetch_open_meteo(url, cache))
        where = f"{config.latitude:.2f}, {config.longitude:.2f}"
        return frame, f"Open-Meteo {config.frequency} weather at {where}"

    def make_recipe(self, config: WeatherConfig, frame: pd.DataFrame) -> dict[str, Any]:
        numeric = [c for c in frame.columns if c != "date"]
        target = config.target or next((c for c in PREFERRED_TARGETS if c in numeric), None)
        if target is None or target not in numeric:
            asked = f"no numeric column {target!r}" if target else "no temperature column"
            raise DataError(f"the data has {asked} to forecast; set target to one of: {numeric}")
        inputs = list(config.features or numeric)
        missing = [c for c in inputs if c not in numeric]
        if missing:
            raise DataError(
                f"the input column(s) {missing} are not numeric columns of the data: {numeric}"
            )
        inputs = [target, *[c for c in inputs if c != target]]
        seconds = float(
            np.median(np.diff(frame["date"].to_numpy("datetime64[s]").astype(np.int64)))
        )
        cycles = ["year"] if seconds >= 86400 * 0.9 else ["year", "day"]
        return {
            "target": target,
            "inputs": inputs,
            "target_mode": "anomaly",
            "window": config.window or (2 if len(cycles) == 1 else 24),
            "step": seconds,
            "seasonal_cycles": cycles,
            "calendar_cycles": cycles,
        }

    @classmethod
    def engineer(cls, frame: pd.DataFrame, recipe: Mapping[str, Any]) -> np.ndarray:
        # Readings minus their seasonal average (fitted on training rows), plus the calendar:
        # the network then learns how anomalies persist, not the season itself.
        dates = frame["date"].to_numpy("datetime64[s]")
        values = frame[list(recipe["inputs"])].to_numpy(np.float64)
        season = SeasonalProfile.from_state(recipe["seasonal"]).predict(dates)[:, 1:]
        return np.concatenate(
            [values - season, calendar_features(dates, recipe["calendar_cycles"])], 1
        )

    @classmethod
    def feature_names(cls, recipe: Mapping[str, Any]) -> list[str]:
        anomalies = [f"{c}_anomaly" for c in recipe["inputs"]]
        return anomalies + calendar_feature_names(recipe["calendar_cycles"])


__all__ = ["WeatherConfig", "WeatherForecaster"]
