"""The machinery AzuraForge's forecasting apps share (weather_forecaster, stock_predictor):
a library for pipeline plugins, not a plugin itself (it registers no pipeline)."""

from .config import ForecastConfig
from .data import (
    DataError,
    column_name,
    frame_from_rows,
    package_data_file,
    prepare_frame,
    read_csv,
)
from .pipeline import ForecastPipeline
from .predict import MAX_HORIZON, forecast_horizon

__all__ = [
    "MAX_HORIZON",
    "DataError",
    "ForecastConfig",
    "ForecastPipeline",
    "column_name",
    "forecast_horizon",
    "frame_from_rows",
    "package_data_file",
    "prepare_frame",
    "read_csv",
]
