"""Structured logs: one configuration for every process of the platform (API, Celery worker,
each run's child process), text for people or JSON for a log collector, and the ids that tie
a line to its cause: the HTTP request (`request_id`) and the experiment being run
(`experiment_id`).

The ids travel in context variables, so a line logged anywhere below a request handler or a
run carries them without being passed around. A run's child process runs that one experiment
only, so there the id is also the process's default and lines from threads a plugin starts
carry it too.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from azuraforge_platform.settings import Settings

__all__ = [
    "ContextFilter",
    "JsonLineFormatter",
    "TextFormatter",
    "bind_process_experiment",
    "bound",
    "configure_logging",
    "current_request_id",
    "logging_config",
    "request_id_from",
]

_request_id: ContextVar[str | None] = ContextVar("azuraforge_request_id", default=None)
_experiment_id: ContextVar[str | None] = ContextVar("azuraforge_experiment_id", default=None)
_process_experiment: str | None = None

# What an incoming X-Request-ID may look like to be kept (a proxy's or a client's id): short,
# and nothing that could forge a log line or a header.
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def request_id_from(header: str | None) -> str:
    """The client's X-Request-ID when it is sane, else a new one."""
    if header is not None and _SANE_REQUEST_ID.match(header):
        return header
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def bound(*, request_id: str | None = None, experiment_id: str | None = None) -> Iterator[None]:
    """Lines logged inside carry these ids (those not given keep their current value)."""
    tokens = []
    if request_id is not None:
        tokens.append((_request_id, _request_id.set(request_id)))
    if experiment_id is not None:
        tokens.append((_experiment_id, _experiment_id.set(experiment_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind_process_experiment(experiment_id: str | None) -> None:
    """This process runs only `experiment_id`: every line of it, from any thread, names it."""
    global _process_experiment
    _process_experiment = experiment_id


class ContextFilter(logging.Filter):
    """Puts `request_id` and `experiment_id` on every record (an explicit `extra` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get()
        if getattr(record, "experiment_id", None) is None:
            record.experiment_id = _experiment_id.get() or _process_experiment
        return True


class TextFormatter(logging.Formatter):
    """`2026-12-05 06:20:00,123 WARNING azuraforge_platform.x: message [experiment=...]`"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = [
            f"{label}={value}"
            for label, value in (
                ("request", getattr(record, "request_id", None)),
                ("experiment", getattr(record, "experiment_id", None)),
            )
            if value
        ]
        if not ids:
            return line
        head, newline, rest = line.partition("\n")  # ids on the message, not the traceback
        return f"{head} [{' '.join(ids)}]{newline}{rest}"


class JsonLineFormatter(JsonFormatter):
    """One JSON object a line: `time` (UTC, ISO 8601), `level`, `logger`, `message`, the ids
    when set, `exc_info` with a traceback, and whatever a call passed as `extra`."""

    def __init__(self) -> None:
        super().__init__(
            "%(levelname)s %(name)s %(message)s",
            rename_fields={"levelname": "level", "name": "logger"},
        )

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        log_data["time"] = datetime.fromtimestamp(record.created, tz=UTC).isoformat()
        super().add_fields(log_data, record, message_dict)
        for key in ("request_id", "experiment_id"):
            if log_data.get(key) is None:
                log_data.pop(key, None)


def logging_config(settings: Settings, *, level: str | int | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` configuration: one stderr handler on the root logger with
    the settings' format; uvicorn's loggers hand their lines to it (its access log stays off:
    the API's own, `access_log`, names the route and the request id)."""
    formatter = JsonLineFormatter if settings.log_format == "json" else TextFormatter
    chosen = level if level is not None else settings.log_level
    root_level = logging.getLevelName(chosen) if isinstance(chosen, int) else chosen.upper()
    passthrough = {"handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"main": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "main",
                "filters": ["context"],
            }
        },
        "root": {"level": root_level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {**passthrough},
            "uvicorn.error": {**passthrough},
            "uvicorn.access": {**passthrough},
        },
    }


def configure_logging(settings: Settings, *, level: str | int | None = None) -> None:
    """Applies `logging_config` to this process."""
    import logging.config

    logging.config.dictConfig(logging_config(settings, level=level))
