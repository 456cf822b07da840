"""Distributed execution with Celery: thin tasks over `run_experiment` (queue config: ../jobqueue.py)."""

from azuraforge_platform.jobqueue import (
    REAP_LOST_TASK,
    RUN_EXPERIMENT_TASK,
    CeleryDispatcher,
    make_celery,
)

__all__ = ["REAP_LOST_TASK", "RUN_EXPERIMENT_TASK", "CeleryDispatcher", "make_celery"]
