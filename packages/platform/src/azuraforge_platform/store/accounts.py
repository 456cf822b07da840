"""Users, their credentials (API tokens and login sessions) and the audit log, in the store's
database. Passwords arrive here already hashed; secrets arrive as their SHA-256: this module
never sees a credential in the clear."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from azuraforge_platform.store.engine import WRITE_OPTION
from azuraforge_platform.store.experiment_store import ExperimentStore
from azuraforge_platform.store.records import StoreError
from azuraforge_platform.store.tables import ApiToken, AuditEvent, Role, User, json_safe

__all__ = [
    "USERNAME_PATTERN",
    "AccountStore",
    "AuditRecord",
    "TokenRecord",
    "UserExistsError",
    "UserNotFoundError",
    "UserRecord",
]

USERNAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
_USERNAME = re.compile(USERNAME_PATTERN)


class UserNotFoundError(StoreError, LookupError):
    def __init__(self, who: str | int) -> None:
        super().__init__(f"no user {who!r}")

    def __str__(self) -> str:
        return str(self.args[0])


class UserExistsError(StoreError):
    def __init__(self, username: str) -> None:
        super().__init__(f"a user named {username!r} already exists")


@dataclass(frozen=True)
class UserRecord:
    id: int
    username: str
    role: Role
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    password_hash: str | None = None

    @classmethod
    def from_row(cls, row: Any) -> UserRecord:
        return cls(
            id=row.id,
            username=row.username,
            role=Role(row.role),
            disabled=bool(row.disabled),
            created_at=row.created_at,
            last_login_at=row.last_login_at,
            password_hash=row.password_hash,
        )


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user_id: int
    kind: str
    name: str
    prefix: str
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: Any) -> TokenRecord:
        return cls(
            id=row.id,
            user_id=row.user_id,
            kind=row.kind,
            name=row.name,
            prefix=row.prefix,
            created_at=row.created_at,
            expires_at=row.expires_at,
            last_used_at=row.last_used_at,
            revoked_at=row.revoked_at,
        )

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str | None
    action: str
    target: str | None
    detail: dict[str, Any]
    ip: str | None


# The user's columns a credential lookup needs, named apart from the token's.
_USER_COLUMNS = (
    User.username,
    User.role,
    User.disabled,
    User.created_at.label("user_created_at"),
)


# A token's last use is written at most this often (a write per request would serialise
# every read on SQLite).
LAST_USED_RESOLUTION = timedelta(seconds=60)


def _now() -> datetime:
    return datetime.now(UTC)


class AccountStore:
    """Users, tokens and audit events beside the experiments (same database)."""

    def __init__(self, store: ExperimentStore) -> None:
        self.engine = store.engine
        self._write_engine = store.engine.execution_options(**{WRITE_OPTION: True})

    def _read(self) -> Session:
        return Session(self.engine, expire_on_commit=False)

    def _write(self) -> Session:
        return Session(self._write_engine, expire_on_commit=False)

    # -- users ----------------------------------------------------------------------------
    def create_user(self, username: str, *, role: Role, password_hash: str | None) -> UserRecord:
        if not _USERNAME.match(username):
            raise ValueError(
                "a username is 1-64 letters, digits and '_.@-', starting with a letter or digit"
            )
        row = User(
            username=username,
            password_hash=password_hash,
            role=Role(role).value,
            disabled=False,
            created_at=_now(),
        )
        try:
            with self._write() as s, s.begin():
                s.add(row)
        except IntegrityError:
            raise UserExistsError(username) from None
        return UserRecord.from_row(row)

    def count_users(self) -> int:
        with self._read() as s:
            return int(s.scalar(select(func.count()).select_from(User)) or 0)

    def user(self, user_id: int) -> UserRecord:
        with self._read() as s:
            row = s.get(User, user_id)
            if row is None:
                raise UserNotFoundError(user_id)
            return UserRecord.from_row(row)

    def user_by_name(self, username: str) -> UserRecord:
        with self._read() as s:
            row = s.scalar(select(User).where(User.username == username))
            if row is None:
                raise UserNotFoundError(username)
            return UserRecord.from_row(row)

    def users(self) -> list[UserRecord]:
        with self._read() as s:
            return [UserRecord.from_row(r) for r in s.scalars(select(User).order_by(User.id))]

    def update_user(
        self,
        user_id: int,
        *,
        role: Role | None = None,
        disabled: bool | None = None,
        password_hash: str | None = None,
    ) -> UserRecord:
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = Role(role).value
        if disabled is not None:
            values["disabled"] = disabled
        if password_hash is not None:
            values["password_hash"] = password_hash
        with self._write() as s, s.begin():
            row = s.get(User, user_id)
            if row is None:
                raise UserNotFoundError(user_id)
            for key, value in values.items():
                setattr(row, key, value)
            if disabled or password_hash is not None:
                # a disabled user or a changed password ends every open login session
                s.execute(
                    update(ApiToken)
                    .where(
                        ApiToken.user_id == user_id,
                        ApiToken.kind == "session",
                        ApiToken.revoked_at.is_(None),
                    )
                    .values(revoked_at=_now())
                )
            s.flush()
            return UserRecord.from_row(row)

    def count_admins(self) -> int:
        """Enabled admins: the last one may not be demoted or disabled."""
        query = (
            select(func.count())
            .select_from(User)
            .where(User.role == Role.admin.value, User.disabled.is_(False))
        )
        with self._read() as s:
            return int(s.scalar(query) or 0)

    def record_login(self, user_id: int) -> None:
        with self._write() as s, s.begin():
            s.execute(update(User).where(User.id == user_id).values(last_login_at=_now()))

    # -- tokens ---------------------------------------------------------------------------
    def add_token(
        self,
        user_id: int,
        *,
        kind: str,
        name: str,
        prefix: str,
        secret_hash: str,
        expires_at: datetime,
    ) -> TokenRecord:
        row = ApiToken(
            user_id=user_id,
            kind=kind,
            name=name,
            prefix=prefix,
            secret_hash=secret_hash,
            created_at=_now(),
            expires_at=expires_at,
        )
        with self._write() as s, s.begin():
            s.add(row)
        return TokenRecord.from_row(row)

    def find_credential(self, secret_hash: str) -> tuple[UserRecord, TokenRecord] | None:
        """The user and token behind `secret_hash`, if the token is active and the user is
        enabled; notes its use (at most once a minute). Every request asks: one Core query,
        no ORM session."""
        now = _now()
        query = (
            select(*ApiToken.__table__.columns, *_USER_COLUMNS)
            .join_from(ApiToken, User, User.id == ApiToken.user_id)
            .where(ApiToken.secret_hash == secret_hash)
        )
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        token = TokenRecord.from_row(row)
        user = UserRecord(
            id=row.user_id,
            username=row.username,
            role=Role(row.role),
            disabled=bool(row.disabled),
            created_at=row.user_created_at,
            last_login_at=None,  # not needed to authorise a request
        )
        if not token.active(now) or user.disabled:
            return None
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            with self._write() as s, s.begin():
                s.execute(update(ApiToken).where(ApiToken.id == token.id).values(last_used_at=now))
        return user, token

    def tokens(self, user_id: int, *, kind: str = "api") -> list[TokenRecord]:
        query = (
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.kind == kind)
            .order_by(ApiToken.id.desc())
        )
        with self._read() as s:
            return [TokenRecord.from_row(r) for r in s.scalars(query)]

    def token(self, token_id: int) -> TokenRecord | None:
        with self._read() as s:
            row = s.get(ApiToken, token_id)
            return TokenRecord.from_row(row) if row is not None else None

    def revoke_token(self, token_id: int) -> bool:
        """Revokes an active token; False when it was already revoked or does not exist."""
        with self._write() as s, s.begin():
            result = s.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=_now())
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    def prune(self, *, older_than: datetime | None) -> dict[str, int]:
        """Deletes login sessions that expired or were revoked, and, when `older_than` is
        given, API tokens that expired or were revoked before it and audit events from
        before it. Returns how many rows of each went."""
        now = _now()
        done = {}
        with self._write() as s, s.begin():
            gone_sessions = s.execute(
                delete(ApiToken).where(
                    ApiToken.kind == "session",
                    or_(ApiToken.expires_at <= now, ApiToken.revoked_at.is_not(None)),
                )
            )
            done["sessions"] = int(gone_sessions.rowcount)  # type: ignore[attr-defined]
            if older_than is not None:
                gone_tokens = s.execute(
                    delete(ApiToken).where(
                        ApiToken.kind != "session",
                        or_(
                            ApiToken.expires_at <= older_than,
                            and_(
                                ApiToken.revoked_at.is_not(None),
                                ApiToken.revoked_at <= older_than,
                            ),
                        ),
                    )
                )
                done["tokens"] = int(gone_tokens.rowcount)  # type: ignore[attr-defined]
                gone_audit = s.execute(delete(AuditEvent).where(AuditEvent.at < older_than))
                done["audit"] = int(gone_audit.rowcount)  # type: ignore[attr-defined]
        return done

    # -- audit ----------------------------------------------------------------------------
    def audit(
        self,
        action: str,
        *,
        actor: str | None,
        target: str | None = None,
        detail: Mapping[str, Any] | None = None,
        ip: str | None = None,
    ) -> None:
        row = AuditEvent(
            at=_now(),
            actor=actor,
            action=action,
            target=target[:200] if target else target,
            detail=json_safe(dict(detail or {})),
            ip=ip[:64] if ip else ip,
        )
        with self._write() as s, s.begin():
            s.add(row)

    def audit_events(
        self,
        *,
        limit: int = 50,
        before: int | None = None,
        action: str | None = None,
        actor: str | None = None,
    ) -> list[AuditRecord]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if before is not None:
            query = query.where(AuditEvent.id < before)
        if action:
            query = query.where(AuditEvent.action == action)
        if actor:
            query = query.where(AuditEvent.actor == actor)
        with self._read() as s:
            return [
                AuditRecord(
                    id=r.id,
                    at=r.at,
                    actor=r.actor,
                    action=r.action,
                    target=r.target,
                    detail=dict(r.detail or {}),
                    ip=r.ip,
                )
                for r in s.scalars(query)
            ]

    def count_recent(
        self, action: str, *, since: datetime, target: str | None = None, ip: str | None = None
    ) -> int:
        """Audit events of `action` since `since`, for one target or one address (the login
        rate limit counts failures this way, so every API process sees the same count)."""
        query = (
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == action, AuditEvent.at >= since)
        )
        if target is not None:
            query = query.where(AuditEvent.target == target[:200])
        if ip is not None:
            query = query.where(AuditEvent.ip == ip[:64])
        with self._read() as s:
            return int(s.scalar(query) or 0)
