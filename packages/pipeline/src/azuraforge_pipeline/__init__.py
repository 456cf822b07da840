"""The contract AzuraForge pipeline plugins implement.

A plugin subclasses `Pipeline`, declares a `Config(PipelineConfig)` and registers the class in
the `azuraforge.pipelines` entry-point group; the platform discovers it with `discover()`.
"""

from azuraforge_pipeline.base import (
    ConfigError,
    FieldError,
    Pipeline,
    PipelineConfig,
    PredictionNotSupportedError,
    RunResult,
)
from azuraforge_pipeline.catalog import Application, CatalogEntry, applications, official_catalog
from azuraforge_pipeline.children import (
    FINAL_STATUSES,
    ChildLauncher,
    ChildrenNotSupportedError,
    ChildRun,
    ChildRunError,
    ChildState,
    InlineLauncher,
)
from azuraforge_pipeline.conditions import APPLIES_WHEN, applies_when, applies_when_problems
from azuraforge_pipeline.context import (
    Cancelled,
    Checkpoint,
    PrintReporter,
    RecordingReporter,
    Reporter,
    RunContext,
)
from azuraforge_pipeline.paths import DataPath, PathNotAllowedError, PathPolicy, check_path
from azuraforge_pipeline.registry import (
    ENTRY_POINT_GROUP,
    PipelineRegistry,
    PluginLoadError,
    UnknownPipelineError,
    discover,
)

__all__ = [
    "APPLIES_WHEN",
    "ENTRY_POINT_GROUP",
    "FINAL_STATUSES",
    "Application",
    "Cancelled",
    "CatalogEntry",
    "Checkpoint",
    "ChildLauncher",
    "ChildRun",
    "ChildRunError",
    "ChildState",
    "ChildrenNotSupportedError",
    "InlineLauncher",
    "ConfigError",
    "DataPath",
    "FieldError",
    "PathNotAllowedError",
    "PathPolicy",
    "Pipeline",
    "PipelineConfig",
    "PipelineRegistry",
    "PluginLoadError",
    "PredictionNotSupportedError",
    "PrintReporter",
    "RecordingReporter",
    "Reporter",
    "RunContext",
    "RunResult",
    "UnknownPipelineError",
    "applications",
    "applies_when",
    "applies_when_problems",
    "check_path",
    "discover",
    "official_catalog",
]

__version__ = "0.1.0"
