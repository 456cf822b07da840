"""The multiprocessing context every child process of the platform starts from: training runs
(`SupervisedRun`) and predictions (`PredictionSandbox`).

Not plain fork: the parent has threads (dispatcher, API server) and open connections. A fork
server is a clean single-threaded process that imported the platform and the installed pipeline
plugins once (`preload`) and forks a child per run or prediction in milliseconds; spawn
(Windows) re-imports everything every time.
"""

from __future__ import annotations

import multiprocessing
from typing import Any

__all__ = ["mp_context", "warm_up"]

if "forkserver" in multiprocessing.get_all_start_methods():
    mp_context: Any = multiprocessing.get_context("forkserver")
    # __main__ too: each child re-runs the main script, which is cheap once it was imported.
    mp_context.set_forkserver_preload(
        [
            "__main__",
            "azuraforge_platform.execution.local",
            "azuraforge_platform.execution.predict",
            "azuraforge_platform.execution.preload",
        ]
    )
else:  # pragma: no cover - Windows
    mp_context = multiprocessing.get_context("spawn")


def warm_up() -> None:
    """Start the fork server now, so the first run or prediction does not wait for it."""
    if mp_context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
