"""What a running pipeline sees of the platform: `RunContext` and the `Reporter` behind it."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from azuraforge_pipeline.children import ChildLauncher, ChildrenNotSupportedError, ChildRun

__all__ = [
    "Cancelled",
    "Checkpoint",
    "PrintReporter",
    "RecordingReporter",
    "Reporter",
    "RunContext",
]


class Cancelled(Exception):  # noqa: N818 - reads as "the run was Cancelled"
    """Raised inside a pipeline to stop because the user asked it to (see `RunContext`)."""


class Reporter:
    """Receives everything a pipeline reports. The platform's reporter persists it and
    publishes live events; the base class drops everything, so a pipeline also runs bare."""

    def progress(
        self,
        *,
        epoch: int | None = None,
        total_epochs: int | None = None,
        step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        """Where the run is: epoch of total_epochs, step of total_steps (any may be None)."""

    def metrics(
        self, values: Mapping[str, float], *, step: int | None = None, epoch: int | None = None
    ) -> None:
        """Scalar metrics at one point of the run."""

    def log(self, message: str, level: str = "info") -> None:
        """One human-readable log line."""

    def event(self, type: str, payload: Mapping[str, Any]) -> None:
        """Any structured event, e.g. `("prediction", {"x": [...], "y": [...]})`."""

    def artifact(self, path: str, size: int, kind: str) -> None:
        """A file saved under the artifact directory (`path` is relative to it)."""

    def flush(self) -> None:
        """Make everything reported so far durable (a reporter that buffers writes it now)."""


@dataclass
class RecordingReporter(Reporter):
    """Keeps every report in memory: for tests and for running a pipeline outside the platform."""

    progress_updates: list[dict[str, int | None]] = field(default_factory=list)
    metric_points: list[tuple[dict[str, float], int | None, int | None]] = field(
        default_factory=list
    )
    logs: list[tuple[str, str]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    artifacts: list[tuple[str, int, str]] = field(default_factory=list)

    def progress(
        self,
        *,
        epoch: int | None = None,
        total_epochs: int | None = None,
        step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        self.progress_updates.append(
            {"epoch": epoch, "total_epochs": total_epochs, "step": step, "total_steps": total_steps}
        )

    def metrics(
        self, values: Mapping[str, float], *, step: int | None = None, epoch: int | None = None
    ) -> None:
        self.metric_points.append(({k: float(v) for k, v in values.items()}, step, epoch))

    def log(self, message: str, level: str = "info") -> None:
        self.logs.append((level, message))

    def event(self, type: str, payload: Mapping[str, Any]) -> None:
        self.events.append((type, dict(payload)))

    def artifact(self, path: str, size: int, kind: str) -> None:
        self.artifacts.append((path, size, kind))


class PrintReporter(Reporter):
    """Writes logs and metrics to a stream (stderr by default): handy in a terminal."""

    def __init__(self, stream: Any = None) -> None:
        self._stream = stream if stream is not None else sys.stderr

    def metrics(
        self, values: Mapping[str, float], *, step: int | None = None, epoch: int | None = None
    ) -> None:
        where = f"epoch {epoch}" if epoch is not None else f"step {step}"
        shown = " ".join(f"{k}={float(v):.6g}" for k, v in values.items())
        print(f"[{where}] {shown}", file=self._stream)

    def log(self, message: str, level: str = "info") -> None:
        print(f"{level.upper()}: {message}", file=self._stream)


@dataclass(frozen=True)
class Checkpoint:
    """A saved training state: named arrays plus JSON metadata (epoch reached, ...)."""

    arrays: dict[str, np.ndarray]
    meta: dict[str, Any]


def _atomic_write(target: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    # Write beside the target then rename, so a crash never leaves half a file to resume from.
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_ARTIFACT_KINDS = {
    ".json": "json",
    ".csv": "table",
    ".png": "image",
    ".jpg": "image",
    ".svg": "image",
    ".safetensors": "model",
    ".npz": "arrays",
    ".txt": "text",
    ".md": "text",
}


class RunContext:
    """Everything a pipeline's `run` receives besides its config.

    - `reporter` methods via `progress`, `log_metrics`, `log`, `emit`;
    - `artifact_dir` and `save_artifact` for outputs the user keeps (models, plots, tables);
    - `should_stop()` / `check_cancelled()` to honour a cancel request between steps;
    - `checkpoint_dir`, `save_checkpoint` and `load_checkpoint` to resume a retried run
      (`flush()` before a checkpoint written some other way);
    - `rng`, a numpy Generator seeded from `seed`, for reproducible runs;
    - `submit` and `children` to run other pipelines as child experiments (where the platform
      serves them: `can_submit`);
    - `device`, where the platform wants models trained: "cpu", or "cuda" on a GPU worker
      (a pipeline that trains with the learner moves its model there: `model.to(device)`).
    """

    def __init__(
        self,
        *,
        artifact_dir: str | os.PathLike[str],
        reporter: Reporter | None = None,
        checkpoint_dir: str | os.PathLike[str] | None = None,
        seed: int | None = None,
        stop_requested: Callable[[], bool] | None = None,
        experiment_id: str | None = None,
        attempt: int = 1,
        launcher: ChildLauncher | None = None,
        device: str = "cpu",
    ) -> None:
        name = device.strip().lower()
        if name.partition(":")[0] not in ("cpu", "cuda"):
            raise ValueError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")
        self.device = name
        self.experiment_id = experiment_id
        self.launcher = launcher
        self.attempt = attempt
        self.reporter = reporter if reporter is not None else Reporter()
        self.artifact_dir = Path(artifact_dir)
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir = (
            Path(checkpoint_dir)
            if checkpoint_dir is not None
            else self.artifact_dir / "checkpoints"
        )
        self.seed = int(seed) if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1
        self.rng = np.random.default_rng(self.seed)
        self._stop_requested = stop_requested
        self._stop_event = threading.Event()

    # -- reporting ------------------------------------------------------------------------
    def progress(
        self,
        *,
        epoch: int | None = None,
        total_epochs: int | None = None,
        step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        self.reporter.progress(
            epoch=epoch, total_epochs=total_epochs, step=step, total_steps=total_steps
        )

    def log_metrics(
        self, values: Mapping[str, float], *, step: int | None = None, epoch: int | None = None
    ) -> None:
        """Report scalars. Without `step`, the point is placed at `step=epoch` on the chart."""
        if step is None and epoch is None:
            raise ValueError("log_metrics needs step= or epoch= to place the point")
        self.reporter.metrics(values, step=step, epoch=epoch)

    def log(self, message: str, level: str = "info") -> None:
        self.reporter.log(message, level)

    def emit(self, type: str, payload: Mapping[str, Any]) -> None:
        """A structured event for live views, e.g. `emit("prediction", {"y_true": ..., ...})`."""
        self.reporter.event(type, payload)

    def flush(self) -> None:
        """Make everything reported so far durable. A resumed run starts after its last
        checkpoint, so reports must never lag behind one: `save_checkpoint` calls this first;
        call it yourself before writing a checkpoint another way (a Learner's, say)."""
        self.reporter.flush()

    # -- artifacts ------------------------------------------------------------------------
    def artifact_path(self, relative: str) -> Path:
        """An absolute path under `artifact_dir`; refuses paths that escape it."""
        root = self.artifact_dir.resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root) or path == root:
            raise ValueError(f"artifact path {relative!r} must name a file inside artifact_dir")
        return path

    def save_artifact(
        self,
        relative: str,
        data: bytes | str | Mapping[str, Any] | list[Any] | os.PathLike[str],
        *,
        kind: str | None = None,
    ) -> Path:
        """Save `data` (bytes, text, a JSON-able dict/list, or an existing file to copy) under
        `artifact_dir/relative`, register it with the platform and return its path."""
        path = self.artifact_path(relative)
        if isinstance(data, bytes):
            _atomic_write(path, lambda fh: fh.write(data))
        elif isinstance(data, str):
            _atomic_write(path, lambda fh: fh.write(data.encode()))
        elif isinstance(data, os.PathLike):
            source = Path(data)
            if source.resolve() != path:
                _atomic_write(path, lambda fh: fh.write(source.read_bytes()))
        else:
            text = json.dumps(data, indent=2, default=_json_default)
            _atomic_write(path, lambda fh: fh.write(text.encode()))
        rel = path.relative_to(self.artifact_dir.resolve()).as_posix()
        kind = kind or _ARTIFACT_KINDS.get(path.suffix.lower(), "file")
        self.reporter.artifact(rel, path.stat().st_size, kind)
        return path

    # -- cancellation ---------------------------------------------------------------------
    def request_stop(self) -> None:
        """Ask the run to stop at its next check (the platform calls this on a cancel)."""
        self._stop_event.set()

    def should_stop(self) -> bool:
        """True once a cancel was requested; check it between steps or epochs."""
        if self._stop_event.is_set():
            return True
        if self._stop_requested is not None and self._stop_requested():
            self._stop_event.set()
            return True
        return False

    def check_cancelled(self) -> None:
        """Raise `Cancelled` if a cancel was requested."""
        if self.should_stop():
            raise Cancelled("the run was cancelled")

    # -- child runs -----------------------------------------------------------------------
    @property
    def can_submit(self) -> bool:
        return self.launcher is not None

    def _launcher(self) -> ChildLauncher:
        if self.launcher is None:
            raise ChildrenNotSupportedError(
                "this run cannot start child runs: run it on the platform (or give its "
                "RunContext a launcher, e.g. InlineLauncher)"
            )
        return self.launcher

    def submit(
        self,
        pipeline_id: str,
        config: Mapping[str, Any],
        *,
        name: str | None = None,
        tags: Sequence[str] = (),
    ) -> ChildRun:
        """Run `pipeline_id` with `config` as a child experiment of this run, queued for the
        workers like any other; the handle waits on it, reads its metrics and cancels it.
        Raises `ChildRunError` for an unknown pipeline or a config it refuses."""
        launcher = self._launcher()
        return ChildRun(launcher, launcher.submit(pipeline_id, config, name=name, tags=tags))

    def children(self) -> list[ChildRun]:
        """The child runs this run started, in earlier attempts too, oldest first."""
        launcher = self._launcher()
        return [ChildRun(launcher, state.id) for state in launcher.children()]

    # -- checkpoints ----------------------------------------------------------------------
    def save_checkpoint(
        self,
        arrays: Mapping[str, np.ndarray],
        meta: Mapping[str, Any] | None = None,
        *,
        name: str = "checkpoint",
    ) -> Path:
        """Atomically save named arrays (no pickle) and JSON metadata as `name`, after what
        was reported before it is durable (a run resumed from it must not skip a report)."""
        self.flush()
        npz = self.checkpoint_dir / f"{name}.npz"
        arrs = {k: np.asarray(v) for k, v in arrays.items()}
        _atomic_write(npz, lambda fh: np.savez(fh, **arrs))  # type: ignore[arg-type]
        meta_text = json.dumps(dict(meta or {}), default=_json_default)
        _atomic_write(self.checkpoint_dir / f"{name}.json", lambda fh: fh.write(meta_text.encode()))
        return npz

    def load_checkpoint(self, name: str = "checkpoint") -> Checkpoint | None:
        """The last saved checkpoint `name`, or None when there is none (a fresh run)."""
        npz = self.checkpoint_dir / f"{name}.npz"
        meta_file = self.checkpoint_dir / f"{name}.json"
        if not npz.exists() or not meta_file.exists():
            return None
        with np.load(npz, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        return Checkpoint(arrays=arrays, meta=json.loads(meta_file.read_text()))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")
