"""Alembic environment: always driven from code (azuraforge_platform.store.migrate)."""

from __future__ import annotations

from alembic import context

from azuraforge_platform.store.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run migrations with `azuraforge db upgrade` or azuraforge_platform.store.upgrade(url)"
    )
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
