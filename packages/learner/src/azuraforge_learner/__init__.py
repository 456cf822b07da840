"""azuraforge_learner: layers, losses, optimizers and the Learner fit loop, on azuraforge_core."""

from .module import Module, Parameter, Sequential, build, registered_modules

__all__ = ["Module", "Parameter", "Sequential", "build", "registered_modules"]
