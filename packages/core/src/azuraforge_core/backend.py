"""The one place that knows about numpy versus CuPy.

Every op asks `get_array_module(array)` for `xp` and then speaks the numpy API.
The backend is a property of each array (and so of each tensor); nothing here reads
an environment variable, and CuPy is imported only when a tensor is first moved to
or found on a GPU.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any

import numpy as np

_cupy: ModuleType | None = None
_cupy_error: str | None = None

# glibc's malloc parameters (mallopt's option numbers).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 << 20  # the largest glibc accepts on 64-bit
_TRIM_THRESHOLD = 128 << 20
_memory_kept = False  # keep_freed_memory() already ran in this process


def keep_freed_memory_once() -> None:
    if not _memory_kept:
        keep_freed_memory()


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed host memory for reuse instead of returning it to the OS.

    A training step allocates and frees the same few-megabyte arrays (im2col columns,
    activations, gradients) every time. By default glibc serves such sizes with fresh
    mmap pages, or trims them off the heap when freed, so each step page-faults the
    memory in again: measured 2,700 faults and about a third of a LeNet step's CPU time.
    With these settings arrays up to 32 MiB come from the heap, and up to 128 MiB of
    freed heap is kept. Returns False (and changes nothing) where the C library is not
    glibc. `Tensor.backward()` calls it once per process, so a process that only imports
    the engine or runs inference (an API server, say) keeps glibc's defaults.
    """
    global _memory_kept
    _memory_kept = True
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return False
        import ctypes

        libc = ctypes.CDLL(None)
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD)
    except (AttributeError, OSError, ValueError):
        return False
    return bool(ok)


def _load_cupy() -> ModuleType | None:
    """Import CuPy once, remembering why it failed so errors can say so."""
    global _cupy, _cupy_error
    if _cupy is not None or _cupy_error is not None:
        return _cupy
    try:
        import cupy
    except Exception as exc:  # ImportError, or a broken CUDA install
        _cupy_error = f"CuPy is not installed or failed to import ({exc.__class__.__name__}: {exc})"
        return None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        _cupy_error = f"CuPy is installed but CUDA is unusable ({exc})"
        return None
    if count < 1:
        _cupy_error = "CuPy is installed but no CUDA GPU is visible"
        return None
    _cupy = cupy
    return cupy


def cuda_available() -> bool:
    """True when CuPy imports and at least one CUDA GPU is visible."""
    return _load_cupy() is not None


def require_cupy() -> ModuleType:
    cp = _load_cupy()
    if cp is None:
        raise RuntimeError(
            f"a CUDA device was requested but {_cupy_error}. "
            "Install the GPU extra (pip install 'azuraforge-core[cuda]') on a machine with an "
            "NVIDIA GPU, or keep the tensor on 'cpu'."
        )
    return cp


def get_array_module(array: Any) -> ModuleType:
    """numpy for host arrays (and scalars), cupy for device arrays."""
    if isinstance(array, np.ndarray) or _cupy is None:
        return np
    return _cupy.get_array_module(array)


def is_device_array(array: Any) -> bool:
    return _cupy is not None and isinstance(array, _cupy.ndarray)


def device_of(array: Any) -> str:
    if is_device_array(array):
        return f"cuda:{array.device.id}"
    return "cpu"


def parse_device(device: str) -> tuple[str, int]:
    """'cpu' -> ('cpu', 0); 'cuda' / 'cuda:1' / 'gpu' -> ('cuda', index)."""
    if not isinstance(device, str):
        raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {device!r}")
    name, _, index = device.strip().lower().partition(":")
    if name == "gpu":
        name = "cuda"
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")
    try:
        idx = int(index) if index else 0
    except ValueError:
        raise ValueError(f"bad device index in {device!r}") from None
    return name, idx


def to_device(array: Any, device: str) -> Any:
    """Copy an array to `device` ('cpu' or 'cuda[:N]'); returns it unchanged if already there."""
    name, idx = parse_device(device)
    if name == "cpu":
        return to_numpy(array)
    cp = require_cupy()
    with cp.cuda.Device(idx):
        return cp.asarray(array)


def to_numpy(array: Any) -> np.ndarray:
    if is_device_array(array):
        return array.get()
    return np.asarray(array)


def scatter_add(target: Any, index: Any, values: Any) -> None:
    """target[index] += values, adding repeated indices (`add.at` of numpy or CuPy)."""
    if isinstance(target, np.ndarray):
        np.add.at(target, index, values)
        return
    import cupy

    add_at = getattr(cupy.add, "at", None)
    if add_at is not None:
        add_at(target, index, values)
    else:  # CuPy before ufunc.at (cupyx.scatter_add is deprecated since)
        import cupyx

        cupyx.scatter_add(target, index, values)
