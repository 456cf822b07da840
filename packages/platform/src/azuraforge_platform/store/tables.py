"""The experiment store's tables (SQLAlchemy 2, typed). The Alembic scripts in `migrations/`
create exactly these; a test compares the two."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import Enum, StrEnum
from pathlib import PurePath
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeEngine

__all__ = [
    "ApiToken",
    "Artifact",
    "AuditEvent",
    "Base",
    "Event",
    "Experiment",
    "ExperimentStatus",
    "ExperimentTag",
    "LogLine",
    "METRIC_BLOCK",
    "MetricBlock",
    "MetricPoint",
    "RegisteredModel",
    "Role",
    "Upload",
    "User",
    "UTCDateTime",
    "json_safe",
]


class ExperimentStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    cancelling = "cancelling"
    lost = "lost"


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def json_safe(value: Any) -> Any:
    """`value` as strict JSON: numpy arrays/scalars become lists/numbers, and NaN/inf become
    null (PostgreSQL rejects them, and so do browsers' JSON.parse)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if hasattr(value, "tolist"):  # numpy arrays and scalars, without importing numpy here
        return json_safe(value.tolist())
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


class JSONDocument(TypeDecorator[Any]):
    """JSONB on PostgreSQL (compact, indexable), JSON text elsewhere; always strict JSON."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(JSONB())
        return dialect.type_descriptor(JSON())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return json_safe(value)


class FiniteFloat(TypeDecorator[float]):
    """Floats with NaN/inf stored as NULL (SQLite turns NaN into NULL anyway; a diverged loss
    must not fail the write)."""

    impl = Float
    cache_ok = True

    def process_bind_param(self, value: float | None, dialect: Dialect) -> float | None:
        if value is None:
            return None
        value = float(value)
        return value if math.isfinite(value) else None


JSONType = JSONDocument()

# Stable constraint names so Alembic scripts and both backends agree.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class Base(DeclarativeBase):
    metadata = metadata
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType}  # noqa: RUF012


_STATUSES = ", ".join(f"'{s.value}'" for s in ExperimentStatus)


class Experiment(Base):
    __tablename__ = "experiments"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    pipeline_id: Mapped[str] = mapped_column(String(100))
    pipeline_version: Mapped[str | None] = mapped_column(String(50))
    config: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=1)
    error: Mapped[str | None] = mapped_column(Text)
    traceback: Mapped[str | None] = mapped_column(Text)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    parent_id: Mapped[str | None] = mapped_column(ForeignKey("experiments.id", ondelete="SET NULL"))
    # The last event seq handed out; bumped in the same transaction that inserts the event.
    last_event_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # The username that submitted it (members may cancel and delete only their own runs);
    # None for runs from before authentication or from a local `azuraforge run`.
    owner: Mapped[str | None] = mapped_column(String(64))
    # A run that starts child runs and waits on them (a study): dispatched apart from the
    # worker slots, so it never holds the slot its children need.
    coordinator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    tags: Mapped[list[ExperimentTag]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, lazy="selectin"
    )

    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUSES})", name="status"),
        CheckConstraint("attempts >= 0 AND max_attempts >= 1", name="attempts"),
        # keyset pagination and the common filters, each ending in id for a total order
        Index("ix_experiments_created", "created_at", "id"),
        Index("ix_experiments_status_created", "status", "created_at", "id"),
        Index("ix_experiments_pipeline_created", "pipeline_id", "created_at", "id"),
        Index("ix_experiments_name", "name", "id"),
        Index("ix_experiments_parent", "parent_id"),
        Index("ix_experiments_owner_created", "owner", "created_at", "id"),
        Index(
            "ix_experiments_status_coordinator_created", "status", "coordinator", "created_at", "id"
        ),
    )


class ExperimentTag(Base):
    __tablename__ = "experiment_tags"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)

    __table_args__ = (Index("ix_experiment_tags_tag", "tag", "experiment_id"),)


class MetricPoint(Base):
    __tablename__ = "metrics"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(100))
    step: Mapped[int] = mapped_column(BigInteger)
    epoch: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[float | None] = mapped_column(FiniteFloat())  # NULL = NaN/inf
    time: Mapped[datetime] = mapped_column(UTCDateTime())

    # A retried run re-reports the same steps: the constraint makes that an upsert.
    __table_args__ = (
        UniqueConstraint("experiment_id", "name", "step"),
        # PostgreSQL reads (and downsamples) a series from this index alone
        Index(
            "ix_metrics_series",
            "experiment_id",
            "name",
            "step",
            postgresql_include=["value", "epoch"],
        ),
    )


# Steps per block of `MetricBlock` (a power of two: the triggers compute step >> 4).
METRIC_BLOCK = 16


class MetricBlock(Base):
    """Summary of the points of one series with step // METRIC_BLOCK == block: how many, how
    many finite, and where its minimum and maximum are. Kept exact by PostgreSQL triggers
    (migration 0003) so a long series downsamples from these rows instead of every point;
    empty on SQLite, which downsamples in Python."""

    __tablename__ = "metric_blocks"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    block: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    points: Mapped[int] = mapped_column(Integer)
    finite: Mapped[int] = mapped_column(Integer)
    min_value: Mapped[float | None] = mapped_column(Float)
    min_step: Mapped[int | None] = mapped_column(BigInteger)
    max_value: Mapped[float | None] = mapped_column(Float)
    max_step: Mapped[int | None] = mapped_column(BigInteger)


class LogLine(Base):
    __tablename__ = "logs"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    time: Mapped[datetime] = mapped_column(UTCDateTime())
    level: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)

    __table_args__ = (Index("ix_logs_experiment", "experiment_id", "id"),)


class Event(Base):
    __tablename__ = "events"

    experiment_id: Mapped[str] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    time: Mapped[datetime] = mapped_column(UTCDateTime())


class Artifact(Base):
    __tablename__ = "artifacts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    path: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (UniqueConstraint("experiment_id", "path"),)


class RegisteredModel(Base):
    """A trained model kept under a name: one artifact of a finished experiment. Deleting the
    experiment (and so the file) deletes the registration too."""

    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    experiment_id: Mapped[str] = mapped_column(ForeignKey("experiments.id", ondelete="CASCADE"))
    pipeline_id: Mapped[str] = mapped_column(String(100))
    pipeline_version: Mapped[str | None] = mapped_column(String(50))
    artifact_path: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    owner: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (Index("ix_models_experiment", "experiment_id"),)


class Role(StrEnum):
    """viewer: reads; member: runs, uploads, predicts, manages its own; admin: everything."""

    viewer = "viewer"
    member = "member"
    admin = "admin"


_ROLES = ", ".join(f"'{r.value}'" for r in Role)


class User(Base):
    """A person (or service) that signs in. Usernames never change: experiments, models,
    uploads and the audit log name their owner by username."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))  # argon2id; None: no login
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (CheckConstraint(f"role IN ({_ROLES})", name="role"),)


class ApiToken(Base):
    """A bearer credential: a personal API token (`kind='api'`, named, listed, revocable) or a
    dashboard login session (`kind='session'`). Only the SHA-256 of the secret is kept: the
    secrets are 256 random bits, so a fast hash is safe (no guessing) and lookups are exact."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))  # the first characters, to recognise it
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        CheckConstraint("kind IN ('api', 'session')", name="kind"),
        Index("ix_api_tokens_user", "user_id", "kind", "id"),
    )


class AuditEvent(Base):
    """Who did what: logins, failed logins and every destructive or administrative action."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(200))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType)
    ip: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_action", "action", "id"),
        Index("ix_audit_events_actor", "actor", "id"),
        # failed logins per username / address in a recent window (the login rate limit)
        Index("ix_audit_events_target_at", "action", "target", "at"),
        Index("ix_audit_events_ip_at", "action", "ip", "at"),
    )


class Upload(Base):
    """A data file a user uploaded, stored under the generated `id` in the uploads folder."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str | None] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_uploads_owner", "owner", "created_at"),)
