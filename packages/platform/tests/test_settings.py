from __future__ import annotations

from pathlib import Path

import pytest

from azuraforge_platform.settings import Settings
from azuraforge_platform.store import normalize_url


def test_environment_is_read_with_prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AZURAFORGE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AZURAFORGE_DATABASE_URL", "postgresql://u@h/db")
    monkeypatch.setenv("AZURAFORGE_REDIS_URL", "redis://h:6379/1")
    s = Settings()
    assert s.data_dir == tmp_path
    assert s.resolved_database_url == "postgresql://u@h/db"
    assert s.redis_url == "redis://h:6379/1"
    assert s.resolved_artifact_root == (tmp_path / "artifacts").resolve()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalize_url("sqlite:///x.db") == "sqlite:///x.db"
