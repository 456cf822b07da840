"""AzuraForge's hyperparameter tuner: a pipeline plugin that runs Optuna studies over any
other installed pipeline, each trial a child experiment (`RunContext.submit`)."""

from .config import HyperTunerConfig
from .pipeline import HyperTuner
from .space import ParamSpec

__all__ = ["HyperTuner", "HyperTunerConfig", "ParamSpec"]
