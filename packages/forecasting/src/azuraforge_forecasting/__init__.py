"""The machinery AzuraForge's forecasting apps share (weather_forecaster, stock_predictor):
a library for pipeline plugins, not a plugin itself (it registers no pipeline)."""

from .pipeline import (
    DataError,
    ForecastConfig,
    ForecastPipeline,
    column_name,
    frame_from_rows,
    package_data_file,
    prepare_frame,
    read_csv,
)

__all__ = [
    "DataError",
    "ForecastConfig",
    "ForecastPipeline",
    "column_name",
    "frame_from_rows",
    "package_data_file",
    "prepare_frame",
    "read_csv",
]
