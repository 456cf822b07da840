"""`azuraforge run PIPELINE [--set key=value ...] [--config FILE]`: one experiment in the
foreground, with a live progress bar, recorded in the store like any other."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import threading
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from azuraforge_pipeline import ConfigError, PathPolicy, Pipeline, PipelineRegistry, discover
from azuraforge_platform.cli.common import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_USAGE,
    STATUS_STYLE,
    console,
    fail,
    load_settings,
    open_store,
    user_errors,
)
from azuraforge_platform.events import EventService, InProcessEventBus, make_bus
from azuraforge_platform.execution import LocalExecutor, run_experiment
from azuraforge_platform.lifecycle import Dispatcher, Lifecycle, QueueUnavailableError
from azuraforge_platform.paths import run_path_policy
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import (
    EventRecord,
    ExperimentRecord,
    ExperimentStatus,
    ExperimentStore,
    InvalidTransitionError,
)

__all__ = ["build_config", "parse_set", "register"]

S = ExperimentStatus
FINAL = {S.succeeded, S.failed, S.cancelled}
# The machine's own user may name any file of theirs (unlike an API client). Relative names
# are taken from the working directory and stored absolute, so a queued run finds them too.
LOCAL_PATHS = PathPolicy(resolve=True)


# -- config from a file and --set ---------------------------------------------------------
def parse_set(item: str) -> tuple[list[str], Any, str]:
    """`a.b=3` -> (["a", "b"], 3, "3"). Values are JSON when they parse (numbers, booleans,
    lists, null), else the text itself."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        fail(f"--set expects key=value (e.g. --set epochs=5), got {item!r}", EXIT_USAGE)
    path = key.split(".")
    if any(not part for part in path):
        fail(f"--set {item!r}: empty part in the key {key!r}", EXIT_USAGE)
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return path, value, raw


def _read_config_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        fail(f"config file {str(path)!r} does not exist", EXIT_USAGE)
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(path.read_text("utf-8"))
        else:
            data = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"cannot read config file {str(path)!r}: {exc}", EXIT_USAGE)
    if not isinstance(data, dict):
        fail(f"config file {str(path)!r} must hold an object of settings", EXIT_USAGE)
    return data


