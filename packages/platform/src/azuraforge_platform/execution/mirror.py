"""A run's artifact folder kept in the artifact bucket (`AZURAFORGE_ARTIFACT_S3_BUCKET`).

The local folder stays the working copy (pipelines write real files); the bucket is where the
files live for good. Before a run, its checkpoints come down from the bucket, so an attempt
on another machine resumes where the last one stopped; each checkpoint goes up as soon as it
is saved (`MirroredContext.save_checkpoint`; a thread catches checkpoints written another way,
a Learner's, within `interval`), each reported artifact at once, and the whole folder when the
run ends. A successful run whose files cannot be uploaded fails: its model would be nowhere.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from azuraforge_pipeline import RunContext
from azuraforge_platform.store import ArtifactBucket, ArtifactPathError
from azuraforge_platform.store.bucket import clean_relative

__all__ = ["CHECKPOINTS", "ArtifactUploadError", "MirroredContext", "RunMirror"]

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"  # the runner's checkpoint_dir, inside the artifact folder


class ArtifactUploadError(OSError):
    """Files of the run could not be put in the artifact bucket."""


class RunMirror:
    """Uploads what changed in one run's folder; downloads its checkpoints before it starts."""

    def __init__(
        self, bucket: ArtifactBucket, experiment_id: str, folder: Path, interval: float = 5.0
    ) -> None:
        self.bucket = bucket
        self.experiment_id = experiment_id
        self.folder = Path(folder)
        self.interval = interval
        self._sent: dict[str, tuple[int, int]] = {}  # relative path -> (size, mtime) uploaded
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int]:
        stat = path.stat()
        return stat.st_size, stat.st_mtime_ns

    def restore_checkpoints(self) -> list[str]:
        """Download the run's checkpoints, replacing local ones: the bucket has the latest any
        attempt, on any machine, saved. Returns their relative paths."""
        restored = []
        with self._lock:
            for relative, _size in self.bucket.list_files(self.experiment_id, CHECKPOINTS):
                try:
                    relative = clean_relative(relative)
                except ArtifactPathError:  # a key no run of ours wrote; never a local path
                    log.warning("ignoring the odd key %r in the bucket", relative)
                    continue
                dest = self.folder / relative
                self.bucket.download(self.experiment_id, relative, dest)
                self._sent[relative] = self._stamp(dest)
                restored.append(relative)
        return restored

    def _upload(self, relative: str, path: Path) -> None:
        stamp = self._stamp(path)
        if self._sent.get(relative) == stamp:
            return
        self.bucket.upload(self.experiment_id, relative, path)
        self._sent[relative] = stamp

    def upload(self, path: Path) -> None:
        """Upload one file of the folder now; a failure is logged (the end of the run tries
        again)."""
        relative = path.resolve().relative_to(self.folder.resolve()).as_posix()
        with self._lock:
            try:
                self._upload(relative, path)
            except Exception as exc:
                log.warning("could not upload %s to the artifact bucket: %s", relative, exc)

    def sync(self, sub: str = "", *, strict: bool = False) -> None:
        """Upload every file under `sub` (the whole folder by default) changed since its last
        upload, oldest first (a checkpoint's arrays before the metadata that points at them).
        Hidden files are skipped: they are the temporary files of atomic writes."""
        root = self.folder / sub if sub else self.folder
        failed: list[str] = []
        with self._lock:
            found = []
            for path in root.rglob("*") if root.is_dir() else ():
                relative = path.relative_to(self.folder).as_posix()
                if any(part.startswith(".") for part in relative.split("/")):
                    continue
                try:
                    if path.is_file():
                        found.append((path.stat().st_mtime_ns, relative, path))
                except FileNotFoundError:  # replaced meanwhile
                    continue
            for _, relative, path in sorted(found):
                try:
                    self._upload(relative, path)
                except FileNotFoundError:
                    continue
                except Exception as exc:
                    failed.append(f"{relative} ({exc})")
        if failed:
            message = f"{len(failed)} file(s) could not be uploaded to the artifact bucket: "
            if strict:
                raise ArtifactUploadError(message + "; ".join(failed[:3]))
            log.warning("%s%s", message, "; ".join(failed[:3]))

    # -- the thread that catches checkpoints written around save_checkpoint ----------------
    def start(self) -> RunMirror:
        self._thread = threading.Thread(
            target=self._watch, name=f"mirror-{self.experiment_id[:8]}", daemon=True
        )
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._done.wait(self.interval):
            try:
                self.sync(CHECKPOINTS)
            except Exception:  # a folder changing under the walk: the next round sees it
                log.warning("mirroring the checkpoints failed; will retry", exc_info=True)

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


class MirroredContext(RunContext):
    """A `RunContext` whose checkpoints and artifacts reach the bucket as they are saved."""

    def __init__(self, *, mirror: RunMirror, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.mirror = mirror

    def save_checkpoint(
        self,
        arrays: Mapping[str, Any],  # numpy arrays (Any: the platform does not import numpy)
        meta: Mapping[str, Any] | None = None,
        *,
        name: str = "checkpoint",
    ) -> Path:
        path = super().save_checkpoint(arrays, meta, name=name)
        # before training goes on: a worker on another machine resumes from the bucket's copy
        self.mirror.sync(CHECKPOINTS)
        return path

    def save_artifact(
        self,
        relative: str,
        data: bytes | str | Mapping[str, Any] | list[Any] | os.PathLike[str],
        *,
        kind: str | None = None,
    ) -> Path:
        path = super().save_artifact(relative, data, kind=kind)
        self.mirror.upload(path)
        return path
