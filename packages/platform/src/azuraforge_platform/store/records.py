"""The plain, frozen records `ExperimentStore` hands out (never live ORM objects), and the
errors every part of it raises."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from azuraforge_platform.store.tables import Experiment, ExperimentStatus

__all__ = [
    "ArtifactNotFoundError",
    "ArtifactPathError",
    "ArtifactRecord",
    "EventRecord",
    "ExperimentNotFoundError",
    "ExperimentRecord",
    "LogRecord",
    "MetricRecord",
    "MetricValue",
    "Page",
    "StoreError",
]


class StoreError(Exception):
    """Base of the store's errors."""


class ExperimentNotFoundError(StoreError, LookupError):
    def __init__(self, experiment_id: str) -> None:
        self.experiment_id = experiment_id
        super().__init__(f"no experiment with id {experiment_id!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class ArtifactPathError(StoreError, ValueError):
    """A path that does not name a file inside an experiment's artifact folder."""


class ArtifactRangeError(StoreError, ValueError):
    """A byte range that starts at or after the end of the artifact (HTTP 416)."""

    def __init__(self, byte_range: str, size: int) -> None:
        self.size = size
        super().__init__(f"range {byte_range!r} starts past the artifact's {size} bytes")


class ArtifactNotFoundError(StoreError, LookupError):
    def __init__(self, experiment_id: str, path: str) -> None:
        self.experiment_id = experiment_id
        self.path = path
        super().__init__(f"experiment {experiment_id} has no artifact {path!r}")

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ExperimentRecord:
    id: str
    name: str
    pipeline_id: str
    pipeline_version: str | None
    config: dict[str, Any]
    status: ExperimentStatus
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str | None
    attempts: int
    max_attempts: int
    error: str | None
    traceback: str | None
    summary: dict[str, Any] | None
    parent_id: str | None
    tags: list[str]
    last_event_seq: int
    owner: str | None = None
    coordinator: bool = False

    @classmethod
    def from_row(cls, row: Experiment) -> ExperimentRecord:
        return experiment_record(row, sorted(t.tag for t in row.tags))


def experiment_record(row: Row[Any] | Experiment, tags: list[str]) -> ExperimentRecord:
    """An `ExperimentRecord` from an ORM row or a Core row of the experiments table's columns."""
    return ExperimentRecord(
        id=row.id,
        name=row.name,
        pipeline_id=row.pipeline_id,
        pipeline_version=row.pipeline_version,
        config=dict(row.config or {}),
        status=ExperimentStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
        worker=row.worker,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        error=row.error,
        traceback=row.traceback,
        summary=dict(row.summary) if row.summary is not None else None,
        parent_id=row.parent_id,
        tags=tags,
        last_event_seq=row.last_event_seq,
        owner=row.owner,
        coordinator=bool(row.coordinator),
    )


@dataclass(frozen=True)
class MetricValue:
    """One metric point to append. `step` is the x-axis (use the epoch for per-epoch metrics)."""

    name: str
    step: int
    value: float
    epoch: int | None = None
    time: datetime | None = None


@dataclass(frozen=True)
class MetricRecord:
    name: str
    step: int
    epoch: int | None
    value: float | None  # None where the reported value was NaN or infinite
    time: datetime


@dataclass(frozen=True)
class LogRecord:
    id: int
    time: datetime
    level: str
    message: str


@dataclass(frozen=True)
class EventRecord:
    experiment_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    time: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "seq": self.seq,
            "type": self.type,
            "payload": self.payload,
            "time": self.time.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EventRecord:
        return cls(
            experiment_id=str(data["experiment_id"]),
            seq=int(data["seq"]),
            type=str(data["type"]),
            payload=dict(data["payload"]),
            time=datetime.fromisoformat(data["time"]),
        )


@dataclass(frozen=True)
class ArtifactRecord:
    path: str
    size: int
    kind: str
    created_at: datetime


@dataclass(frozen=True)
class Page:
    items: list[ExperimentRecord]
    next_cursor: str | None
    total: int | None = None
    offset: int | None = None
    limit: int = 50
    sort: str = "created_at"
    descending: bool = True
    prev_cursor: str | None = None
    estimated_total: int | None = None
    estimate_exact: bool | None = None
