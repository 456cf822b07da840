"""The shipped Alembic scripts build exactly the schema tables.py describes, on both backends."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from azuraforge_platform.settings import Settings
from azuraforge_platform.store import (
    ExperimentStore,
    current_revision,
    head_revision,
    make_engine,
    upgrade,
)
from azuraforge_platform.store.migrate import HEAD_REVISION, upgrade_engine
from azuraforge_platform.store.tables import Base

TABLES = {"experiments", "experiment_tags", "metrics", "logs", "events", "artifacts"}


def test_upgrade_creates_schema_matching_models(db_url: str) -> None:
    upgrade(db_url)
    upgrade(db_url)  # a second run is a no-op
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        assert set(inspect(engine).get_table_names()) >= TABLES
        with engine.connect() as conn:
            diff = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
        # PostgreSQL's search indexes (migration 0004) are not in the models, on purpose
        pg_only = {"ix_experiments_name_trgm", "ix_experiments_id_prefix"}
        diff = [d for d in diff if not (d[0] == "remove_index" and d[1].name in pg_only)]
        assert diff == []
        if engine.dialect.name == "postgresql":
            indexes = {i["name"] for i in inspect(engine).get_indexes("experiments")}
            assert pg_only <= indexes
    finally:
        engine.dispose()


def test_head_constant_matches_the_scripts() -> None:
    assert head_revision() == HEAD_REVISION


def test_store_migrates_on_first_use(db_url: str, tmp_path: Path) -> None:
    store = ExperimentStore(db_url, tmp_path)
    try:
        assert current_revision(store.engine) == head_revision()
        store.create(pipeline_id="p", config={})
    finally:
        store.close()


def test_sqlite_pragmas_and_default_location(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.resolved_database_url.endswith("data/azuraforge.db")
    store = ExperimentStore.from_settings(settings)
    try:
        with store.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 1000
        assert (tmp_path / "data" / "azuraforge.db").exists()
        assert store.artifact_root == (tmp_path / "data" / "artifacts").resolve()
    finally:
        store.close()


def test_concurrent_first_upgrades_do_not_collide(db_url: str) -> None:
    engines = [make_engine(db_url) for _ in range(3)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(engines))

    def run(engine) -> None:  # type: ignore[no-untyped-def]
        try:
            barrier.wait()
            upgrade_engine(engine)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        assert current_revision(engines[0]) == head_revision()
    finally:
        for e in engines:
            e.dispose()
