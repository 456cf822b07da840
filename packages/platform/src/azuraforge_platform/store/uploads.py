"""`UploadStore`: the uploaded data files' records (who, what, how big), so the API answers
about an upload, lists and deletes uploads and enforces quotas without reading any file."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, delete, func, select, text
from sqlalchemy.orm import Session

from azuraforge_platform.store.engine import WRITE_OPTION
from azuraforge_platform.store.experiment_store import ExperimentStore
from azuraforge_platform.store.records import StoreError
from azuraforge_platform.store.tables import Upload

__all__ = ["UploadQuotaError", "UploadRecord", "UploadStore"]


@dataclass(frozen=True)
class UploadRecord:
    id: str
    owner: str | None
    filename: str
    size: int
    sha256: str
    kind: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Upload) -> UploadRecord:
        return cls(
            id=row.id,
            owner=row.owner,
            filename=row.filename,
            size=row.size,
            sha256=row.sha256,
            kind=row.kind,
            created_at=row.created_at,
        )


class UploadQuotaError(StoreError):
    """An upload that would take its owner (or all uploads together) past a quota."""

    def __init__(self, message: str, *, quota: int, used: int) -> None:
        self.quota = quota
        self.used = used
        super().__init__(message)


def _owned_by(owner: str | None) -> ColumnElement[bool]:
    # uploads from before authentication (or with it off) belong to no one: owner IS NULL
    return Upload.owner.is_(None) if owner is None else Upload.owner == owner


class UploadStore:
    """Upload records beside the experiments (same database). The files themselves live in
    the uploads folder under the record's id; the API writes and removes them."""

    def __init__(self, store: ExperimentStore) -> None:
        self.store = store
        self._write_engine = store.engine.execution_options(**{WRITE_OPTION: True})

    def add(
        self,
        *,
        upload_id: str,
        owner: str | None,
        filename: str,
        size: int,
        sha256: str,
        kind: str,
        user_quota: int | None = None,
        total_quota: int | None = None,
    ) -> UploadRecord:
        """Record an upload, or raise `UploadQuotaError` when it does not fit the owner's
        quota or the total. The check and the insert are one transaction that holds the
        write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a table lock only writers of
        `uploads` wait for), so two parallel uploads cannot both squeeze past a quota."""
        row = Upload(
            id=upload_id,
            owner=owner,
            filename=filename,
            size=size,
            sha256=sha256,
            kind=kind,
            created_at=datetime.now(UTC),
        )
        with Session(self._write_engine, expire_on_commit=False) as s, s.begin():
            if self.store.dialect == "postgresql":
                s.execute(text("LOCK TABLE uploads IN SHARE ROW EXCLUSIVE MODE"))
            if user_quota is not None:
                used = self._used(s, owner)
                if used + size > user_quota:
                    whose = (
                        f"the uploads of {owner!r}"
                        if owner is not None
                        else "uploads without owner"
                    )
                    raise UploadQuotaError(
                        f"upload quota exceeded: {whose} take {used} of {user_quota} bytes "
                        f"and this file has {size}; delete uploads you no longer need",
                        quota=user_quota,
                        used=used,
                    )
            if total_quota is not None:
                used = self._used(s, None, everyone=True)
                if used + size > total_quota:
                    raise UploadQuotaError(
                        f"the server's upload space is full: uploads use {used} of "
                        f"{total_quota} bytes and this file has {size}",
                        quota=total_quota,
                        used=used,
                    )
            s.add(row)
        return UploadRecord.from_row(row)

    @staticmethod
    def _used(s: Session, owner: str | None, *, everyone: bool = False) -> int:
        query = select(func.coalesce(func.sum(Upload.size), 0))
        if not everyone:
            query = query.where(_owned_by(owner))
        return int(s.scalar(query) or 0)

    def used_bytes(self, owner: str | None) -> int:
        """Bytes of `owner`'s uploads."""
        with Session(self.store.engine) as s, s.begin():
            return self._used(s, owner)

    def total_bytes(self) -> int:
        """Bytes of all uploads."""
        with Session(self.store.engine) as s, s.begin():
            return self._used(s, None, everyone=True)

    def get(self, upload_id: str) -> UploadRecord | None:
        with Session(self.store.engine) as s, s.begin():
            row = s.get(Upload, upload_id)
            return UploadRecord.from_row(row) if row is not None else None

    def list(self, owner: str | None, *, limit: int = 100) -> list[UploadRecord]:
        """`owner`'s uploads, newest first."""
        query = (
            select(Upload)
            .where(_owned_by(owner))
            .order_by(Upload.created_at.desc(), Upload.id.desc())
            .limit(limit)
        )
        with Session(self.store.engine) as s, s.begin():
            return [UploadRecord.from_row(row) for row in s.scalars(query)]

    def delete(self, upload_id: str) -> bool:
        """Forget the upload; False when there was no such record."""
        with Session(self._write_engine) as s, s.begin():
            result = s.execute(delete(Upload).where(Upload.id == upload_id))
            return bool(result.rowcount)  # type: ignore[attr-defined]
