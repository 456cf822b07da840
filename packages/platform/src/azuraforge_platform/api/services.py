"""What the API process holds while it runs: store, accounts, events, uploads, pipelines, job
dispatch, the prediction sandbox."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azuraforge_pipeline import PipelineRegistry, discover
from azuraforge_platform.accounts import Accounts
from azuraforge_platform.api.live import LiveHub
from azuraforge_platform.events import EventService, make_bus
from azuraforge_platform.execution.predict import PredictionSandbox
from azuraforge_platform.lifecycle import Dispatcher, Lifecycle
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import (
    ArtifactBucket,
    ExperimentStore,
    ModelRegistry,
    UploadStore,
    make_engine,
)
from azuraforge_platform.store.accounts import AccountStore

__all__ = ["Services"]

log = logging.getLogger(__name__)

HOUSEKEEPING_SECONDS = 3600.0


class _NoDispatch:
    """`run_jobs=False`: experiments stay queued until some worker picks them up."""

    def submit(self, experiment_id: str) -> None:
        pass


@dataclass
class Services:
    settings: Settings
    store: ExperimentStore
    events: EventService
    lifecycle: Lifecycle
    models: ModelRegistry
    accounts: Accounts
    uploads: UploadStore
    hub: LiveHub
    dispatcher: Dispatcher
    predictions: PredictionSandbox
    mode: str  # "embedded" or "distributed"
    executor: Any = None  # LocalExecutor in embedded mode
    celery: Any = None  # Celery app in distributed mode
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    _registry: PipelineRegistry | None = None
    _registry_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    _housekeeper: threading.Thread = field(init=False)

    def __post_init__(self) -> None:
        self._housekeeper = threading.Thread(
            target=self._keep_house, name="azf-housekeeping", daemon=True
        )

    def _keep_house(self) -> None:
        """Prunes expired credentials and old audit events at start and then hourly (every
        API instance does; the deletes are idempotent)."""
        while True:
            try:
                pruned = self.accounts.prune()
                if any(pruned.values()):
                    log.info("pruned %s", pruned)
            except Exception as exc:  # the database is away: try again next time
                log.warning("pruning credentials and audit events failed: %s", exc)
            if self._closing.wait(HOUSEKEEPING_SECONDS):
                return

    @classmethod
    def start(cls, settings: Settings, *, run_jobs: bool = True) -> Services:
        url = settings.resolved_database_url
        kwargs: dict[str, Any] = {}
        if not url.startswith("sqlite"):
            # the threadpool serves up to 40 requests at once; let them all hold a connection
            kwargs = {"pool_size": 20, "max_overflow": 30}
        store = ExperimentStore(
            url,
            settings.resolved_artifact_root,
            engine=make_engine(url, **kwargs),
            bucket=ArtifactBucket.from_settings(settings),
        )
        bus = make_bus(settings.redis_url, prefix=settings.event_channel_prefix)
        events = EventService(store, bus)
        mode = "distributed" if settings.redis_url else "embedded"
        executor: Any = None
        celery: Any = None
        dispatcher: Dispatcher = _NoDispatch()
        if run_jobs and mode == "embedded":
            from azuraforge_platform.execution import LocalExecutor

            executor = LocalExecutor(
                settings, store, bus, max_workers=settings.embedded_workers
            ).start()
            dispatcher = executor
        elif mode == "distributed":
            from azuraforge_platform.jobqueue import CeleryDispatcher, make_celery

            celery = make_celery(settings)
            if run_jobs:
                dispatcher = CeleryDispatcher(celery)
        services = cls(
            settings=settings,
            store=store,
            events=events,
            lifecycle=Lifecycle(events, dispatcher),
            models=ModelRegistry(store),
            accounts=Accounts(AccountStore(store), settings),
            uploads=UploadStore(store),
            hub=LiveHub(events),
            dispatcher=dispatcher,
            predictions=PredictionSandbox.from_settings(settings).start(),
            mode=mode,
            executor=executor,
            celery=celery,
        )
        services.pipelines()  # discover once now: the first request should not pay for it
        services._housekeeper.start()
        return services

    def pipelines(self, *, refresh: bool = False) -> PipelineRegistry:
        """The installed pipelines; re-discovered at most every 30 s (or on `refresh`)."""
        with self._lock:
            stale = time.monotonic() - self._registry_at > 30.0
            if self._registry is None or refresh or stale:
                self._registry = discover()
                self._registry_at = time.monotonic()
                for err in self._registry.errors:
                    log.warning("pipeline plugin %s failed to load: %s", err.name, err.error)
            return self._registry

    def close(self) -> None:
        self._closing.set()
        if self._housekeeper.is_alive():
            self._housekeeper.join()
        self.hub.close()
        self.predictions.close()
        if self.executor is not None:
            self.executor.stop()
        self.events.bus.close()
        self.store.close()
