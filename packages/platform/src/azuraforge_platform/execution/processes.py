"""The multiprocessing context every child process of the platform starts from: training runs
(`SupervisedRun`) and predictions (`PredictionSandbox`).

Not plain fork: the parent has threads (dispatcher, API server) and open connections. A fork
server is a clean single-threaded process that imported the platform and the installed pipeline
plugins once (`preload`) and forks a child per run or prediction in milliseconds; spawn
(Windows) re-imports everything every time.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from typing import Any

from azuraforge_platform.execution.lifeline import die_with_parent

__all__ = ["FORK_SERVER_PID", "mp_context", "warm_up"]

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


def _in_fork_server() -> bool:
    """True while the fork server imports this module (its preload): its main() is running."""
    forkserver = sys.modules.get("multiprocessing.forkserver")
    frame = sys._getframe() if forkserver is not None else None
    while frame is not None:
        if frame.f_code is forkserver.main.__code__:  # type: ignore[union-attr]
            return True
        frame = frame.f_back
    return False


# The fork server dies with the thread that started it (killing the API process by SIGKILL
# would leave it, and the runs it forked, going on as orphans), and every child it forks
# inherits its pid: the parent that child must die with.
FORK_SERVER_PID: int | None = None
if _in_fork_server():
    die_with_parent()
    FORK_SERVER_PID = os.getpid()


def warm_up() -> None:
    """Start the fork server now, so the first run or prediction does not wait for it.

    Call it from a thread that lives as long as the runs (the main thread of `up` and of a
    worker): the fork server, and so every child, dies with the thread that started it."""
    if mp_context.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()
