"""AzuraForge's stock_predictor pipeline (built on the weather app's forecasting machinery)."""

from .pipeline import StockConfig, StockPredictor

__all__ = ["StockConfig", "StockPredictor"]
