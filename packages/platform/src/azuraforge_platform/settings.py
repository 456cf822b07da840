"""The platform's settings: the ONLY module that reads the environment.

Every variable is prefixed `AZURAFORGE_`; everything else receives a `Settings` instance.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
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
    artifact_s3_bucket: str | None = Field(
        default=None,
        description="An S3-compatible bucket that keeps every experiment's artifacts and "
        "checkpoints (needs azuraforge-platform[s3]); unset: local folders only. Runs write "
        "their local folder and upload to it; the API and predictions read it, so workers on "
        "other machines resume from it without a shared folder. Credentials come from boto3's "
        "own chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, ~/.aws, an instance role).",
    )
    artifact_s3_endpoint_url: str | None = Field(
        default=None,
        description="The S3 endpoint of a non-AWS server (MinIO, Ceph, ...), reached by path "
        "(http://host:9000); unset: AWS S3.",
    )
    artifact_s3_prefix: str = Field(
        default="azuraforge/",
        description="Key prefix of the artifacts in the bucket (one bucket can serve several "
        "installations): keys are <prefix><experiment id>/<file>.",
    )
    artifact_s3_region: str | None = Field(
        default=None, description="The bucket's region; unset: boto3's default (AWS_REGION...)."
    )
    artifact_cache_max_mb: int = Field(
        default=2048,
        ge=1,
        description="With a bucket: the most megabytes of its files (registered models fetched "
        "for predictions) this node keeps in data_dir/artifact-cache; beyond it the least "
        "recently used go first (never one used in the last minute).",
    )
    data_roots: list[Path] = Field(
        default_factory=list,
        description="Folders (JSON list) whose files API clients may name in configs and "
        "predictions, besides their uploads. Everything else on the server is out of reach.",
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
        default=20.0,
        gt=0,
        description="A running job silent for this long is declared lost (and re-queued). "
        "The reapers look every reap_seconds, so a dead run is noticed within their sum.",
    )
    reap_seconds: float = Field(
        default=5.0, gt=0, description="How often workers and the dispatcher look for lost runs."
    )
    cancel_grace_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a run may ignore a cancel before its process is terminated.",
    )
    max_attempts: int = Field(
        default=2, ge=1, description="Default attempts per experiment (a lost run is retried)."
    )
    device: Literal["cpu", "cuda"] = Field(
        default="cpu",
        description="Where runs train: cpu (numpy), or cuda (CuPy on an NVIDIA GPU; the "
        "worker then needs CuPy and the CUDA libraries: `uv sync --extra cuda` plus the "
        "cuda-toolkit wheels, or the GPU worker image, deploy/README.md).",
    )

    # -- HTTP API (azuraforge up / azuraforge api) ---------------------------------------
    api_host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    api_port: int = Field(default=8000, ge=0, le=65535, description="Port the API listens on.")
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies whose X-Forwarded-For and X-Forwarded-Proto the API believes "
        "(comma-separated addresses or networks; '*' any): behind nginx the client's address "
        "(login limits, audit) and https (Secure cookies) come from them. Use '*' only where "
        "nothing but the proxy reaches the API's port.",
    )
    api_max_body_bytes: int = Field(
        default=8 * 1024 * 1024, ge=1024, description="Largest JSON request body accepted."
    )
    upload_max_bytes: int = Field(
        default=200 * 1024 * 1024, ge=1024, description="Largest uploaded data file accepted."
    )
    upload_quota_user_bytes: int = Field(
        default=2 * 1024**3,
        ge=0,
        description="Bytes of uploads one owner may keep (uploads without an owner share one).",
    )
    upload_quota_total_bytes: int = Field(
        default=20 * 1024**3, ge=0, description="Bytes all uploads together may take."
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed by CORS (JSON list); empty = CORS off (same origin only).",
    )
    dashboard_dir: Path | None = Field(
        default=None,
        description="The built dashboard served at / (unset: the repository's dashboard/dist).",
    )
    embedded_workers: int = Field(
        default=1, ge=1, description="Concurrent runs of the embedded executor (azuraforge up)."
    )
    coordinator_slots: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Coordinator runs (hyperparameter studies) each process runs at once, "
        "beside its worker slots: a study waits on its trials, never in a slot they need.",
    )
    ws_ping_seconds: float = Field(
        default=15.0, gt=0, description="Idle WebSockets get a ping message this often."
    )
    predict_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="Wall-clock limit of one prediction; its process is killed after it.",
    )
    predict_memory_mb: int = Field(
        default=2048,
        ge=64,
        description="Memory (address space) one prediction may allocate beyond what its "
        "pre-loaded worker process already holds; over it, the prediction is refused.",
    )
    predict_max_concurrent: int = Field(
        default=2,
        ge=1,
        description="Predictions running at once per API process; more wait for a free slot "
        "(up to predict_timeout_seconds, then 503).",
    )

    # -- authentication ---------------------------------------------------------------------
    auth_enabled: bool = Field(
        default=True,
        description="Every route but /health and the login needs a credential. Only "
        "`azuraforge up --no-auth` switches it off, and only on a loopback address.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Signs WebSocket tokens; unset: a random key kept in data_dir/secret.key "
        "(owner-only). API instances behind one load balancer must share it.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Host names clients use to reach the API (JSON list; '*' allows any). "
        "Empty: loopback names and this machine's own names and addresses. Other "
        "Host headers are refused (DNS rebinding), and so is an Origin of another host.",
    )
    session_hours: float = Field(
        default=12.0, gt=0, le=24 * 30, description="How long a dashboard login lasts."
    )
    ws_token_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Lifetime of a WebSocket token."
    )
    auth_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        description="How long an API process trusts a credential it has checked. A token "
        "revoked or a user disabled through another process stops working within this time "
        "(at once through this one); 0 checks the database on every request.",
    )
    token_max_days: int = Field(
        default=365, ge=1, description="The longest lifetime a personal API token may have."
    )
    login_window_seconds: float = Field(
        default=900.0, gt=0, description="The window the login rate limit counts failures in."
    )
    login_max_failures: int = Field(
        default=10, ge=1, description="Failed logins per username per window before 429."
    )
    login_max_failures_per_ip: int = Field(
        default=50, ge=1, description="Failed logins per client address per window before 429."
    )
    audit_retention_days: int = Field(
        default=90,
        ge=0,
        description="Audit events, and personal API tokens expired or revoked, are deleted "
        "after this many days (0 keeps them). Login sessions go once expired or revoked.",
    )
    token: SecretStr | None = Field(
        default=None,
        description="The API token remote CLI commands send (else the one `azuraforge login` "
        "stored for the server).",
    )
    config_dir: Path = Field(
        default_factory=lambda: Path.home() / ".config" / "azuraforge",
        description="Where `azuraforge login` keeps its credentials (owner-only).",
    )

    # -- observability (docs/observability.md) ----------------------------------------------
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="text: lines for people; json: one JSON object a line (with the request "
        "and experiment ids) for a log collector.",
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="WARNING", description="The lowest level logged by the platform's processes."
    )
    access_log: bool = Field(
        default=False,
        description="One INFO line per HTTP request (method, route, status, duration, "
        "request id); needs log_level INFO or lower.",
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="The bearer token Prometheus sends to /metrics (API and workers). "
        "Admins' own credentials also reach the API's /metrics.",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port a worker serves /metrics on (needs metrics_token); unset: none.",
    )
    worker_metrics_host: str = Field(
        default="0.0.0.0", description="Address a worker's /metrics listens on."
    )
    prometheus_multiproc_dir: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"),
        description="prometheus_client's multiprocess mode (its own variable, unprefixed): "
        "`azuraforge api --processes N` sets it; /metrics then adds up every process's values.",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'azuraforge.db').resolve()}"

    @property
    def resolved_artifact_root(self) -> Path:
        return (self.artifact_root or self.data_dir / "artifacts").resolve()

    @property
    def upload_dir(self) -> Path:
        """Where uploaded data files are kept (names generated by the server)."""
        return (self.data_dir / "uploads").resolve()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
