"""How much does the platform cost? Prints:

1. enqueue -> `running`: embedded (`LocalExecutor`, child process per run) and Celery
   (`azuraforge worker`, threads pool, child process per run), median and max of N runs;
2. event latency publish -> subscriber, p50/p95: the bus alone (in-process, Redis) and the
   whole path a live view sees (`EventService.emit`: stored, seq'd, then published);
3. metric write rate (points/s), batches of 1,000 upserts, SQLite and PostgreSQL;
4. the platform's overhead on a real training (a Learner MLP on scikit-learn's digits, with
   per-step progress and per-epoch metrics) versus calling the learner directly (target < 5%).

    uv run python bench/platform_bench.py [--quick]

Redis and PostgreSQL are taken from AZURAFORGE_TEST_REDIS_URL / AZURAFORGE_TEST_POSTGRES_URL
(default: the local servers the test suite uses); without them those rows say SKIP.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from azuraforge_pipeline import Pipeline, PipelineConfig, PipelineRegistry, RunContext
from azuraforge_platform.events import EventService, InProcessEventBus, RedisEventBus
from azuraforge_platform.execution import LocalExecutor, run_experiment
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import EventRecord, ExperimentStatus, ExperimentStore, MetricValue

REDIS_URL = os.environ.get("AZURAFORGE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
POSTGRES_URL = os.environ.get(
    "AZURAFORGE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
S = ExperimentStatus
ROWS: list[tuple[str, str, str, str]] = []


def row(what: str, value: str, target: str = "", note: str = "") -> None:
    ROWS.append((what, value, target, note))
    print(f"  {what:<52} {value:>16}  {target:<10} {note}", flush=True)


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


# -- services -----------------------------------------------------------------------------
def redis_ok() -> bool:
    try:
        import redis

        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
        client.ping()
        client.close()
        return True
    except Exception:
        return False


@contextmanager
def postgres_db() -> Iterator[str | None]:
    """A throw-away database on the server (None when there is no server)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from azuraforge_platform.store import normalize_url

    admin_url = normalize_url(POSTGRES_URL)
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        yield None
        return
    name = f"azf_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- a tiny pipeline the worker processes can find: installed as a plugin -----------------
PLUGIN = """
import time
from azuraforge_pipeline import Pipeline, PipelineConfig


class Nap(Pipeline):
    id = "{id}"
    name = "Nap"

    class Config(PipelineConfig):
        seconds: float = 0.2

    def run(self, config, context):
        time.sleep(config.seconds)
        context.log_metrics({{"x": 1.0}}, step=0)
        return {{}}
"""


@contextmanager
def nap_plugin(root: Path) -> Iterator[str]:
    tag = uuid.uuid4().hex[:8]
    pipeline_id, module, dist = f"nap_{tag}", f"azf_bench_nap_{tag}", f"azf-bench-nap-{tag}"
    (root / "src" / module).mkdir(parents=True)
    (root / "src" / module / "__init__.py").write_text(PLUGIN.format(id=pipeline_id))
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{dist}"\nversion = "0.0.1"\nrequires-python = ">=3.11"\n'
        f'[project.entry-points."azuraforge.pipelines"]\n{pipeline_id} = "{module}:Nap"\n'
        '[build-system]\nrequires = ["uv_build>=0.8,<0.14"]\nbuild-backend = "uv_build"\n'
    )
    uv = ["uv", "pip"]
    subprocess.run([*uv, "install", "-q", "--no-deps", "--python", sys.executable, str(root)],
                   check=True)  # fmt: skip
    try:
        yield pipeline_id
    finally:
        subprocess.run([*uv, "uninstall", "-q", "--python", sys.executable, dist], check=False)


def wait_status(store: ExperimentStore, exp_id: str, statuses: set[S], timeout: float) -> float:
    deadline = time.perf_counter() + timeout
    while store.get(exp_id).status not in statuses:
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{exp_id} stayed {store.get(exp_id).status}")
        time.sleep(0.005)
    return time.perf_counter()


