"""The worker's entry module: `celery -A azuraforge_platform.worker.app worker`.

Settings are read here, when a worker starts, and the store is opened lazily in each worker
process (after Celery's fork), never shared across processes.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from azuraforge_platform.events import EventService, make_bus
from azuraforge_platform.execution.runner import run_experiment
from azuraforge_platform.settings import get_settings
from azuraforge_platform.store import ExperimentStore
from azuraforge_platform.worker.celery_app import (
    REAP_LOST_TASK,
    RUN_EXPERIMENT_TASK,
    CeleryDispatcher,
    make_celery,
)

__all__ = ["app", "reap_lost", "run_experiment_task"]

settings = get_settings()
app = make_celery(settings)


@lru_cache(maxsize=1)
def _events() -> EventService:
    store = ExperimentStore.from_settings(settings)
    return EventService(store, make_bus(settings.redis_url, prefix=settings.event_channel_prefix))


@app.task(name=RUN_EXPERIMENT_TASK)
def run_experiment_task(experiment_id: str) -> str:
    record = run_experiment(experiment_id, _events(), heartbeat_seconds=settings.heartbeat_seconds)
    return record.status.value


@app.task(name=REAP_LOST_TASK)
def reap_lost() -> list[str]:
    """Re-queue runs whose worker vanished, and hand the re-queued ones out again."""
    events = _events()
    reaped = events.store.reap_lost(timedelta(seconds=settings.lost_after_seconds))
    dispatcher = CeleryDispatcher(app)
    for experiment_id in reaped:
        if events.store.get(experiment_id).status.value == "queued":
            dispatcher.submit(experiment_id)
    return reaped
