"""Job execution: `run_experiment` (one run, in this process), `SupervisedRun` (one run in a
child process, watched by its parent) and `LocalExecutor` (the embedded mode's dispatcher)."""

from azuraforge_platform.execution.local import LocalExecutor, SupervisedRun
from azuraforge_platform.execution.reporter import NonFiniteLossError, StoreReporter
from azuraforge_platform.execution.runner import default_worker_name, run_experiment, seed_for

__all__ = [
    "LocalExecutor",
    "NonFiniteLossError",
    "StoreReporter",
    "SupervisedRun",
    "default_worker_name",
    "run_experiment",
    "seed_for",
]
