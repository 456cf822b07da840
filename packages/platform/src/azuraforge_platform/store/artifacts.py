"""The index of the files a run wrote under its artifact folder."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from azuraforge_platform.store.base import StoreBase, utc_now
from azuraforge_platform.store.records import ArtifactRecord
from azuraforge_platform.store.tables import Artifact

__all__ = ["ArtifactsMixin"]


class ArtifactsMixin(StoreBase):
    """Artifacts, indexed by their path relative to `artifact_dir(experiment_id)`."""

    def add_artifact(self, experiment_id: str, path: str, size: int, kind: str) -> None:
        """Index a file under `artifact_dir(experiment_id)` (path relative to it)."""
        if Path(path).is_absolute() or ".." in Path(path).parts:
            raise ValueError(f"artifact path {path!r} must be relative to the experiment folder")
        row = {
            "experiment_id": experiment_id,
            "path": path,
            "size": int(size),
            "kind": kind,
            "created_at": utc_now(),
        }
        with self._fk_guard(experiment_id), self._write() as session:
            stmt = self._insert(Artifact).values(row)
            stmt = stmt.on_conflict_do_update(
                index_elements=["experiment_id", "path"],
                set_={"size": stmt.excluded.size, "kind": stmt.excluded.kind},
            )
            session.execute(stmt)

    def artifacts(self, experiment_id: str) -> list[ArtifactRecord]:
        query = (
            select(Artifact).where(Artifact.experiment_id == experiment_id).order_by(Artifact.path)
        )
        with self._read() as session:
            return [
                ArtifactRecord(path=a.path, size=a.size, kind=a.kind, created_at=a.created_at)
                for a in session.scalars(query)
            ]
