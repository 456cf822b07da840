"""AzuraForge's weather_forecaster pipeline (built on `azuraforge_forecasting`)."""

from azuraforge_forecasting import DataError

from .pipeline import WeatherConfig, WeatherForecaster

__all__ = ["DataError", "WeatherConfig", "WeatherForecaster"]
