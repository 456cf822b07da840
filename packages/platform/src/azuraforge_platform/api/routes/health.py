"""`GET /health`: the database, the queue, the artifact storage and the workers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from azuraforge_platform import __version__
from azuraforge_platform.api.deps import ServicesDep
from azuraforge_platform.api.errors import ApiError
from azuraforge_platform.api.schemas import Health, ServiceHealth, WorkerHealth
from azuraforge_platform.api.security import current_principal
from azuraforge_platform.api.services import Services
from azuraforge_platform.api.worker_census import celery_nodes, node_of
from azuraforge_platform.paths import redact_paths
from azuraforge_platform.store import current_revision

router = APIRouter(prefix="/health", tags=["health"])


def _database(services: Services) -> ServiceHealth:
    store = services.store
    try:
        with store.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        return ServiceHealth(
            ok=True, kind=store.dialect, detail=f"schema {current_revision(store.engine)}"
        )
    except Exception as exc:  # e.g. SQLite's file: the answer names no server path
        detail = redact_paths(f"{type(exc).__name__}: {exc}")
        return ServiceHealth(ok=False, kind=store.dialect, detail=detail)


def _storage(services: Services) -> ServiceHealth:
    bucket = services.store.bucket
    if bucket is None:
        return ServiceHealth(ok=True, kind="folder", detail="local artifact folders")
    try:
        bucket.check()
        return ServiceHealth(ok=True, kind="s3", detail=bucket.location)
    except Exception as exc:  # a missing bucket, refused credentials, no route to the server
        return ServiceHealth(ok=False, kind="s3", detail=f"{bucket.location}: {exc}")


def _check(services: Services) -> Health:
    database = _database(services)
    storage = _storage(services)
    settings = services.settings
    if services.mode == "distributed":
        try:
            import redis

            client = redis.Redis.from_url(settings.redis_url or "", socket_connect_timeout=1)
            client.ping()
            client.close()
            queue = ServiceHealth(ok=True, kind="redis", detail=f"queue {settings.celery_queue}")
        except Exception as exc:
            queue = ServiceHealth(ok=False, kind="redis", detail=f"{type(exc).__name__}: {exc}")
    else:
        executor = services.executor
        if executor is None:
            queue = ServiceHealth(ok=True, kind="embedded", detail="no workers in this process")
        else:
            alive = any(t.is_alive() for t in executor._threads)
            queue = ServiceHealth(
                ok=alive,
                kind="embedded",
                detail=f"{len(executor.running)}/{executor.max_workers} runs in progress",
            )
    workers: dict[str, WorkerHealth] = {}
    if database.ok:
        cutoff = datetime.now(UTC) - timedelta(seconds=settings.lost_after_seconds)
        page = services.store.list_experiments(status=["running", "cancelling"], limit=1000)
        for exp in page.items:
            if exp.worker is None:
                continue
            workers[exp.worker] = WorkerHealth(
                name=exp.worker,
                experiment_id=exp.id,
                heartbeat_at=exp.heartbeat_at,
                alive=exp.heartbeat_at is not None and exp.heartbeat_at >= cutoff,
            )
    if services.mode == "distributed" and queue.ok:
        for name in celery_nodes(services):
            if not any(node_of(w) == name for w in workers):
                workers[name] = WorkerHealth(name=name, alive=True)
    elif services.executor is not None:
        slots = services.executor.max_workers
        for i in range(max(0, slots - len(services.executor.running))):
            workers[f"embedded-slot-{i + 1}"] = WorkerHealth(
                name=f"embedded-slot-{i + 1}", alive=True
            )
    items = sorted(workers.values(), key=lambda w: w.name)
    return Health(
        status="ok" if database.ok and queue.ok and storage.ok else "degraded",
        mode="embedded" if services.mode == "embedded" else "distributed",
        version=__version__,
        database=database,
        queue=queue,
        storage=storage,
        workers_alive=sum(w.alive for w in items),
        workers=items,
    )


@router.get(
    "",
    response_model=Health,
    summary="Database, queue and worker status (details and workers only when signed in)",
)
async def health(services: ServicesDep, request: Request) -> Health:
    report = await run_in_threadpool(_check, services)
    try:
        await current_principal(request)
    except ApiError:
        # public for load balancers and uptime checks: whether it works, not what runs where
        return report.model_copy(
            update={
                "database": report.database.model_copy(update={"detail": ""}),
                "queue": report.queue.model_copy(update={"detail": ""}),
                "storage": report.storage.model_copy(update={"detail": ""}),
                "workers": [],
            }
        )
    return report