def _assign(config: dict[str, Any], path: list[str], value: Any) -> None:
    node = config
    for i, part in enumerate(path[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            where = ".".join(path[: i + 1])
            fail(f"--set {'.'.join(path)}: {where} is a value, not a section", EXIT_USAGE)
        node = child
    node[path[-1]] = value


def build_config(
    pipeline: type[Pipeline], config_file: Path | None, sets: list[str]
) -> dict[str, Any]:
    """The validated config (all fields, JSON values): file, then --set on top.

    A --set value that parsed as JSON but the field wants text (`--set name=123`) is retried
    as the text the user typed, so quoting is never needed. Data paths come back absolute.
    """
    config = _read_config_file(config_file) if config_file is not None else {}
    raw_by_path: dict[str, str] = {}
    for item in sets:
        path, value, raw = parse_set(item)
        _assign(config, path, value)
        raw_by_path[".".join(path)] = raw
    try:
        validated = pipeline.validate_config(config, path_policy=LOCAL_PATHS)
    except ConfigError as exc:
        retry = [p for p, msg in exc.errors if p in raw_by_path and "valid string" in msg]
        if not retry:
            raise
        for dotted in retry:
            _assign(config, dotted.split("."), raw_by_path[dotted])
        validated = pipeline.validate_config(config, path_policy=LOCAL_PATHS)
    return validated.model_dump(mode="json")


# -- the live view ------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}" if math.isfinite(value) else str(value)
    return str(value)


class _LiveView:
    """Turns the experiment's events into progress bars, a metrics line and log lines."""

    def __init__(self, progress: Progress, title: str) -> None:
        self.progress = progress
        self.title = title
        self.epochs: TaskID | None = None
        self.steps: TaskID | None = None
        self.latest: dict[str, float] = {}

    def _metrics_text(self) -> str:
        # the losses first, then the rest: three fit beside the bars
        names = sorted(self.latest, key=lambda n: (not n.endswith("loss"), n))[:3]
        return "  ".join(f"{n}={_fmt(self.latest[n])}" for n in names)

    def _refresh_fields(self) -> None:
        top = self.epochs if self.epochs is not None else self.steps
        if top is not None:
            self.progress.update(top, metrics=self._metrics_text())

    def handle(self, event: EventRecord) -> None:
        payload = event.payload
        if event.type == "progress":
            self._progress(payload)
        elif event.type == "metrics":
            values = payload.get("values") or {}
            self.latest.update({k: v for k, v in values.items() if v is not None})
            self._refresh_fields()
        elif event.type == "log":
            level = str(payload.get("level", "info"))
            style = {"warning": "yellow", "error": "red"}.get(level, "dim")
            self.progress.console.print(f"[{style}]{escape(str(payload.get('message', '')))}[/]")
        elif event.type == "status":
            status = str(payload.get("status"))
            if status in (S.cancelling.value, S.lost.value, S.queued.value):
                self.progress.console.print(f"[yellow]status: {status}[/]")

    def _progress(self, payload: Mapping[str, Any]) -> None:
        epoch, total_epochs = payload.get("epoch"), payload.get("total_epochs")
        step, total_steps = payload.get("step"), payload.get("total_steps")
        if total_epochs:
            if self.epochs is None:
                self.epochs = self.progress.add_task(
                    f"{self.title} epochs", total=total_epochs, metrics=""
                )
            self.progress.update(self.epochs, completed=epoch or 0, total=total_epochs)
        if step is not None and total_steps:
            label = "steps" if self.epochs is None else "  steps"
            if self.steps is None:
                self.steps = self.progress.add_task(label, total=total_steps, metrics="")
            self.progress.update(self.steps, completed=step, total=total_steps)
        self._refresh_fields()


# -- the command --------------------------------------------------------------------------
def _resolve_pipeline(registry: PipelineRegistry, pipeline_id: str) -> type[Pipeline]:
    broken = {e.name: e for e in registry.errors}
    if pipeline_id in broken and pipeline_id not in registry:
        fail(
            f"pipeline {pipeline_id!r} is installed but failed to load: {broken[pipeline_id].error}"
        )
    return registry.get(pipeline_id)  # UnknownPipelineError lists the known ids


def _final_report(store: ExperimentStore, final: ExperimentRecord, seconds: float) -> None:
    out = console()
    style = STATUS_STYLE[final.status]
    out.print(
        f"[bold {style}]{final.status.value}[/] in {seconds:.1f} s  "
        f"experiment [bold]{final.id}[/] ({escape(final.name)})"
    )
    table = Table(title="metrics", title_justify="left")
    for column in ("metric", "last", "min", "max", "points"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    by_name: dict[str, list[float | None]] = {}
    for point in store.metrics(final.id):
        by_name.setdefault(point.name, []).append(point.value)
    for name, values in by_name.items():
        finite = [v for v in values if v is not None]
        last = values[-1]
        table.add_row(
            name,
            _fmt(last) if last is not None else "nan/inf",
            _fmt(min(finite)) if finite else "-",
            _fmt(max(finite)) if finite else "-",
            str(len(values)),
        )
    if by_name:
        out.print(table)
    scalars = {
        k: v
        for k, v in (final.summary or {}).items()
        if isinstance(v, int | float | str | bool) and k not in by_name
    }
    if scalars:
        summary = Table(title="summary", title_justify="left")
        summary.add_column("key")
        summary.add_column("value", justify="right")
        for key, value in scalars.items():
            summary.add_row(key, _fmt(value))
        out.print(summary)
    artifacts = store.artifacts(final.id)
    if artifacts:
        out.print(f"{len(artifacts)} artifact(s) in {store.artifact_location(final.id)}")
    if final.status is S.failed:
        out.print(f"[red]{escape(final.error or 'failed')}[/]")
        if final.traceback:
            out.print(f"the traceback is stored: azuraforge experiments show {final.id}")


def run_command(
    pipeline_id: Annotated[str, typer.Argument(help="Id of an installed pipeline.")],
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="key=value (JSON values; dotted keys for nested fields). Repeatable.",
        ),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="JSON or TOML file of settings.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Name of the experiment.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Tag (repeatable).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No log lines.")] = False,
    queue: Annotated[
        bool,
        typer.Option(
            "--queue",
            help="Queue it for the workers (`azuraforge worker` with Redis, or a running "
            "`azuraforge up`) instead of running it here; still shows its progress.",
        ),
    ] = False,
    detach: Annotated[
        bool, typer.Option("--detach", help="With --queue: print the id and return.")
    ] = False,
) -> None:
    """Run a pipeline here, in the foreground, with a live progress bar. Ctrl-C cancels."""
    if detach and not queue:
        fail("--detach goes with --queue", EXIT_USAGE)
    settings = load_settings()
    with user_errors():
        registry = discover()
        pipeline = _resolve_pipeline(registry, pipeline_id)
        config = build_config(pipeline, config_file, set_ or [])
        store = open_store(settings)
    bus = make_bus(settings.redis_url, prefix=settings.event_channel_prefix) if queue else None
    events = EventService(store, bus or InProcessEventBus())
    lifecycle = Lifecycle(events, _dispatcher(settings) if queue else None)
    try:
        record = lifecycle.submit(
            pipeline_id=pipeline.id,
            pipeline_version=pipeline.version,
            config=config,
            name=name,
            tags=tag or [],
            # a queued run is retried when its worker dies; nobody else picks up a foreground one
            max_attempts=settings.max_attempts if queue else 1,
            owner=None,
            coordinator=pipeline.coordinator,
        )
    except QueueUnavailableError as exc:  # the broker is down: the run is failed, not orphaned
        fail(f"cannot queue the experiment on Redis at {settings.redis_url}: {exc}")
    out = console()
    if queue and detach:
        out.print(record.id)
        return
    children: LocalExecutor | None = None
    if pipeline.coordinator and not queue:
        # its child runs need workers: this process runs them while it coordinates
        children = LocalExecutor(
            settings, store, events.bus, max_workers=settings.embedded_workers, runs="plain"
        )
    worker = f"{socket.gethostname()}:{os.getpid()}:cli"
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["record"] = run_experiment(
                record.id,
                events,
                registry=registry,
                worker=worker,
                heartbeat_seconds=min(settings.heartbeat_seconds, 1.0),
                path_policy=run_path_policy(settings),
                settings=settings,
            )
        except BaseException as exc:  # reported below; the thread must not die silently
            outcome["error"] = exc

    where = "queued" if queue else "running here"
    out.print(f"experiment [bold]{record.id}[/] · {pipeline.name} {pipeline.version} · {where}")
    started = time.monotonic()
    thread = threading.Thread(target=target, name="azf-run", daemon=True)
    cancel_deadline: float | None = None
    forced = False
    with (
        events.stream(record.id, poll_interval=1.0) as stream,
        Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[metrics]}"),
            console=out,
            transient=False,
        ) as progress,
    ):
        view = _LiveView(progress, pipeline.id)
        if quiet:
            view.handle = _quiet(view.handle)  # type: ignore[method-assign]
        if not queue:
            thread.start()
        if children is not None:
            children.start()
        while True:
            try:
                event = stream.get(timeout=0.2)
                if event is not None:
                    view.handle(event)
                    continue
                # Done when the run thread ended and the outcome is stored. (If an embedded
                # executor sharing this store claimed the experiment first, the thread ends
                # at once and this simply follows that run to its end.)
                if not thread.is_alive() and (
                    "error" in outcome or store.get(record.id).status in FINAL
                ):
                    break
                if cancel_deadline is not None and time.monotonic() >= cancel_deadline:
                    forced = True
                    break
            except KeyboardInterrupt:
                if cancel_deadline is not None:
                    forced = True  # a second Ctrl-C: stop now
                    break
                if queue:  # the worker enforces the grace period; no deadline here
                    cancel_deadline = float("inf")
                else:
                    cancel_deadline = time.monotonic() + settings.cancel_grace_seconds
                progress.console.print(
                    "[yellow]cancelling: the run stops at its next step "
                    f"(Ctrl-C again to stop at once; forced after "
                    f"{settings.cancel_grace_seconds:g} s)[/]"
                )
                _request_cancel(lifecycle, record.id)
    if children is not None:
        children.stop()
    events.bus.close()
    if forced:
        if queue:  # the worker stops it; this terminal just stops watching
            console(stderr=True).print(f"[yellow]left[/] experiment {record.id} cancelling")
        else:
            # the pipeline ignored the cancel: record the outcome; the process exit ends it
            lifecycle.force_cancel(
                record.id, worker, "stopped without waiting for the pipeline to finish its step"
            )
            console(stderr=True).print(f"[yellow]cancelled[/] experiment {record.id}")
        raise typer.Exit(EXIT_CANCELLED)
    if "error" in outcome:
        fail(f"the runner itself failed: {outcome['error']!r}")
    final = store.get(record.id)
    _final_report(store, final, time.monotonic() - started)
    store.close()
    if final.status is S.succeeded:
        return
    raise typer.Exit(EXIT_CANCELLED if final.status is S.cancelled else EXIT_FAILED)


def _dispatcher(settings: Settings) -> Dispatcher | None:
    """Celery when Redis is configured; otherwise an embedded executor (`azuraforge up`)
    sharing this store finds the queued experiment by itself."""
    if not settings.redis_url:
        console().print(
            "[yellow]no AZURAFORGE_REDIS_URL: queued for an `azuraforge up` using this store[/]"
        )
        return None
    from azuraforge_platform.jobqueue import CeleryDispatcher, make_celery

    return CeleryDispatcher(make_celery(settings))


def _quiet(handle: Any) -> Any:
    def wrapped(event: EventRecord) -> None:
        if event.type != "log":
            handle(event)

    return wrapped


def _request_cancel(lifecycle: Lifecycle, experiment_id: str) -> None:
    with contextlib.suppress(InvalidTransitionError):  # it finished meanwhile
        lifecycle.cancel(experiment_id)


def register(app: typer.Typer) -> None:
    app.command("run")(run_command)
