"""`StoreBase`: what every part of `ExperimentStore` builds on: the engine, read and write
sessions, one experiment by id, and the experiment's artifact folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from azuraforge_platform.store.bucket import ArtifactBucket, check_experiment_id
from azuraforge_platform.store.engine import WRITE_OPTION, make_engine
from azuraforge_platform.store.migrate import ensure_schema
from azuraforge_platform.store.records import (
    ArtifactNotFoundError,
    ArtifactPathError,
    ExperimentNotFoundError,
    ExperimentRecord,
    experiment_record,
)
from azuraforge_platform.store.tables import Experiment, ExperimentTag

__all__ = ["EXPERIMENT_COLUMNS", "StoreBase", "tags_of", "utc_now"]

EXPERIMENT_COLUMNS = tuple(c for c in Experiment.__table__.columns)


def utc_now() -> datetime:
    return datetime.now(UTC)


def tags_of(conn: Connection, ids: list[str]) -> dict[str, list[str]]:
    """The sorted tags of each experiment in `ids`, in one indexed query."""
    if not ids:
        return {}
    tags: dict[str, list[str]] = {}
    query = (
        select(ExperimentTag.experiment_id, ExperimentTag.tag)
        .where(ExperimentTag.experiment_id.in_(ids))
        .order_by(ExperimentTag.experiment_id, ExperimentTag.tag)
    )
    for exp_id, tag in conn.execute(query):
        tags.setdefault(exp_id, []).append(tag)
    return tags


class StoreBase:
    """The engine and session helpers the parts of `ExperimentStore` share; creating one
    migrates its database to the latest schema on first use."""

    def __init__(
        self,
        url: str,
        artifact_root: str | Path,
        *,
        engine: Engine | None = None,
        migrate: bool = True,
        bucket: ArtifactBucket | None = None,
    ) -> None:
        self.engine = engine if engine is not None else make_engine(url)
        # With a bucket, it holds the artifacts for good; artifact_root is the working copy
        self.bucket = bucket
        self._write_engine = self.engine.execution_options(**{WRITE_OPTION: True})
        self.artifact_root = Path(artifact_root).resolve()
        self.dialect = self.engine.dialect.name
        if migrate:
            ensure_schema(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- sessions -------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Session]:
        with Session(self._write_engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    def _insert(self, table: Any) -> Any:
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    @contextmanager
    def _fk_guard(self, experiment_id: str) -> Iterator[None]:
        # Turn "foreign key failed" into the error a caller can act on.
        try:
            yield
        except IntegrityError:
            if not self._exists(experiment_id):
                raise ExperimentNotFoundError(experiment_id) from None
            raise

    # -- one experiment -------------------------------------------------------------------
    def _exists(self, experiment_id: str) -> bool:
        with self._read() as session:
            return session.get(Experiment, experiment_id) is not None

    def get(self, experiment_id: str) -> ExperimentRecord:
        # Core rows, as in list_experiments: the hottest read of the API (every route on
        # one experiment starts here) skips the ORM session and its identity map
        query = select(*EXPERIMENT_COLUMNS).where(Experiment.id == experiment_id)
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
            if row is None:
                raise ExperimentNotFoundError(experiment_id)
            return experiment_record(row, tags_of(conn, [experiment_id]).get(experiment_id, []))

    def artifact_dir(self, experiment_id: str) -> Path:
        """The experiment's local artifact folder (with a bucket: this machine's copy)."""
        return self.artifact_root / check_experiment_id(experiment_id)

    def artifact_location(self, experiment_id: str) -> str:
        """Where the experiment's files are kept, for people: a folder or an s3:// URL."""
        if self.bucket is not None:
            return self.bucket.url(experiment_id)
        return str(self.artifact_dir(experiment_id))

    def _local_artifact(self, experiment_id: str, relative: str) -> Path:
        root = self.artifact_dir(experiment_id).resolve()
        if "\x00" in relative or not relative.strip("/"):
            raise ArtifactPathError("artifact path must name a file")
        target = (root / relative).resolve()
        if not target.is_relative_to(root) or target == root:
            raise ArtifactPathError(f"artifact path {relative!r} leaves the experiment's folder")
        return target

    def check_artifact(self, experiment_id: str, relative: str) -> None:
        """That `relative` names a file of the experiment: `ArtifactPathError` for a path
        outside its folder, `ArtifactNotFoundError` for no such file. Downloads nothing."""
        if self.bucket is not None:
            self.bucket.head(experiment_id, relative)
        elif not self._local_artifact(experiment_id, relative).is_file():
            raise ArtifactNotFoundError(experiment_id, relative)

    def artifact_file(self, experiment_id: str, relative: str) -> Path:
        """A local file holding the artifact `relative` (errors as `check_artifact`): the
        file in the experiment's folder, or with a bucket a copy of the bucket's version in
        this machine's cache (fetched when missing or changed)."""
        if self.bucket is not None:
            return self.bucket.fetch(experiment_id, relative)
        target = self._local_artifact(experiment_id, relative)
        if not target.is_file():
            raise ArtifactNotFoundError(experiment_id, relative)
        return target
