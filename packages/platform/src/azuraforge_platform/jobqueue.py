"""The job queue shared by the API (which sends) and the workers (which run): the Celery
application's configuration and the task names. Tasks take experiment ids, have explicit names and are idempotent
(`run_experiment` does nothing for an experiment that is no longer queued), so late
acknowledgement and redelivery after a lost worker are safe.

Start a worker with `celery -A azuraforge_platform.worker.app worker` (the `azuraforge worker`
command wraps it); the API only sends tasks by name and never imports them.
"""

from __future__ import annotations

from celery import Celery

from azuraforge_platform.settings import Settings

__all__ = ["REAP_LOST_TASK", "RUN_EXPERIMENT_TASK", "CeleryDispatcher", "make_celery"]

RUN_EXPERIMENT_TASK = "azuraforge.run_experiment"
REAP_LOST_TASK = "azuraforge.reap_lost"


def make_celery(settings: Settings) -> Celery:
    if not settings.redis_url:
        raise ValueError(
            "distributed mode needs Redis: set AZURAFORGE_REDIS_URL (e.g. redis://localhost:6379/0)"
        )
    app = Celery("azuraforge", broker=settings.redis_url)
    app.conf.update(
        task_default_queue=settings.celery_queue,
        task_ignore_result=True,  # outcomes live in the experiment store
        task_acks_late=True,  # a task lost with its worker is redelivered ...
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,  # ... and a long run never holds others hostage
        broker_connection_retry_on_startup=True,
        # redelivery of an unacknowledged task after the worker vanished; longer than any
        # run would re-run long jobs, so runs beyond it rely on the lost-run reaper instead
        broker_transport_options={"visibility_timeout": settings.celery_visibility_timeout},
        beat_schedule={
            "reap-lost-runs": {"task": REAP_LOST_TASK, "schedule": settings.reap_seconds}
        },
    )
    return app


class CeleryDispatcher:
    """What the API uses in distributed mode to hand a queued experiment to the workers."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def submit(self, experiment_id: str) -> None:
        self.app.send_task(RUN_EXPERIMENT_TASK, args=[experiment_id])