# -- 1. enqueue -> running ----------------------------------------------------------------
def bench_enqueue_embedded(tmp: Path, pipeline_id: str, runs: int) -> None:
    settings = Settings(data_dir=tmp / "embedded", heartbeat_seconds=1.0)
    store = ExperimentStore.from_settings(settings)
    bus = InProcessEventBus()
    delays = []
    with LocalExecutor(settings, store, bus, max_workers=1, poll_seconds=0.05) as executor:
        for _ in range(runs):
            t0 = time.perf_counter()
            exp = store.create(pipeline_id=pipeline_id, config={"seconds": 0.05})
            executor.submit(exp.id)
            delays.append(wait_status(store, exp.id, {S.running, S.succeeded}, 120) - t0)
            wait_status(store, exp.id, {S.succeeded, S.failed}, 120)
    store.close()
    row("enqueue -> running, embedded (median)", f"{statistics.median(delays):.2f} s",
        note=f"max {max(delays):.2f} s over {runs}; includes starting the run's process")  # fmt: skip


def bench_enqueue_celery(tmp: Path, pipeline_id: str, runs: int, db_url: str) -> None:
    from azuraforge_platform.worker import CeleryDispatcher, make_celery

    prefix = f"azfbench-{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "AZURAFORGE_DATA_DIR": str(tmp / "celery"),
        "AZURAFORGE_DATABASE_URL": db_url,
        "AZURAFORGE_REDIS_URL": REDIS_URL,
        "AZURAFORGE_EVENT_CHANNEL_PREFIX": prefix,
        "AZURAFORGE_CELERY_QUEUE": prefix,
        "AZURAFORGE_HEARTBEAT_SECONDS": "1",
    }
    settings = Settings(data_dir=tmp / "celery", database_url=db_url, redis_url=REDIS_URL,
                        event_channel_prefix=prefix, celery_queue=prefix)  # fmt: skip
    store = ExperimentStore.from_settings(settings)
    log = tmp / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [str(Path(sys.executable).parent / "azuraforge"), "worker", "-n", f"b@{prefix}"],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while b" ready." not in log.read_bytes():
            if worker.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log.read_text()[-2000:])
            time.sleep(0.1)
        dispatcher = CeleryDispatcher(make_celery(settings))
        delays = []
        for _ in range(runs):
            t0 = time.perf_counter()
            exp = store.create(pipeline_id=pipeline_id, config={"seconds": 0.05})
            dispatcher.submit(exp.id)
            delays.append(wait_status(store, exp.id, {S.running, S.succeeded}, 120) - t0)
            wait_status(store, exp.id, {S.succeeded, S.failed}, 120)
        row("enqueue -> running, Celery (median)", f"{statistics.median(delays):.2f} s",
            note=f"max {max(delays):.2f} s over {runs}; PostgreSQL store; includes the "
            "run's process start")  # fmt: skip
    finally:
        import signal

        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
        store.close()
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
        client.close()


# -- 2. event latency ---------------------------------------------------------------------
def _latencies(
    publish: Callable[[int], None], receive: Callable[[], EventRecord | None], n: int
) -> list[float]:
    sent: dict[int, float] = {}
    got: list[float] = []

    def consumer() -> None:
        while len(got) < n:
            event = receive()
            if event is None:
                return
            got.append(time.perf_counter() - sent[event.seq])

    thread = threading.Thread(target=consumer)
    thread.start()
    for seq in range(1, n + 1):
        sent[seq] = time.perf_counter()
        publish(seq)
        time.sleep(0.0005)  # a live stream, not a burst
    thread.join(60)
    return got


def bench_events(tmp: Path, n: int, with_redis: bool) -> None:
    buses: list[tuple[str, Any]] = [("in-process", InProcessEventBus())]
    if with_redis:
        buses.append(("Redis", RedisEventBus(REDIS_URL, prefix=f"azfbench-{uuid.uuid4().hex}")))
    for label, bus in buses:
        _bench_bus(tmp, label, bus, n)
        bus.close()


