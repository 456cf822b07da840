"""Distributed execution with Celery: thin tasks over `run_experiment` (see celery_app.py)."""

from azuraforge_platform.worker.celery_app import (
    REAP_LOST_TASK,
    RUN_EXPERIMENT_TASK,
    CeleryDispatcher,
    make_celery,
)

__all__ = ["REAP_LOST_TASK", "RUN_EXPERIMENT_TASK", "CeleryDispatcher", "make_celery"]
