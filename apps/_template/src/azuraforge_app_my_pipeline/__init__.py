"""A template AzuraForge pipeline plugin (see README.md)."""

from .pipeline import MyPipeline, MyPipelineConfig

__all__ = ["MyPipeline", "MyPipelineConfig"]
