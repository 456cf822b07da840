"""HTTP API under load, on PostgreSQL with 10,000 experiments and 1,000,000 metric points.

- p50/p95 of list (filters, search, keyset pages), detail and downsampled-metrics requests
  from a concurrent load generator on loopback, against a real uvicorn process (target p95
  under 50 ms);
- 100 WebSocket clients on one experiment: delay from the store's commit of an event to its
  arrival at each client, through Redis pub/sub and the API's fan-out (target p95 < 100 ms).

Needs PostgreSQL (AZURAFORGE_BENCH_POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test,
a throw-away database is created and dropped) and Redis (AZURAFORGE_BENCH_REDIS_URL).

    uv run python bench/api_bench.py [--concurrency 1,4,16] [--processes 1,2] [--clients 100]
    uv run python bench/api_bench.py --experiments 100000   # listing at 100,000 rows
"""

from __future__ import annotations

import argparse
import asyncio
import io
import itertools
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import httpx
import psycopg
import websockets
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from azuraforge_platform.accounts import Accounts
from azuraforge_platform.events import EventService, RedisEventBus
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStore, normalize_url, upgrade
from azuraforge_platform.store.accounts import AccountStore, UserNotFoundError
from azuraforge_platform.store.tables import Role

PG = os.environ.get("AZURAFORGE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("AZURAFORGE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
EXPERIMENTS = 10_000  # --experiments
WITH_METRICS = 10_000  # the first ones have metrics, whatever the count: 1,000,000 points in all
SHORT_STEPS = 45  # x 2 metrics x 9,999 experiments = 899,910 points
LONG_POINTS = 100_090  # one long run: 1,000,000 points in all
PIPELINES = ["stock_predictor", "weather_forecaster", "image_classifier", "hyper_tuner"]
STATUSES = ["succeeded", "failed", "cancelled"]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def seed(url: str) -> tuple[list[str], str, str]:
    """Experiments by COPY (fast), metrics by COPY; returns ids, the long run, the live one."""
    upgrade(url)
    conninfo = normalize_url(url).replace("postgresql+psycopg://", "postgresql://")
    rng = random.Random(7)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [uuid.UUID(int=rng.getrandbits(128)).hex for _ in range(EXPERIMENTS)]
    t0 = time.perf_counter()
    with psycopg.connect(conninfo) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY experiments (id, name, pipeline_id, pipeline_version, config, status, "
            "created_at, updated_at, started_at, finished_at, attempts, max_attempts, summary, "
            "last_event_seq) FROM STDIN"
        ) as copy:
            for i, exp_id in enumerate(ids):
                created = start + timedelta(minutes=i)
                status = "running" if i == EXPERIMENTS - 1 else rng.choice(STATUSES)
                model = rng.choice(["lstm", "gru", "cnn"])
                copy.write_row((
                    exp_id, f"{model} run {i:05d}", PIPELINES[i % 4], "0.1.0",
                    json.dumps({"epochs": 45, "model": model}), status, created, created,
                    created, None if status == "running" else created + timedelta(minutes=3),
                    1, 1, json.dumps({"loss": rng.random()}), 0,
                ))  # fmt: skip
        with cur.copy("COPY experiment_tags (experiment_id, tag) FROM STDIN") as copy:
            for i, exp_id in enumerate(ids):
                copy.write_row((exp_id, f"batch-{i % 20}"))
        buf = io.StringIO()
        now = datetime.now(UTC).isoformat()
        long_id = ids[0]
        for exp_id in ids[1:WITH_METRICS]:
            for name in ("loss", "val_loss"):
                value = 1.0
                for step in range(1, SHORT_STEPS + 1):
                    value *= 0.97
                    buf.write(f"{exp_id}\t{name}\t{step}\t{step}\t{value:.6f}\t{now}\n")
        for step in range(LONG_POINTS):
            spike = 5.0 if step % 9973 == 0 else 0.0
            buf.write(f"{long_id}\tloss\t{step}\t\\N\t{1 / (1 + step / 1000) + spike:.6f}\t{now}\n")
        buf.seek(0)
        with cur.copy(
            "COPY metrics (experiment_id, name, step, epoch, value, time) FROM STDIN"
        ) as copy:
            while chunk := buf.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        conn.autocommit = True
        cur.execute("VACUUM ANALYZE")  # what autovacuum does after a bulk load
        cur.execute("SELECT count(*) FROM metrics")
        points = cur.fetchone()[0]  # type: ignore[index]
    print(
        f"seeded {EXPERIMENTS} experiments, {points} metric points in {time.perf_counter() - t0:.1f} s"
    )
    return ids, long_id, ids[-1]


def existing(url: str) -> tuple[list[str], str, str]:
    """The ids of a database seeded by an earlier --keep run (the live one reset to running)."""
    engine = create_engine(normalize_url(url))
    with engine.begin() as conn:
        ids = list(conn.execute(text("SELECT id FROM experiments ORDER BY created_at")).scalars())
        conn.execute(
            text("UPDATE experiments SET status = 'running', finished_at = NULL WHERE id = :i"),
            {"i": ids[-1]},
        )
    engine.dispose()
    return ids, ids[0], ids[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# max_points values never asked before, across all load levels: each "uncached" request is
# computed from the database, at about the size the dashboard asks for (2,000)
FRESH = itertools.count(1600)


async def load(
    base: str, kind: str, ids: list[str], long_id: str, n: int, conc: int
) -> list[float]:
    rng = random.Random(kind)
    base, base_path = base.split("/api/", 1)[0], "/api/" + base.split("/api/", 1)[1]
    latencies: list[float] = []
    cursors: list[str] = []

    def next_request() -> tuple[str, dict[str, object]]:
        if kind == "list":
            choice = rng.random()
            if choice < 0.3:
                return "/experiments", {"limit": 50}
            if choice < 0.5:
                return "/experiments", {
                    "limit": 50,
                    "status": "failed",
                    "pipeline_id": rng.choice(PIPELINES),
                }
            if choice < 0.65:
                return "/experiments", {
                    "limit": 50,
                    "q": rng.choice(["gru", "run 04", "lstm run 09"]),
                }
            if choice < 0.8:
                return "/experiments", {
                    "limit": 50,
                    "tag": f"batch-{rng.randrange(20)}",
                    "sort": "name",
                }
            if cursors:
                return "/experiments", {"limit": 50, "cursor": rng.choice(cursors)}
            return "/experiments", {"limit": 50}
        if kind == "pages":  # the dashboard's table: numbered pages of 50 with the total
            return "/experiments", {
                "limit": 50,
                "offset": 50 * rng.randrange(len(ids) // 50),
                "with_total": "true",
            }
        if kind == "detail":
            return f"/experiments/{rng.choice(ids)}", {}
        if kind == "metrics":
            return f"/experiments/{rng.choice(ids[1:WITH_METRICS])}/metrics", {"max_points": 200}
        if kind == "cold":  # a max_points never asked before: computed, not from the cache
            return f"/experiments/{long_id}/metrics", {"max_points": next(FRESH)}
        return f"/experiments/{long_id}/metrics", {"max_points": 500}

    # aiohttp, not httpx: the generator shares the 2 cores with the server and the database,
    # and httpx spent ~3 ms of CPU per request, more than the server does on most of them
    connector = aiohttp.TCPConnector(limit=conc)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(
        base, connector=connector, timeout=timeout, headers=AUTH
    ) as client:

        async def get(path: str, params: dict[str, object]) -> tuple[int, bytes]:
            query = {k: str(v) for k, v in params.items()}
            async with client.get(base_path + path, params=query) as response:
                return response.status, await response.read()

        # deep keyset cursors to page from (page 50 and beyond)
        if kind == "list":
            cursor = None
            for page in range(60):
                params: dict[str, object] = {"limit": 50}
                if cursor:
                    params["cursor"] = cursor
                cursor = json.loads((await get("/experiments", params))[1])["next_cursor"]
                if page >= 40 and cursor:
                    cursors.append(cursor)
        for _ in range(5):  # warm up
            await get(*next_request())
        queue = list(range(n))

        async def worker() -> None:
            while queue:
                queue.pop()
                path, params = next_request()
                t0 = time.perf_counter()
                status, body = await get(path, params)
                latencies.append((time.perf_counter() - t0) * 1000)
                if status != 200:
                    raise RuntimeError(f"{path} {params}: {status} {body[:300]!r}")

        await asyncio.gather(*(worker() for _ in range(conc)))
    return latencies


async def websockets_bench(
    ws_base: str, url: str, live_id: str, clients: int, events: int
) -> list[float]:
    store = ExperimentStore(url, tempfile.mkdtemp())
    service = EventService(store, RedisEventBus(REDIS, prefix=PREFIX))
    last = store.get(live_id).last_event_seq
    delays: list[float] = []
    ready = asyncio.Event()
    connected = 0

    async def client() -> None:
        nonlocal connected
        async with websockets.connect(
            f"{ws_base}/experiments/{live_id}/events?after={last}",
            max_size=None,
            additional_headers=AUTH,
        ) as ws:
            connected += 1
            if connected == clients:
                ready.set()
            async for raw in ws:
                arrived = time.time()
                message = json.loads(raw)
                if message["type"] == "end":
                    return
                if message["type"] == "bench":
                    delays.append((arrived - message["payload"]["sent"]) * 1000)

    def publish() -> None:
        for i in range(events):
            service.emit(live_id, "bench", {"sent": time.time(), "i": i})
            time.sleep(1 / RATE)
        store.transition(live_id, "succeeded")
        service.emit(live_id, "status", {"status": "succeeded"})

    tasks = [asyncio.create_task(client()) for _ in range(clients)]
    await asyncio.wait_for(ready.wait(), 120)
    await asyncio.sleep(0.5)  # every subscription is live
    publisher = threading.Thread(target=publish)
    publisher.start()
    await asyncio.wait_for(asyncio.gather(*tasks), 300)
    publisher.join()
    store.close()
    expected = clients * events
    if len(delays) != expected:
        print(f"WARNING: {len(delays)} of {expected} deliveries arrived")
    return delays


RATE = 20.0
AUTH: dict[str, str] = {}  # the bench user's bearer token, set in main()
PREFIX = f"azfbench-{uuid.uuid4().hex[:8]}"


KINDS = (
    ("list", "list (filters, search, deep keyset pages)"),
    ("pages", "list, numbered pages anywhere, with total"),
    ("detail", "detail"),
    ("metrics", "metrics, 90-point runs, max_points=200"),
    ("long", f"metrics, {LONG_POINTS:,}-point run, 500 (cached)"),
    ("cold", f"metrics, {LONG_POINTS:,}-point run, uncached"),
)


def bench_token(url: str, data_dir: Path) -> str:
    """Every request is authenticated, as in production: a bench admin and its API token."""
    settings = Settings(data_dir=data_dir, database_url=url)
    store = ExperimentStore(url, tempfile.mkdtemp())
    try:
        accounts = Accounts(AccountStore(store), settings)
        try:
            user = accounts.store.user_by_name("bench")
        except UserNotFoundError:
            user, _ = accounts.create_user("bench", role=Role.admin)
        return accounts.create_token(user, "api bench", 1)[1]
    finally:
        store.close()


def start_api(env: dict[str, str], processes: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "azuraforge_platform.api.app:create_app",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
         "--workers", str(processes)],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}/api/v1"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                return server, base
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            raise SystemExit("the API did not start")
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--concurrency", default="1,4,16", help="comma-separated load levels (connections)"
    )
    parser.add_argument("--database", help="reuse this seeded database (see --keep)")
    parser.add_argument("--experiments", type=int, default=10_000, help="experiments to seed")
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--requests", type=int, default=400, help="per request kind")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument(
        "--processes",
        default="1,2",
        help="comma-separated API process counts (azuraforge api --processes), one run each",
    )
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--rate", type=float, default=20.0, help="events per second")
    args = parser.parse_args()
    global RATE, EXPERIMENTS
    RATE = args.rate
    EXPERIMENTS = args.experiments

    admin_url = normalize_url(PG)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = args.database or f"azf_bench_{uuid.uuid4().hex[:10]}"
    if not args.database:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    tmp = Path(tempfile.mkdtemp())
    server = None
    try:
        if args.database:
            ids, long_id, live_id = existing(url)
        else:
            ids, long_id, live_id = seed(url)
        AUTH.update(Authorization=f"Bearer {bench_token(url, tmp)}")
        env = dict(os.environ)
        env.update(
            AZURAFORGE_DATA_DIR=str(tmp),
            AZURAFORGE_DATABASE_URL=url,
            AZURAFORGE_REDIS_URL=REDIS,
            AZURAFORGE_EVENT_CHANNEL_PREFIX=PREFIX,
            AZURAFORGE_CELERY_QUEUE=PREFIX,
        )
        print(f"{args.requests} requests per kind and load level; closed loop: each connection "
              "sends its next request when the last one answers")  # fmt: skip
        for run, processes in enumerate(int(p) for p in args.processes.split(",")):
            server, base = start_api(env, processes)
            print(f"\nAPI: {processes} uvicorn process(es), distributed mode")
            print(f"{'request':48} {'conns':>5} {'p50 ms':>8} {'p95 ms':>8} {'req/s':>7}  "
                  "p95 < 50 ms")  # fmt: skip
            for conc in [int(c) for c in args.concurrency.split(",")]:
                for kind, label in KINDS:
                    t0 = time.perf_counter()
                    lat = asyncio.run(load(base, kind, ids, long_id, args.requests, conc))
                    rate = len(lat) / (time.perf_counter() - t0)
                    p95 = pct(lat, 95)
                    print(f"{label:48} {conc:5d} {statistics.median(lat):8.1f} {p95:8.1f} "
                          f"{rate:7.0f}  {'ok' if p95 < 50 else 'FAIL'}")  # fmt: skip
            if run == 0:  # the live experiment ends with it: once
                ws_base = base.replace("http", "ws", 1)
                delays = asyncio.run(
                    websockets_bench(ws_base, url, live_id, args.clients, args.events)
                )
                p95 = pct(delays, 95)
                print(f"\nWebSocket: {args.clients} clients on one experiment, {args.events} "
                      f"events at {args.rate:g}/s ({len(delays)} deliveries): delivery p50 "
                      f"{statistics.median(delays):.1f} ms, p95 {p95:.1f} ms, "
                      f"max {max(delays):.1f} ms  target p95 < 100 ms  "
                      f"{'ok' if p95 < 100 else 'FAIL'}")  # fmt: skip
            server.terminate()
            server.wait(30)
            server = None
    finally:
        if server is not None:
            server.terminate()
            server.wait(30)
        if args.keep or args.database:
            print(f"kept database {name} (reuse with --database {name})")
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
