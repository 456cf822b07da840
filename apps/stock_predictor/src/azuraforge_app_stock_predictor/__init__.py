"""AzuraForge's stock_predictor pipeline (built on `azuraforge_forecasting`)."""

from .pipeline import StockConfig, StockPredictor

__all__ = ["StockConfig", "StockPredictor"]