def _bench_bus(tmp: Path, label: str, bus: Any, n: int) -> None:
    from datetime import UTC, datetime

    def record(seq: int) -> EventRecord:
        return EventRecord("bench", seq, "metrics", {"values": {"loss": 0.5}}, datetime.now(UTC))

    sub = bus.subscribe("bench")
    lat = _latencies(lambda s: bus.publish(record(s)), lambda: sub.get(10), n)
    sub.close()
    row(f"event latency, {label} bus, p50 / p95",
        f"{pct(lat, 50) * 1e3:.3f} / {pct(lat, 95) * 1e3:.3f} ms", note=f"{len(lat)} events")  # fmt: skip
    # The path a live view sees: persisted (SQLite, seq assigned), then published.
    store = ExperimentStore(f"sqlite:///{tmp / f'events-{label}.db'}", tmp / "art")
    exp = store.create(pipeline_id="bench", config={})
    events = EventService(store, bus)
    with events.stream(exp.id, poll_interval=3600) as stream:
        lat = _latencies(
            lambda _s: events.emit(exp.id, "metrics", {"values": {"loss": 0.5}}),
            lambda: stream.get(10),
            n // 2,
        )
    row(f"event latency, emit (store+{label}) -> stream, p50 / p95",
        f"{pct(lat, 50) * 1e3:.3f} / {pct(lat, 95) * 1e3:.3f} ms",
        note="one event per transaction; the runner batches them")  # fmt: skip
    store.close()


# -- 3. metric write rate -----------------------------------------------------------------
def bench_metric_writes(label: str, store: ExperimentStore, points: int) -> None:
    exp = store.create(pipeline_id="bench", config={})
    batch = 1000
    t0 = time.perf_counter()
    for start in range(0, points, batch):
        store.append_metrics(
            exp.id, [MetricValue("loss", s, 1.0 / (s + 1)) for s in range(start, start + batch)]
        )
    seconds = time.perf_counter() - t0
    row(f"metric writes, {label}", f"{points / seconds:,.0f} pts/s",
        note=f"{points:,} points in batches of {batch}")  # fmt: skip


# -- 4. overhead on a real training -------------------------------------------------------
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return (data.data / 16.0).astype(np.float32), data.target.astype(np.int64)


IN_PLATFORM = [0.0]  # seconds the training thread spent inside platform calls


def train(epochs: int, context: RunContext | None) -> float:
    """The same training either way: a Learner MLP on the digits. With a context it reports
    what a pipeline would: progress every step, metrics and a log line every epoch."""
    from azuraforge_learner import (
        SGD,
        Callback,
        CrossEntropyLoss,
        Learner,
        Linear,
        ReLU,
        Sequential,
    )

    X, y = _digits()
    model = Sequential(Linear(64, 256), ReLU(), Linear(256, 256), ReLU(), Linear(256, 10))
    callbacks: list[Callback] = []
    if context is not None:

        class Report(Callback):
            def on_batch_end(self, logs: dict[str, Any]) -> None:
                t0 = time.perf_counter()
                ctx.progress(epoch=logs["epoch"], total_epochs=epochs, step=logs["step"],
                             total_steps=logs["steps"])  # fmt: skip
                if ctx.should_stop():
                    learner.stop_training = True
                IN_PLATFORM[0] += time.perf_counter() - t0

            def on_epoch_end(self, logs: dict[str, Any]) -> None:
                t0 = time.perf_counter()
                ctx.log_metrics({"loss": logs["loss"]}, epoch=logs["epoch"])
                ctx.log(f"epoch {logs['epoch']} loss {logs['loss']:.4f}")
                IN_PLATFORM[0] += time.perf_counter() - t0

        ctx = context
        callbacks.append(Report())
    learner = Learner(model, CrossEntropyLoss(), SGD(model.named_parameters(), lr=0.05,
                      momentum=0.9), callbacks=callbacks, seed=0)  # fmt: skip
    history = learner.fit(X, y, epochs=epochs, batch_size=32)
    return float(history["loss"][-1])


class Digits(Pipeline):
    id = "bench_digits"
    name = "Digits MLP (bench)"

    class Config(PipelineConfig):
        epochs: int = 6

    def run(self, config: Config, context: RunContext) -> dict[str, float]:
        return {"loss": train(config.epochs, context)}


