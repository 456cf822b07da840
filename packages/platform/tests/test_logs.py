"""The logging configuration every process applies: text for people, JSON for collectors."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from azuraforge_platform.settings import Settings
from azuraforge_platform.telemetry.logs import (
    ContextFilter,
    bound,
    logging_config,
    request_id_from,
)


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord(
        "azuraforge_platform.x", logging.WARNING, __file__, 1, message, (), None
    )
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def _formatter(settings: Settings) -> logging.Formatter:
    formatter: logging.Formatter = logging_config(settings)["formatters"]["main"]["()"]()
    return formatter


def test_text_lines_end_with_the_ids_they_carry(tmp_path: Path) -> None:
    text = _formatter(Settings(data_dir=tmp_path))
    plain = text.format(_record("nothing to tie"))
    assert plain.endswith("WARNING azuraforge_platform.x: nothing to tie")
    tied = text.format(_record("run step", request_id="r1", experiment_id="e1"))
    assert tied.endswith(": run step [request=r1 experiment=e1]")
    try:
        raise ValueError("boom")
    except ValueError:
        failing = _record("it failed", experiment_id="e2")
        failing.exc_info = sys.exc_info()
    first, *rest = text.format(failing).splitlines()
    assert first.endswith("it failed [experiment=e2]") and "ValueError: boom" in rest[-1]


def test_json_lines_carry_the_ids_from_context(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, log_format="json")
    formatter, context = _formatter(settings), ContextFilter()
    with bound(request_id="req-1"), bound(experiment_id="exp-1"):
        inside = _record("inside %s", answer=42)
        context.filter(inside)
    outside = _record("outside")
    context.filter(outside)
    line = json.loads(formatter.format(inside))
    assert line["request_id"] == "req-1" and line["experiment_id"] == "exp-1"
    assert line["level"] == "WARNING" and line["logger"] == "azuraforge_platform.x"
    assert line["answer"] == 42 and line["time"].endswith("+00:00")
    assert "request_id" not in json.loads(formatter.format(outside))
    # an explicit extra wins over the context
    with bound(experiment_id="exp-1"):
        explicit = _record("explicit", experiment_id="exp-2")
        context.filter(explicit)
    assert json.loads(formatter.format(explicit))["experiment_id"] == "exp-2"


def test_one_handler_on_the_root_and_uvicorn_hands_its_lines_to_it(tmp_path: Path) -> None:
    config = logging_config(Settings(data_dir=tmp_path, log_level="info"))
    assert config["root"] == {"level": "INFO", "handlers": ["stderr"]}
    assert config["handlers"]["stderr"]["filters"] == ["context"]
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert config["loggers"][name] == {"handlers": [], "propagate": True}
    # Celery hands its --loglevel over as a number
    assert (
        logging_config(Settings(data_dir=tmp_path), level=logging.DEBUG)["root"]["level"] == "DEBUG"
    )


def test_request_ids_from_clients_are_kept_only_when_sane() -> None:
    assert request_id_from("abc-123_x.y:z") == "abc-123_x.y:z"
    for bad in (None, "", "has space", "new\nline", "x" * 129, "-leading-dash", "ünicode"):
        generated = request_id_from(bad)
        assert generated != bad and len(generated) == 32
