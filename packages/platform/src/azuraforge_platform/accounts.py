"""Who may use the platform: users with argon2id password hashes, personal API tokens and
login sessions (random secrets kept as SHA-256), short-lived signed WebSocket tokens, the login
rate limit and the audit log. Used by the API and by the CLI's local `users`/`tokens` commands.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from azuraforge_platform.settings import Settings
from azuraforge_platform.store.accounts import (
    AccountStore,
    TokenRecord,
    UserNotFoundError,
    UserRecord,
)
from azuraforge_platform.store.tables import Role

__all__ = [
    "LOCAL_USER",
    "Accounts",
    "InvalidCredentialsError",
    "Principal",
    "RateLimitedError",
    "generate_password",
    "load_signing_key",
]

log = logging.getLogger(__name__)

API_TOKEN_PREFIX = "af_"
SESSION_PREFIX = "afs_"
MIN_PASSWORD_LENGTH = 10
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified when a username does not exist, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password, only here to spend the same time")


class InvalidCredentialsError(Exception):
    """Wrong username or password (never says which)."""


class RateLimitedError(Exception):
    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many failed logins; try again in {retry_after} s")


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a user, how it authenticated, and with which token."""

    user_id: int
    username: str
    role: Role
    auth: str  # "session", "token" or "none" (authentication switched off)
    token_id: int | None = None

    @property
    def can_write(self) -> bool:
        return self.role in (Role.member, Role.admin)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def may_use(self, owner: str | None) -> bool:
        """See and use something private to its owner (an upload): its owner and admins."""
        return self.is_admin or owner == self.username

    def may_manage(self, owner: str | None) -> bool:
        """Cancel or delete something owned by `owner`: admins anything, members their own."""
        return self.is_admin or (self.role is Role.member and owner == self.username)


# Everything is allowed to the one local user of `azuraforge up --no-auth`.
LOCAL_USER = Principal(user_id=0, username="local", role=Role.admin, auth="none")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def generate_password() -> str:
    return secrets.token_urlsafe(15)  # 120 random bits, 20 characters


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise ValueError("a password has at most 1024 characters")


