"""The stock_predictor pipeline: the next closing price from a window of daily OHLCV rows.

The network forecasts the next day's log return, turned back into a price; every test
metric stands next to the naive forecast (tomorrow's close = today's)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from azuraforge_forecasting import DataError, ForecastConfig, ForecastPipeline
from azuraforge_learner.timeseries import calendar_feature_names, calendar_features
from azuraforge_pipeline import DataPath, RunContext, applies_when

from . import data

FEATURES = ["log_return", "log_high_low", "log_close_open", "log_volume_change"]


ONLINE = applies_when(dataset=["yfinance"])


class StockConfig(ForecastConfig):
    dataset: Literal["sp500", "nasdaq", "msft", "yfinance", "csv"] = Field(
        "sp500",
        title="Price series",
        description="sp500 / nasdaq: daily index prices 1999-2018 (offline, from arch); msft: "
        "Microsoft 1986-2017 (offline, needs the 'msft' extra); yfinance: the ticker below "
        "from Yahoo Finance (online, 'online' extra, cached); csv: your own file (csv_path) "
        "with date, open, high, low, close, volume columns.",
    )
    # only the download reads these (the x-applies-when extension: a form shows them for it)
    ticker: str = Field(
        "MSFT",
        pattern=r"^[A-Za-z0-9.^=\-]{1,15}$",
        title="Ticker (yfinance)",
        json_schema_extra=ONLINE,
    )
    start_date: date = Field(
        date(2010, 1, 1), title="First day (yfinance)", json_schema_extra=ONLINE
    )
    end_date: date | None = Field(
        None, title="Last day (yfinance)", description="Empty: today.", json_schema_extra=ONLINE
    )
    cache_dir: DataPath | None = Field(
        None,
        title="Download cache",
        description="The folder downloads are kept in (on a server: inside a data root); "
        "empty: ~/.cache/azuraforge.",
        json_schema_extra=ONLINE,
    )


class StockPredictor(ForecastPipeline[StockConfig]):
    id = "stock_predictor"
    name = "Stock Predictor"
    description = (
        "Forecasts the next closing prices of a stock from its recent daily price rows with "
        "an LSTM/GRU (via log returns), judged against the naive forecast (tomorrow = today)."
    )
    version = "0.1.0"
    Config = StockConfig
    warmup = 1  # the first row has no previous close, so no return
    what = "prices"

    def load_frame(self, config: StockConfig, context: RunContext) -> tuple[pd.DataFrame, str]:
        if config.dataset in data.BUILTIN:
            return data.load_builtin(config.dataset)
        if config.dataset == "csv":
            if config.csv_path is None:  # validation refused this already: for the type checker
                raise DataError("csv_path is required when dataset is 'csv'")
            return data.load_csv(config.csv_path)
        cache = Path(config.cache_dir or Path.home() / ".cache" / "azuraforge").expanduser()
        frame = data.fetch_yfinance(config.ticker, config.start_date, config.end_date, cache)
        return frame, f"{config.ticker.upper()} daily prices (Yahoo Finance)"

    def make_recipe(self, config: StockConfig, frame: pd.DataFrame) -> dict[str, Any]:
        return {
            "target": "close",
            "inputs": list(data.PRICE_COLUMNS),
            "target_mode": "log_return",
            "window": config.window,
            "step": "B",  # business days (exchange holidays are not known here)
            "seasonal_cycles": None,
            "calendar_cycles": ["week"],
        }

    @classmethod
    def engineer(cls, frame: pd.DataFrame, recipe: Mapping[str, Any]) -> np.ndarray:
        # Scale-free features, so a model trained at S&P 1,000 still reads S&P 2,500.
        o, h, low, c, v = (frame[k].to_numpy(np.float64) for k in data.PRICE_COLUMNS)
        with np.errstate(divide="ignore", invalid="ignore"):
            ret = np.r_[np.nan, np.diff(np.log(c))]
            vol = np.r_[np.nan, np.diff(np.log1p(v))]
            cols = [ret, np.log(h / low), np.log(c / o), vol]
        dates = frame["date"].to_numpy("datetime64[s]")
        return np.column_stack([*cols, calendar_features(dates, recipe["calendar_cycles"])])

    @classmethod
    def feature_names(cls, recipe: Mapping[str, Any]) -> list[str]:
        return FEATURES + calendar_feature_names(recipe["calendar_cycles"])

    @classmethod
    def next_row(cls, last: Mapping[str, Any], date: Any, value: float,
                 recipe: Mapping[str, Any]) -> dict[str, Any]:  # fmt: skip
        # Only the close is forecast: the day is assumed to open at the last close and trade
        # between the two, on the last day's volume.
        prev = float(last["close"])
        return {"date": date, "open": prev, "high": max(prev, value), "low": min(prev, value),
                "close": value, "volume": last["volume"]}  # fmt: skip


__all__ = ["StockConfig", "StockPredictor"]
