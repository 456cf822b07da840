"""Saving and loading models and training checkpoints, without pickle.

File format: ONE safetensors file. Its tensors are the model's `state_dict()` under their
own names (so other safetensors tools can read the weights). Its string metadata header
holds JSON:

    format          'azuraforge.model' or 'azuraforge.checkpoint'
    format_version  '1'
    architecture    model.describe(): rebuilt with `build()` from registered Module classes
    metadata        the caller's extra JSON (scalers, feature lists, class names, ...)
    sha256          a digest of every tensor (name, dtype, shape, bytes): corruption inside
                    the data is caught, not only a truncated file
    checkpoint      (checkpoints only) epoch, optimizer/scheduler state, RNG state, extra

Optimizer buffers in a checkpoint are stored as tensors under the reserved prefix
`__state__/`, referenced from the JSON by name. Loading parses the header itself, builds
the model from the architecture and checks every shape, so a wrong, truncated or corrupt
file is rejected with a `ModelFileError` that says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .module import Module, build

FORMAT_MODEL = "azuraforge.model"
FORMAT_CHECKPOINT = "azuraforge.checkpoint"
FORMAT_VERSION = "1"
STATE_PREFIX = "__state__/"
_MAX_HEADER = 100_000_000


class ModelFileError(ValueError):
    """A model or checkpoint file that cannot be loaded: missing, truncated, corrupt, or not
    matching its own architecture description."""


# --------------------------------------------------------------------- helpers
def _contig(arr: np.ndarray) -> np.ndarray:
    # not np.ascontiguousarray: it turns 0-d arrays (e.g. step counters) into shape (1,)
    return arr if arr.flags.c_contiguous else arr.copy(order="C")


def _digest(tensors: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        arr = tensors[name]
        h.update(name.encode())
        h.update(f"|{arr.dtype.str}|{arr.shape}|".encode())
        h.update(_contig(arr).tobytes())
    return h.hexdigest()


def _pack(obj: Any, prefix: str, tensors: dict[str, np.ndarray]) -> Any:
    """JSON-able copy of `obj` with arrays moved into `tensors` (left as references)."""
    if isinstance(obj, dict):
        return {str(k): _pack(v, f"{prefix}/{k}", tensors) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_pack(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray) or hasattr(obj, "__cuda_array_interface__"):
        from azuraforge_core.backend import to_numpy

        tensors[prefix] = _contig(np.asarray(to_numpy(obj)))
        return {"__tensor__": prefix}
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def _unpack(obj: Any, tensors: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {"__tensor__"}:
            name = obj["__tensor__"]
            if name not in tensors:
                raise ModelFileError(
                    f"the checkpoint refers to tensor {name!r}, which it does not contain"
                )
            return tensors[name]
        return {k: _unpack(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_unpack(v, tensors) for v in obj]
    return obj


def _write(path: Path, tensors: dict[str, np.ndarray], meta: dict[str, str]) -> Path:
    from safetensors.numpy import save  # lazy: importing the learner stays light

    path.parent.mkdir(parents=True, exist_ok=True)
    contiguous = {k: _contig(np.asarray(v)) for k, v in tensors.items()}
    meta = {**meta, "sha256": _digest(contiguous)}
    blob = save(contiguous, metadata=meta)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with open(tmp, "wb") as f:  # write then rename: a crash never leaves half a file at `path`
        f.write(blob)
    os.replace(tmp, path)
    return path


def _read(path: str | Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """(metadata header, tensors) of a safetensors file, validated."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no model file at {p}")
    blob = p.read_bytes()
    where = f"{p} is not a valid AzuraForge model file"
    if len(blob) < 8:
        raise ModelFileError(f"{where}: it is truncated ({len(blob)} bytes)")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > _MAX_HEADER or 8 + n > len(blob):
        raise ModelFileError(
            f"{where}: it is truncated or corrupt (header of {n} bytes in a {len(blob)}-byte file)"
        )
    try:
        header = json.loads(blob[8 : 8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{where}: its header is corrupt ({exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{where}: its header is not a JSON object")
    meta = header.get("__metadata__") or {}
    if meta.get("format") not in (FORMAT_MODEL, FORMAT_CHECKPOINT):
        raise ModelFileError(f"{where}: no AzuraForge format marker in its header")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{p}: format version {meta.get('format_version')!r} is not supported (expected {FORMAT_VERSION})"
        )
    from safetensors.numpy import load

    try:
        tensors = load(blob)
    except Exception as exc:  # safetensors reports truncation/offset errors as its own type
        raise ModelFileError(f"{where}: it is truncated or corrupt ({exc})") from None
    expected = meta.get("sha256")
    if expected is None or _digest(tensors) != expected:
        raise ModelFileError(
            f"{where}: the checksum of its tensors does not match; the file is corrupt"
        )
    return meta, tensors


def _json_field(meta: dict[str, str], key: str, path: Any, default: Any = None) -> Any:
    raw = meta.get(key)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ModelFileError(
            f"{path}: the '{key}' entry of the header is not valid JSON ({exc})"
        ) from None


def _build_and_load(
    meta: dict[str, str], tensors: dict[str, np.ndarray], path: Any, model: Module | None
) -> Module:
    weights = {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}
    if model is None:
        arch = _json_field(meta, "architecture", path)
        if arch is None:
            raise ModelFileError(f"{path}: the file has no architecture description")
        try:
            model = build(arch)
        except ValueError as exc:
            raise ModelFileError(
                f"{path}: cannot rebuild the model from its description: {exc}"
            ) from None
    try:
        model.load_state_dict(weights, strict=True)
    except (KeyError, ValueError) as exc:
        msg = exc.args[0] if exc.args else str(exc)
        raise ModelFileError(
            f"{path}: the weights do not match the model architecture: {msg}"
        ) from None
    return model


def _json_text(value: Any, what: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{what} must be JSON-serialisable: {exc}") from None


# ------------------------------------------------------------------- models
def save_model(model: Module, path: str | Path, metadata: dict[str, Any] | None = None) -> Path:
    """Write the model's weights, architecture and `metadata` (JSON-able) to one file."""
    meta = {
        "format": FORMAT_MODEL,
        "format_version": FORMAT_VERSION,
        "architecture": _json_text(model.describe(), "the model description"),
        "metadata": _json_text(metadata or {}, "metadata"),
    }
    return _write(Path(path), model.state_dict(), meta)


def load_model(path: str | Path, with_metadata: bool = False) -> Any:
    """Rebuild a model saved by `save_model` (or the model inside a checkpoint), on the CPU.

    Returns the model, or (model, metadata) with `with_metadata=True`.
    """
    meta, tensors = _read(path)
    model = _build_and_load(meta, tensors, path, None)
    model.eval()
    if with_metadata:
        return model, _json_field(meta, "metadata", path, {})
    return model


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The caller's metadata stored with a model or checkpoint."""
    meta, _ = _read(path)
    return _json_field(meta, "metadata", path, {})


def read_architecture(path: str | Path) -> dict[str, Any]:
    meta, _ = _read(path)
    return _json_field(meta, "architecture", path)


# -------------------------------------------------------------- checkpoints
def save_checkpoint(
    path: str | Path,
    model: Module,
    optimizer: Any = None,
    scheduler: Any = None,
    epoch: int = 0,
    rng_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """A resumable snapshot: weights + architecture, optimizer and scheduler state, the
    epoch reached, RNG state and any JSON-able `extra` (e.g. history)."""
    tensors = model.state_dict()
    clash = [k for k in tensors if k.startswith(STATE_PREFIX)]
    if clash:
        raise ValueError(f"parameter names may not start with {STATE_PREFIX!r}: {clash}")
    body = {
        "epoch": int(epoch),
        "optimizer": _pack(optimizer.state_dict(), STATE_PREFIX + "optimizer", tensors)
        if optimizer
        else None,
        "scheduler": _pack(scheduler.state_dict(), STATE_PREFIX + "scheduler", tensors)
        if scheduler
        else None,
        "rng": _pack(rng_state, STATE_PREFIX + "rng", tensors) if rng_state else None,
        "extra": extra or {},
    }
    meta = {
        "format": FORMAT_CHECKPOINT,
        "format_version": FORMAT_VERSION,
        "architecture": _json_text(model.describe(), "the model description"),
        "metadata": _json_text(metadata or {}, "metadata"),
        "checkpoint": _json_text(body, "the checkpoint state (extra)"),
    }
    return _write(Path(path), tensors, meta)


def load_checkpoint(
    path: str | Path,
    model: Module | None = None,
    optimizer: Any = None,
    scheduler: Any = None,
) -> dict[str, Any]:
    """Restore a checkpoint into `model` (built from the file when None), `optimizer` and
    `scheduler` when given. Returns {'model', 'epoch', 'rng_state', 'extra', 'metadata',
    'optimizer_state', 'scheduler_state'}."""
    meta, tensors = _read(path)
    if meta.get("format") != FORMAT_CHECKPOINT:
        raise ModelFileError(f"{path} is a model file, not a training checkpoint (use load_model)")
    body = _unpack(_json_field(meta, "checkpoint", path, {}), tensors)
    model = _build_and_load(meta, tensors, path, model)
    opt_state, sched_state = body.get("optimizer"), body.get("scheduler")
    if optimizer is not None:
        if opt_state is None:
            raise ModelFileError(f"{path}: the checkpoint holds no optimizer state")
        optimizer.load_state_dict(opt_state)
    if scheduler is not None and sched_state is not None:
        scheduler.load_state_dict(sched_state)
    return {
        "model": model,
        "epoch": int(body.get("epoch", 0)),
        "rng_state": body.get("rng"),
        "extra": body.get("extra") or {},
        "metadata": _json_field(meta, "metadata", path, {}),
        "optimizer_state": opt_state,
        "scheduler_state": sched_state,
    }


__all__ = [
    "ModelFileError",
    "load_checkpoint",
    "load_model",
    "read_architecture",
    "read_metadata",
    "save_checkpoint",
    "save_model",
]
