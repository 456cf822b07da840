"""What every command shares: settings, the store, the console, and turning the errors a
user can act on into a clear message and an exit code (never a traceback)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from azuraforge_pipeline import ConfigError, UnknownPipelineError
from azuraforge_platform.experiments import AmbiguousExperimentError, find_experiment
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import (
    ExperimentNotFoundError,
    ExperimentRecord,
    ExperimentStatus,
    ExperimentStore,
    InvalidTransitionError,
    StoreError,
)

__all__ = [
    "EXIT_CANCELLED",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "STATUS_STYLE",
    "console",
    "fail",
    "format_time",
    "is_loopback",
    "load_settings",
    "open_store",
    "resolve_experiment",
    "user_errors",
]

EXIT_FAILED = 1  # the command (or the run it started) failed
EXIT_USAGE = 2  # bad input: unknown pipeline, invalid config, unknown experiment
EXIT_CANCELLED = 130  # like a shell after Ctrl-C

STATUS_STYLE = {
    ExperimentStatus.queued: "cyan",
    ExperimentStatus.running: "blue",
    ExperimentStatus.succeeded: "green",
    ExperimentStatus.failed: "red",
    ExperimentStatus.cancelled: "yellow",
    ExperimentStatus.cancelling: "yellow",
    ExperimentStatus.lost: "magenta",
}


def console(stderr: bool = False) -> Console:
    # Made per call: rich then writes to whatever sys.stdout is now (CliRunner swaps it).
    return Console(stderr=stderr, highlight=False)


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    console(stderr=True).print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Known, actionable errors become one message and an exit code."""
    try:
        yield
    except ConfigError as exc:
        err = console(stderr=True)
        err.print(f"[bold red]error:[/] invalid config for pipeline {exc.pipeline_id!r}")
        for path, message in exc.errors:
            err.print(f"  [bold]{escape(path or '<root>')}[/]: {escape(message)}")
        raise typer.Exit(EXIT_USAGE) from None
    except (UnknownPipelineError, ExperimentNotFoundError, AmbiguousExperimentError) as exc:
        fail(str(exc), EXIT_USAGE)
    except InvalidTransitionError as exc:
        fail(str(exc), EXIT_FAILED)
    except StoreError as exc:
        fail(str(exc), EXIT_FAILED)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"AZURAFORGE_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            for e in exc.errors()
        )
        fail(f"invalid settings in the environment: {problems}", EXIT_USAGE)


def open_store(settings: Settings) -> ExperimentStore:
    """The configured store, migrated; a database that cannot be reached is a clear error."""
    try:
        return ExperimentStore.from_settings(settings)
    except Exception as exc:  # driver errors differ per backend; all mean the same here
        fail(
            f"cannot open the experiment store at {settings.resolved_database_url} "
            f"({type(exc).__name__}: {exc}); check AZURAFORGE_DATABASE_URL"
        )


def resolve_experiment(store: ExperimentStore, ref: str) -> ExperimentRecord:
    """An experiment by id or by a unique id prefix (lists show shortened ids)."""
    try:
        return find_experiment(store, ref)
    except AmbiguousExperimentError as exc:
        fail(str(exc), EXIT_USAGE)


def is_loopback(host: str) -> bool:
    """127.x.x.x, ::1 or localhost (a wildcard or a real address is not)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def format_time(value: datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
