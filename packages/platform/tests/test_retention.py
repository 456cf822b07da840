"""Credentials and audit events do not pile up: expired or revoked login sessions go at
once, expired or revoked API tokens and audit events after `audit_retention_days`; the API
prunes at start and hourly. On SQLite and on a real PostgreSQL."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from azuraforge_platform.accounts import Accounts
from azuraforge_platform.api import create_app
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStore
from azuraforge_platform.store.accounts import AccountStore
from azuraforge_platform.store.tables import ApiToken, AuditEvent, Role

NOW = datetime.now(UTC)


def _token(accounts: AccountStore, user_id: int, kind: str, name: str, expires: datetime) -> int:
    return accounts.add_token(
        user_id, kind=kind, name=name, prefix="x", secret_hash=f"{kind}-{name}", expires_at=expires
    ).id


def _backdate(store: ExperimentStore, table: type, row_id: int, **values: datetime) -> None:
    with store.engine.begin() as conn:
        conn.execute(update(table).where(table.id == row_id).values(**values))  # type: ignore[attr-defined]


def _names(store: ExperimentStore) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.scalars(select(ApiToken.name)))


def _actions(store: ExperimentStore) -> set[str]:
    with store.engine.connect() as conn:
        return set(conn.scalars(select(AuditEvent.action)))


def test_prune_keeps_what_can_be_used_or_is_recent(store: ExperimentStore, tmp_path: Path) -> None:
    accounts = AccountStore(store)
    user = accounts.create_user("ada", role=Role.admin, password_hash=None)
    hour, year = timedelta(hours=1), timedelta(days=365)
    _token(accounts, user.id, "session", "session-live", NOW + hour)
    _token(accounts, user.id, "session", "session-expired", NOW - hour)
    revoked_session = _token(accounts, user.id, "session", "session-revoked", NOW + hour)
    accounts.revoke_token(revoked_session)
    _token(accounts, user.id, "api", "api-live", NOW + year)
    _token(accounts, user.id, "api", "api-expired-recently", NOW - hour)
    _token(accounts, user.id, "api", "api-expired-long-ago", NOW - year)
    revoked_recently = _token(accounts, user.id, "api", "api-revoked-recently", NOW + year)
    accounts.revoke_token(revoked_recently)
    revoked_long_ago = _token(accounts, user.id, "api", "api-revoked-long-ago", NOW + year)
    _backdate(store, ApiToken, revoked_long_ago, revoked_at=NOW - year)
    accounts.audit("login.failed", actor=None, target="ada", ip="10.0.0.1")
    accounts.audit("user.create", actor="root", target="ada")
    with store.engine.begin() as conn:
        conn.execute(
            update(AuditEvent).where(AuditEvent.action == "user.create").values(at=NOW - year)
        )

    settings = Settings(data_dir=tmp_path, audit_retention_days=90)
    pruned = Accounts(accounts, settings).prune()

    assert pruned == {"sessions": 2, "tokens": 2, "audit": 1}
    assert _names(store) == {
        "session-live", "api-live", "api-expired-recently", "api-revoked-recently",
    }  # fmt: skip
    assert _actions(store) == {"login.failed"}
    assert Accounts(accounts, settings).prune() == {"sessions": 0, "tokens": 0, "audit": 0}
    # 0 keeps API tokens and the audit log for good; dead sessions still go
    _token(accounts, user.id, "session", "session-expired-2", NOW - hour)
    keep = Settings(data_dir=tmp_path, audit_retention_days=0)
    assert Accounts(accounts, keep).prune() == {"sessions": 1}


def test_the_api_prunes_when_it_starts(tmp_path: Path, db_url: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url=db_url, allowed_hosts=["testserver"])
    store = ExperimentStore.from_settings(settings)
    accounts = AccountStore(store)
    user = accounts.create_user("ada", role=Role.admin, password_hash=None)
    _token(accounts, user.id, "session", "stale", NOW - timedelta(minutes=1))
    _token(accounts, user.id, "session", "fresh", NOW + timedelta(hours=1))
    with TestClient(create_app(settings, run_jobs=False, serve_dashboard=False)):
        deadline = time.monotonic() + 30
        while "stale" in _names(store):
            assert time.monotonic() < deadline, "the API never pruned the expired session"
            time.sleep(0.05)
    assert _names(store) == {"fresh"}
    store.close()
