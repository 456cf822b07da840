"""The experiment store: experiments, metrics, logs, events, artifacts and uploads in SQL."""

from azuraforge_platform.store.bucket import ArtifactBucket, one_byte_range
from azuraforge_platform.store.engine import make_engine, normalize_url
from azuraforge_platform.store.experiment_store import ExperimentStore
from azuraforge_platform.store.experiments import SORT_FIELDS
from azuraforge_platform.store.migrate import (
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from azuraforge_platform.store.model_registry import (
    ModelExistsError,
    ModelNotFoundError,
    ModelRecord,
    ModelRegistry,
)
from azuraforge_platform.store.records import (
    ArtifactNotFoundError,
    ArtifactPathError,
    ArtifactRangeError,
    ArtifactRecord,
    EventRecord,
    ExperimentNotFoundError,
    ExperimentRecord,
    LogRecord,
    MetricRecord,
    MetricValue,
    Page,
    StoreError,
)
from azuraforge_platform.store.status import ALLOWED_TRANSITIONS, InvalidTransitionError
from azuraforge_platform.store.tables import ExperimentStatus
from azuraforge_platform.store.uploads import UploadQuotaError, UploadRecord, UploadStore

__all__ = [
    "ALLOWED_TRANSITIONS",
    "SORT_FIELDS",
    "ArtifactBucket",
    "ArtifactNotFoundError",
    "ArtifactPathError",
    "ArtifactRangeError",
    "ArtifactRecord",
    "EventRecord",
    "ExperimentNotFoundError",
    "ExperimentRecord",
    "ExperimentStatus",
    "ExperimentStore",
    "InvalidTransitionError",
    "LogRecord",
    "MetricRecord",
    "MetricValue",
    "ModelExistsError",
    "ModelNotFoundError",
    "ModelRecord",
    "ModelRegistry",
    "Page",
    "StoreError",
    "UploadQuotaError",
    "UploadRecord",
    "UploadStore",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "make_engine",
    "normalize_url",
    "upgrade",
    "one_byte_range",
]
