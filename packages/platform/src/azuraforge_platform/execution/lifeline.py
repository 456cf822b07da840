"""`die_with_parent()`: a process that must not outlive its parent (the fork server, a run
child) asks the kernel to kill it when the parent goes, even by SIGKILL, when nothing of the
parent runs any more to clean up. Linux's PR_SET_PDEATHSIG; a no-op elsewhere.

The kernel's "parent" is the THREAD that forked: the signal comes when that thread exits,
even while the rest of the parent process lives on. So the fork server must be started from
a thread that lives as long as the runs (see `local.warm_up`); a run child is forked by the
fork server's only thread.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

__all__ = ["die_with_parent"]

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(expected_parent: int | None = None) -> bool:
    """From now on this process gets SIGKILL when its parent (thread) exits. True when set.

    `expected_parent`: the pid the parent must have; by default the parent at the time of
    the call. A parent that died before the call took effect cannot signal any more, so this
    process then kills itself at once, as it would have been killed a moment later.
    """
    if not sys.platform.startswith("linux"):
        return False
    parent = os.getppid() if expected_parent is None else expected_parent
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        failed = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0
    except (OSError, AttributeError) as exc:  # no usable libc (a static build): live as before
        log.warning("cannot tie process %s to its parent: %s", os.getpid(), exc)
        return False
    if failed:
        log.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
        return False
    if os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)
    return True
