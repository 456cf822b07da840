"""Job execution: `run_experiment` (one run, in this process) and `LocalExecutor` (runs in
child processes, for the embedded mode)."""

from azuraforge_platform.execution.local import LocalExecutor
from azuraforge_platform.execution.reporter import StoreReporter
from azuraforge_platform.execution.runner import default_worker_name, run_experiment, seed_for

__all__ = ["LocalExecutor", "StoreReporter", "default_worker_name", "run_experiment", "seed_for"]
