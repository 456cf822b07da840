"""AzuraForge's weather_forecaster pipeline, and the forecasting machinery other
time-series apps reuse (`forecasting`)."""

from .forecasting import DataError, ForecastConfig, ForecastPipeline
from .pipeline import WeatherConfig, WeatherForecaster

__all__ = ["DataError", "ForecastConfig", "ForecastPipeline", "WeatherConfig", "WeatherForecaster"]
