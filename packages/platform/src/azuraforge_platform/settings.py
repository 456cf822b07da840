"""The platform's settings: the ONLY module that reads the environment.

Every variable is prefixed `AZURAFORGE_`; everything else receives a `Settings` instance.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AZURAFORGE_", extra="ignore")

    data_dir: Path = Field(
        default_factory=lambda: Path.home() / ".azuraforge",
        description="Where the SQLite database and the artifacts live by default.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; unset means SQLite under data_dir. "
        "postgresql://user@host/db uses psycopg 3.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for distributed events and the Celery broker; unset = embedded.",
    )
    artifact_root: Path | None = Field(
        default=None, description="Where experiments' artifacts go; unset means data_dir/artifacts."
    )
    event_channel_prefix: str = Field(
        default="azuraforge", description="Prefix of Redis pub/sub channels (to share one Redis)."
    )
    celery_queue: str = Field(
        default="azuraforge", description="Celery queue the workers consume experiments from."
    )
    celery_visibility_timeout: int = Field(
        default=12 * 3600, ge=60, description="Seconds before Redis redelivers an unacked task."
    )
    heartbeat_seconds: float = Field(
        default=5.0, gt=0, description="How often a running job beats."
    )
    lost_after_seconds: float = Field(
        default=60.0, gt=0, description="A running job silent for this long is declared lost."
    )
    max_attempts: int = Field(default=3, ge=1, description="Default attempts per experiment.")

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'azuraforge.db').resolve()}"

    @property
    def resolved_artifact_root(self) -> Path:
        return (self.artifact_root or self.data_dir / "artifacts").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
