"""Registered models: a name for one model artifact of a finished experiment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from azuraforge_platform.store.engine import WRITE_OPTION
from azuraforge_platform.store.experiment_store import ExperimentStore
from azuraforge_platform.store.records import (
    ArtifactNotFoundError,
    ExperimentNotFoundError,
    StoreError,
)
from azuraforge_platform.store.tables import RegisteredModel, json_safe

__all__ = ["ModelExistsError", "ModelNotFoundError", "ModelRecord", "ModelRegistry"]


class ModelNotFoundError(StoreError, LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no registered model named {name!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class ModelExistsError(StoreError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a model named {name!r} is already registered")


@dataclass(frozen=True)
class ModelRecord:
    name: str
    experiment_id: str
    pipeline_id: str
    pipeline_version: str | None
    artifact_path: str
    description: str | None
    metrics: dict[str, Any] | None
    created_at: datetime
    owner: str | None = None

    @classmethod
    def from_row(cls, row: RegisteredModel) -> ModelRecord:
        return cls(
            name=row.name,
            experiment_id=row.experiment_id,
            pipeline_id=row.pipeline_id,
            pipeline_version=row.pipeline_version,
            artifact_path=row.artifact_path,
            description=row.description,
            metrics=dict(row.metrics) if row.metrics is not None else None,
            created_at=row.created_at,
            owner=row.owner,
        )


class ModelRegistry:
    """Models by name, stored beside the experiments (same database, same artifact root)."""

    def __init__(self, store: ExperimentStore) -> None:
        self.store = store
        self._write_engine = store.engine.execution_options(**{WRITE_OPTION: True})

    def register(
        self,
        name: str,
        *,
        experiment_id: str,
        artifact_path: str,
        description: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        owner: str | None = None,
    ) -> ModelRecord:
        experiment = self.store.get(experiment_id)
        row = RegisteredModel(
            name=name,
            experiment_id=experiment_id,
            pipeline_id=experiment.pipeline_id,
            pipeline_version=experiment.pipeline_version,
            artifact_path=artifact_path,
            description=description,
            metrics=json_safe(dict(metrics)) if metrics is not None else None,
            created_at=datetime.now(UTC),
            owner=owner,
        )
        try:
            with Session(self._write_engine, expire_on_commit=False) as s, s.begin():
                s.add(row)
        except IntegrityError:
            if self._get(name) is not None:
                raise ModelExistsError(name) from None
            raise ExperimentNotFoundError(experiment_id) from None
        return ModelRecord.from_row(row)

    def _get(self, name: str) -> ModelRecord | None:
        with Session(self.store.engine) as s, s.begin():
            row = s.get(RegisteredModel, name)
            return ModelRecord.from_row(row) if row is not None else None

    def get(self, name: str) -> ModelRecord:
        record = self._get(name)
        if record is None:
            raise ModelNotFoundError(name)
        return record

    def list(self, *, pipeline_id: str | None = None) -> list[ModelRecord]:
        query = select(RegisteredModel).order_by(RegisteredModel.name)
        if pipeline_id is not None:
            query = query.where(RegisteredModel.pipeline_id == pipeline_id)
        with Session(self.store.engine) as s, s.begin():
            return [ModelRecord.from_row(r) for r in s.scalars(query)]

    def delete(self, name: str) -> None:
        with Session(self._write_engine) as s, s.begin():
            result = s.execute(delete(RegisteredModel).where(RegisteredModel.name == name))
            if result.rowcount == 0:  # type: ignore[attr-defined]
                raise ModelNotFoundError(name)

    def path(self, record: ModelRecord) -> Path:
        """The model file on disk: in its experiment's artifact folder, or with a bucket this
        machine's cached copy of the bucket's (a path that does not exist when it is gone)."""
        try:
            return self.store.artifact_file(record.experiment_id, record.artifact_path)
        except ArtifactNotFoundError:
            return self.store.artifact_dir(record.experiment_id) / record.artifact_path
