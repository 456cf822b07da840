"""`AZURAFORGE_DEVICE=cuda` on a machine with CuPy and a GPU: the worker's preflight finds
the GPUs (in a child process, so the worker's own forks start without a CUDA context).
Marked `gpu`: `make test-gpu` runs it."""

from __future__ import annotations

import pytest

from azuraforge_platform.cli.worker import _check_cuda

pytestmark = pytest.mark.gpu


def test_the_cuda_preflight_counts_the_gpus() -> None:
    assert _check_cuda() >= 1
