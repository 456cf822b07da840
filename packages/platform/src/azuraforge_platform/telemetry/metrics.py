"""The platform's Prometheus metrics that live in a process: its HTTP requests, WebSockets,
worker slots and the runs it supervised. (What lives in the database, experiments by status,
the queue, heart-beating workers, is read at scrape time by the API's collector:
`api/platform_metrics.py`.) docs/observability.md lists every metric.

Where each is observed: a run's duration by the process that supervised the run's child
process (the API process in embedded mode, the Celery worker in distributed mode), when that
child ends; HTTP and WebSocket metrics by the API process that served them.

One process per scrape target is the rule: `azuraforge up`, each `azuraforge worker` (its own
`/metrics` on `worker_metrics_port`) and `azuraforge api` with one process. `azuraforge api
--processes N` switches prometheus_client to its multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`,
values kept in files), so whichever process answers a scrape adds up all of them.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import Iterable, Iterator
from datetime import datetime
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from azuraforge_platform import __version__
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentRecord, ExperimentStatus

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HTTP_REQUESTS",
    "HTTP_REQUEST_SECONDS",
    "REGISTRY",
    "RUNS_SUPERVISED",
    "RUN_SECONDS",
    "WEBSOCKETS",
    "WORKER_SLOTS",
    "MetricsServer",
    "exposition",
    "observe_run_end",
    "run_outcome",
    "token_ok",
]

log = logging.getLogger(__name__)

# This process's metrics (prometheus_client's default registry is left to others).
REGISTRY = CollectorRegistry(auto_describe=True)
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

HTTP_REQUESTS = Counter(
    "azuraforge_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_SECONDS = Histogram(
    "azuraforge_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
WEBSOCKETS = Gauge(
    "azuraforge_websocket_connections",
    "WebSockets open now (signed in), by stream: one experiment's events, or the status stream.",
    ["stream"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
RUN_SECONDS = Histogram(
    "azuraforge_run_duration_seconds",
    "Duration of a run attempt, from its claim to its outcome, by pipeline and outcome "
    "(succeeded, failed, cancelled, or lost: its process ended without recording one).",
    ["pipeline", "outcome"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400, 28800, 86400),
    registry=REGISTRY,
)
WORKER_SLOTS = Gauge(
    "azuraforge_worker_slots",
    "Runs this process can run at once, by kind (runs; coordinators: hyperparameter studies).",
    ["kind"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
RUNS_SUPERVISED = Gauge(
    "azuraforge_runs_supervised",
    "Runs this process supervises now (each in a child process), by kind.",
    ["kind"],
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
for _stream in ("events", "status"):
    WEBSOCKETS.labels(_stream)
for _kind in ("runs", "coordinators"):
    WORKER_SLOTS.labels(_kind)
    RUNS_SUPERVISED.labels(_kind)

_TERMINAL = frozenset(
    {ExperimentStatus.succeeded, ExperimentStatus.failed, ExperimentStatus.cancelled}
)


def run_outcome(
    record: ExperimentRecord, *, worker: str, recovered: bool, elapsed: float
) -> tuple[str, float] | None:
    """(outcome, seconds) of the attempt `worker` made at `record` (read after the attempt's
    process ended), or None when that process ran nothing of it (another worker had claimed
    it). `recovered`: its supervisor had to record the end (the process died without an
    outcome: lost, or cancelled when a cancel was in flight); `elapsed` is then the
    supervisor's own measure, the store's claim and finish times otherwise."""
    if recovered:
        outcome = "cancelled" if record.status is ExperimentStatus.cancelled else "lost"
        return outcome, elapsed
    if record.worker != worker or record.status not in _TERMINAL:
        return None
    if record.started_at is None or record.finished_at is None:
        return None
    return record.status.value, _seconds(record.started_at, record.finished_at)


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def observe_run_end(
    record: ExperimentRecord, *, worker: str, recovered: bool, elapsed: float
) -> None:
    """Records a supervised attempt's duration (see `run_outcome`); never raises."""
    try:
        found = run_outcome(record, worker=worker, recovered=recovered, elapsed=elapsed)
        if found is not None:
            outcome, seconds = found
            RUN_SECONDS.labels(record.pipeline_id, outcome).observe(seconds)
    except Exception:  # a metric must never disturb the supervision of runs
        log.exception("recording the duration of %s failed", record.id)


def exposition(settings: Settings, collectors: Iterable[Collector] = ()) -> bytes:
    """The text a scrape gets: this process's metrics (or, in multiprocess mode, every
    process's), then what `collectors` read now."""
    if settings.prometheus_multiproc_dir is not None:
        gathered = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(gathered, path=str(settings.prometheus_multiproc_dir))
        text = generate_latest(gathered)
    else:
        text = generate_latest(REGISTRY)
    extra = CollectorRegistry(auto_describe=False)  # registering reads nothing yet
    for collector in (_BuildInfo(), *collectors):
        extra.register(collector)
    return text + generate_latest(extra)


class _BuildInfo(Collector):
    def collect(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "azuraforge_build_info", "The platform's version (always 1).", labels=["version"]
        )
        info.add_metric([__version__], 1)
        yield info


def token_ok(settings: Settings, authorization: str | None) -> bool:
    """Whether an Authorization header carries the configured metrics token."""
    token = settings.metrics_token
    if token is None or not authorization:
        return False
    scheme, _, secret = authorization.partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(secret.strip().encode(), expected)


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # scrapes are not news
        pass


class MetricsServer:
    """A worker's `/metrics`: a small HTTP server in a thread, for Prometheus only (the
    metrics token, nothing else, opens it)."""

    def __init__(self, settings: Settings) -> None:
        if settings.metrics_token is None:
            raise ValueError(
                "a worker's /metrics needs a credential: set AZURAFORGE_METRICS_TOKEN "
                "(the bearer token Prometheus sends) or unset AZURAFORGE_WORKER_METRICS_PORT"
            )
        if settings.worker_metrics_port is None:
            raise ValueError("set AZURAFORGE_WORKER_METRICS_PORT to serve a worker's /metrics")
        self.settings = settings
        self._httpd = make_server(
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            self._app,
            server_class=_ThreadingWSGIServer,
            handler_class=_QuietHandler,
        )
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="azf-metrics", daemon=True
        )

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _app(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: the metrics are at /metrics\n"]
        if not token_ok(self.settings, environ.get("HTTP_AUTHORIZATION")):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")],
            )
            return [b"send the metrics token: Authorization: Bearer <token>\n"]
        try:
            body = exposition(self.settings)
        except Exception:
            log.exception("collecting the metrics failed")
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"collecting the metrics failed; see the worker's log\n"]
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [body]
