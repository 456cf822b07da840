"""`ExperimentStore`: the one API the HTTP server, the CLI and the workers use to read and
write experiments. It hands out plain frozen records (`records.py`), never live ORM objects.

Each concern lives in its own module and is mixed in here: `experiments.py` (create, list,
search, delete), `lifecycle.py` (the status machine), `metrics.py`, `logs_events.py` and
`artifacts.py`, `stats.py` (counts for monitoring), all on `base.py`'s engine and session helpers."""

from __future__ import annotations

from azuraforge_platform.settings import Settings
from azuraforge_platform.store.artifacts import ArtifactsMixin
from azuraforge_platform.store.bucket import ArtifactBucket
from azuraforge_platform.store.experiments import ExperimentsMixin
from azuraforge_platform.store.logs_events import LogsEventsMixin
from azuraforge_platform.store.metrics import MetricsMixin
from azuraforge_platform.store.stats import StatsMixin
from azuraforge_platform.store.status import LifecycleMixin

__all__ = ["ExperimentStore"]


class ExperimentStore(
    ExperimentsMixin, LifecycleMixin, MetricsMixin, LogsEventsMixin, ArtifactsMixin, StatsMixin
):
    """Experiments and everything they produce, on SQLite or PostgreSQL.

    Creating a store migrates its database to the latest schema on first use. Writes on
    SQLite take the write lock up front; state changes are conditional UPDATEs, so two
    workers can never both claim or finish the same experiment.
    """

    @classmethod
    def from_settings(cls, settings: Settings) -> ExperimentStore:
        """The store the settings describe (SQLite under data_dir unless a URL is set)."""
        return cls(
            settings.resolved_database_url,
            settings.resolved_artifact_root,
            bucket=ArtifactBucket.from_settings(settings),
        )
