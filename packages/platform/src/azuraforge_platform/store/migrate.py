"""Schema migrations (Alembic scripts shipped in this package), run from code.

Alembic is imported only when a migration actually runs: checking that a database is current
is one SELECT, which keeps worker processes quick to start.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

from azuraforge_platform.store.engine import WRITE_OPTION, make_engine

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["HEAD_REVISION", "current_revision", "ensure_schema", "head_revision", "upgrade"]

# The newest script in migrations/versions; a test checks it against Alembic's own view.
HEAD_REVISION = "0006"

# Any constant works; it only has to be the same in every process migrating this database.
_PG_LOCK_KEY = 0x417A7572_61460001
_checked: set[str] = set()
_checked_lock = threading.Lock()


def _config(connection: Connection | None = None) -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "azuraforge_platform.store:migrations")
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    """The head according to the shipped scripts (imports Alembic)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError("no migration scripts found in azuraforge_platform.store.migrations")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade_engine(engine: Engine, revision: str = "head") -> None:
    """Migrate under a lock so concurrent first starts (API + workers) do it once."""
    from alembic import command

    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK_KEY})
        # SQLite: the write engine began with BEGIN IMMEDIATE, which is the lock.
        command.upgrade(_config(conn), revision)


def upgrade(url: str, revision: str = "head") -> None:
    """`azuraforge db upgrade`: bring the database at `url` to `revision`."""
    engine = make_engine(url)
    try:
        upgrade_engine(engine, revision)
    finally:
        engine.dispose()
    with _checked_lock:
        _checked.discard(str(engine.url))


def ensure_schema(engine: Engine) -> None:
    """Upgrade to head unless this process already saw the database at head (first use)."""
    key = str(engine.url)
    with _checked_lock:
        if key in _checked:
            return
    if current_revision(engine) != HEAD_REVISION:
        upgrade_engine(engine)
    with _checked_lock:
        _checked.add(key)