def load_signing_key(settings: Settings) -> bytes:
    """The key that signs WebSocket tokens: from settings, else a random key kept in the data
    folder, created on first use readable by its owner only. Several API instances behind a
    load balancer must share it (`AZURAFORGE_SECRET_KEY`, or a shared data folder)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.data_dir / "secret.key"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_key(path)
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32))
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    for _ in range(50):  # another process may be writing it this very moment
        key = path.read_text().strip()
        if len(key) == 64:
            return key.encode()
        time.sleep(0.02)
    raise RuntimeError(f"the signing key file {path} is damaged; delete it to make a new one")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Accounts:
    """The rules around `AccountStore`: hashing, expiry, rate limits, what gets audited."""

    def __init__(self, store: AccountStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._key: bytes | None = None
        # secret hash -> (cached at, token expiry, caller): every request authenticates, and
        # the database round trips cost more than most routes (see `auth_cache_seconds`)
        self._recent: dict[str, tuple[float, datetime, Principal]] = {}

    @property
    def signing_key(self) -> bytes:
        if self._key is None:
            self._key = load_signing_key(self.settings)
        return self._key

    # -- users ----------------------------------------------------------------------------
    def create_user(
        self, username: str, *, role: Role, password: str | None = None
    ) -> tuple[UserRecord, str | None]:
        """The new user and, when no password was given, the generated one (shown once)."""
        generated = None
        if password is None:
            password = generated = generate_password()
        check_password_strength(password)
        user = self.store.create_user(username, role=role, password_hash=_hasher.hash(password))
        return user, generated

    def ensure_first_admin(self, username: str = "admin") -> str | None:
        """On a store without users: an admin with a random password, returned to be shown
        once. None when users exist already."""
        if self.store.count_users() > 0:
            return None
        _, password = self.create_user(username, role=Role.admin)
        return password

    def set_password(self, user_id: int, password: str) -> UserRecord:
        check_password_strength(password)
        return self.update_user(user_id, password_hash=_hasher.hash(password))

    # -- logging in -----------------------------------------------------------------------
    def check_rate(self, username: str, ip: str | None) -> None:
        window = timedelta(seconds=self.settings.login_window_seconds)
        since = datetime.now(UTC) - window
        by_name = self.store.count_recent("login.failed", since=since, target=username)
        by_ip = self.store.count_recent("login.failed", since=since, ip=ip) if ip is not None else 0
        if (
            by_name >= self.settings.login_max_failures
            or by_ip >= self.settings.login_max_failures_per_ip
        ):
            raise RateLimitedError(int(window.total_seconds()))

    def login(
        self, username: str, password: str, *, ip: str | None
    ) -> tuple[UserRecord, TokenRecord, str]:
        """A new login session: (user, session record, session secret). Failures are audited
        and counted; too many recent ones raise `RateLimitedError` before any check."""
        self.check_rate(username, ip)
        try:
            user: UserRecord | None = self.store.user_by_name(username)
        except UserNotFoundError:
            user = None
        ok = _verify(user.password_hash if user else None, password)
        if user is None or not ok or user.disabled:
            reason = "unknown user" if user is None else "disabled" if ok else "bad password"
            self.store.audit(
                "login.failed", actor=None, target=username, detail={"reason": reason}, ip=ip
            )
            raise InvalidCredentialsError
        if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
            self.store.update_user(user.id, password_hash=_hasher.hash(password))
        secret = SESSION_PREFIX + secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(hours=self.settings.session_hours)
        record = self.store.add_token(
            user.id,
            kind="session",
            name="dashboard login",
            prefix=secret[:10],
            secret_hash=hash_secret(secret),
            expires_at=expires,
        )
        self.store.record_login(user.id)
        self.store.audit("login", actor=user.username, target=user.username, ip=ip)
        return user, record, secret

    def prune(self) -> dict[str, int]:
        """Deletes what no one can use or needs any more (`audit_retention_days`): the
        tables of credentials and audit events would otherwise only grow, a failed login
        adding a row each."""
        days = self.settings.audit_retention_days
        older_than = datetime.now(UTC) - timedelta(days=days) if days > 0 else None
        return self.store.prune(older_than=older_than)

    # -- tokens ---------------------------------------------------------------------------
    def create_token(self, user: UserRecord, name: str, days: int) -> tuple[TokenRecord, str]:
        """A personal API token (the secret is returned once and kept only as a hash)."""
        if not 1 <= days <= self.settings.token_max_days:
            raise ValueError(f"a token expires after 1 to {self.settings.token_max_days} days")
        secret = API_TOKEN_PREFIX + secrets.token_urlsafe(32)
        record = self.store.add_token(
            user.id,
            kind="api",
            name=name,
            prefix=secret[:10],
            secret_hash=hash_secret(secret),
            expires_at=datetime.now(UTC) + timedelta(days=days),
        )
        return record, secret

    def cached(self, secret: str) -> Principal | None:
        """The caller behind `secret` if it was authenticated in the last
        `auth_cache_seconds` and its token has not expired since (no I/O)."""
        hit = self._recent.get(hash_secret(secret))
        if hit is None:
            return None
        cached_at, expires_at, principal = hit
        if time.monotonic() - cached_at > self.settings.auth_cache_seconds:
            return None
        return principal if expires_at > datetime.now(UTC) else None

    def authenticate(self, secret: str) -> Principal | None:
        if not secret or len(secret) > 200:
            return None
        if (principal := self.cached(secret)) is not None:
            return principal
        key = hash_secret(secret)
        found = self.store.find_credential(key)
        if found is None:
            self._recent.pop(key, None)
            return None
        user, token = found
        principal = Principal(
            user_id=user.id,
            username=user.username,
            role=user.role,
            auth="session" if token.kind == "session" else "token",
            token_id=token.id,
        )
        if self.settings.auth_cache_seconds > 0:
            if len(self._recent) > 10_000:
                self._recent.clear()
            self._recent[key] = (time.monotonic(), token.expires_at, principal)
        return principal

    def forget_cached(self) -> None:
        """After a revocation or a user change made here: no cached caller outlives it."""
        self._recent.clear()

    def revoke_token(self, token_id: int) -> bool:
        revoked = self.store.revoke_token(token_id)
        self.forget_cached()
        return revoked

    def update_user(self, user_id: int, **changes: Any) -> UserRecord:
        updated = self.store.update_user(user_id, **changes)
        self.forget_cached()
        return updated

    # -- WebSocket tokens -----------------------------------------------------------------
    def ws_token(self, principal: Principal) -> str:
        """A signed token naming the user, valid `ws_token_seconds`: browsers cannot set
        headers on a WebSocket, so the dashboard sends this as a subprotocol instead."""
        expires = int(time.time()) + int(self.settings.ws_token_seconds)
        payload = f"{principal.user_id}.{expires}.{secrets.token_hex(8)}".encode()
        signature = hmac.new(self.signing_key, payload, hashlib.sha256).digest()
        return f"{_b64(payload)}.{_b64(signature)}"

    def verify_ws_token(self, token: str) -> Principal | None:
        try:
            encoded, signature = token.split(".")
            payload = _unb64(encoded)
            expected = hmac.new(self.signing_key, payload, hashlib.sha256).digest()
            if not hmac.compare_digest(expected, _unb64(signature)):
                return None
            user_id, expires, _nonce = payload.decode().split(".")
            if int(expires) < time.time():
                return None
            user = self.store.user(int(user_id))
        except (ValueError, UnicodeDecodeError, UserNotFoundError):
            return None
        if user.disabled:
            return None
        return Principal(user_id=user.id, username=user.username, role=user.role, auth="token")


def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False