def bench_overhead(tmp: Path, epochs: int, rounds: int) -> None:
    registry = PipelineRegistry()
    registry.register(Digits)
    store = ExperimentStore(f"sqlite:///{tmp / 'overhead.db'}", tmp / "overhead-art")
    events = EventService(store, InProcessEventBus())
    train(1, None)  # warm-up: imports, data, BLAS
    direct, platform, direct_cpu, platform_cpu = [], [], [], []
    for _ in range(rounds):  # interleaved, so drifting machine load hits both alike
        t0, c0 = time.perf_counter(), time.process_time()
        train(epochs, None)
        direct.append(time.perf_counter() - t0)
        direct_cpu.append(time.process_time() - c0)
        exp = store.create(pipeline_id="bench_digits", config={"epochs": epochs})
        t0, c0 = time.perf_counter(), time.process_time()
        final = run_experiment(exp.id, events, registry=registry, heartbeat_seconds=5.0)
        platform.append(time.perf_counter() - t0)
        platform_cpu.append(time.process_time() - c0)
        assert final.status is S.succeeded, final.error
    steps = len(store.events_after(exp.id, limit=100_000))
    d, p = statistics.median(direct), statistics.median(platform)
    overhead = (p - d) / d * 100
    IN_PLATFORM[0] = 0.0
    exp = store.create(pipeline_id="bench_digits", config={"epochs": epochs})
    t0 = time.perf_counter()
    run_experiment(exp.id, events, registry=registry, heartbeat_seconds=5.0)
    inside = IN_PLATFORM[0] / (time.perf_counter() - t0) * 100
    dc, pc = statistics.median(direct_cpu), statistics.median(platform_cpu)
    cpu_overhead = (pc - dc) / dc * 100
    row("training, learner called directly (median wall)", f"{d:.3f} s", note=f"{epochs} epochs")
    row("training through run_experiment (median wall)", f"{p:.3f} s",
        note=f"{steps} events stored per run; SQLite")  # fmt: skip
    row("platform overhead, wall time", f"{overhead:+.1f} %", "< 5 %",
        ("PASS" if overhead < 5 else "FAIL") + " (noisy on a shared machine)")  # fmt: skip
    row("platform overhead, CPU time of the process", f"{cpu_overhead:+.1f} %", "< 5 %",
        "PASS" if cpu_overhead < 5 else "FAIL")  # fmt: skip
    row("training thread's time inside platform calls", f"{inside:.2f} %", "< 5 %",
        ("PASS" if inside < 5 else "FAIL") + " (progress every step, flushes included)")  # fmt: skip
    # the fixed part: a one-epoch run through the platform minus the same epoch alone
    fixed = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        train(1, None)
        alone = time.perf_counter() - t0
        exp = store.create(pipeline_id="bench_digits", config={"epochs": 1})
        t0 = time.perf_counter()
        run_experiment(exp.id, events, registry=registry, heartbeat_seconds=5.0)
        fixed.append(time.perf_counter() - t0 - alone)
    row("fixed cost per run (claim, status, flushes, finish)",
        f"{statistics.median(fixed) * 1e3:.0f} ms", note="median")  # fmt: skip
    store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument(
        "--only", choices=["enqueue", "events", "metrics", "overhead"], help="one section"
    )
    args = parser.parse_args()

    def want(section: str) -> bool:
        return args.only in (None, section)

    runs, n_events, points = (3, 400, 20_000) if args.quick else (5, 2000, 100_000)
    with_redis = redis_ok()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp_name, postgres_db() as pg_url:
        tmp = Path(tmp_name)
        if want("enqueue"):
            print("enqueue -> running")
            with nap_plugin(tmp / "plugin") as nap:
                bench_enqueue_embedded(tmp, nap, runs)
                if with_redis and pg_url:
                    bench_enqueue_celery(tmp, nap, runs, pg_url)
                else:
                    row("enqueue -> running, Celery", "SKIP", note="needs Redis and PostgreSQL")
        if want("events"):
            print("event latency")
            bench_events(tmp, n_events, with_redis)
            if not with_redis:
                row("event latency, Redis", "SKIP", note=f"no Redis at {REDIS_URL}")
        if want("metrics"):
            print("metric write rate")
            sqlite = ExperimentStore(f"sqlite:///{tmp / 'metrics.db'}", tmp / "art")
            bench_metric_writes("SQLite (WAL)", sqlite, points)
            sqlite.close()
            if pg_url:
                pg = ExperimentStore(pg_url, tmp / "art")
                bench_metric_writes("PostgreSQL", pg, points)
                pg.close()
            else:
                row("metric writes, PostgreSQL", "SKIP", note=f"no server at {POSTGRES_URL}")
        if want("overhead"):
            from threadpoolctl import threadpool_limits

            print("overhead versus the learner alone (BLAS on 1 thread: spinning BLAS threads")
            print("on a busy machine make CPU and wall time swing by tens of percent)")
            with threadpool_limits(1):
                bench_overhead(tmp, epochs=15 if args.quick else 40, rounds=3 if args.quick else 5)


if __name__ == "__main__":
    main()
