"""`azuraforge experiments list|show|cancel|logs`: what ran, what runs, and its output."""

from __future__ import annotations

import json
from contextlib import suppress
from datetime import timedelta
from functools import partial
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from azuraforge_platform.cli.common import (
    EXIT_USAGE,
    STATUS_STYLE,
    console,
    fail,
    format_time,
    load_settings,
    open_store,
    resolve_experiment,
    user_errors,
)
from azuraforge_platform.cli.models import Server, Token, _client, _client_errors
from azuraforge_platform.events import EventService, InProcessEventBus, make_bus
from azuraforge_platform.lifecycle import Lifecycle
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import ExperimentStatus, ExperimentStore

__all__ = ["register"]

S = ExperimentStatus
FINAL = {S.succeeded.value, S.failed.value, S.cancelled.value}

experiments_app = typer.Typer(
    help="Experiments in the local store, or on a running AzuraForge with --server URL.",
    no_args_is_help=True,
)


def _reap(settings: Settings, store: ExperimentStore) -> None:
    """Whoever looks notices runs whose process vanished (a closed terminal's foreground
    run, with no worker or executor around to reap it)."""
    events = EventService(store, InProcessEventBus())  # stored; other processes poll them
    Lifecycle(events).reap_lost(timedelta(seconds=settings.lost_after_seconds))


def _status(record: Any) -> str:
    return f"[{STATUS_STYLE[record.status]}]{record.status.value}[/]"


def _duration(record: Any) -> str:
    """Run time of a store record or an API experiment (they share these field names)."""
    if record.started_at is None:
        return "-"
    end = record.finished_at or getattr(record, "heartbeat_at", None) or record.started_at
    return f"{(end - record.started_at).total_seconds():.1f} s"


@experiments_app.command("list")
def list_command(
    pipeline: Annotated[str | None, typer.Option(help="Only this pipeline.")] = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only with this tag (repeatable).")] = None,
    search: Annotated[str | None, typer.Option(help="Name contains / id starts with.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 20,
    server: Server = None,
    token: Token = None,
) -> None:
    """The newest experiments first."""
    if status is not None and status not in {s.value for s in S}:
        fail(
            f"unknown status {status!r}; choose one of {', '.join(s.value for s in S)}", EXIT_USAGE
        )
    if server:
        remote = _client_errors(
            lambda: _client(server, token).list_experiments(
                pipeline_id=pipeline, status=status, tags=tag or (), search=search, limit=limit
            )
        )
        _print_list(remote.items)
        return
    settings = load_settings()
    store = open_store(settings)
    _reap(settings, store)
    with user_errors():
        page = store.list_experiments(
            pipeline_id=pipeline, status=status, tags=tag, search=search, limit=limit
        )
    _print_list(page.items)
    store.close()


def _print_list(items: list[Any]) -> None:
    table = Table()
    for column in ("id", "name", "pipeline", "status", "created", "duration", "tags"):
        table.add_column(column, no_wrap=column in ("id", "status", "created"))
    for record in items:
        table.add_row(
            record.id[:12],
            escape(record.name),
            record.pipeline_id,
            _status(record),
            format_time(record.created_at),
            _duration(record),
            escape(", ".join(record.tags)),
        )
    out = console()
    if not items:
        out.print("no experiments match")
    else:
        out.print(table)


@experiments_app.command("show")
def show_command(
    experiment: Annotated[str, typer.Argument(help="Experiment id (or a unique prefix).")],
    server: Server = None,
    token: Token = None,
) -> None:
    """Everything about one experiment: state, config, metrics, error and traceback."""
    last: dict[str, tuple[int, float | None, int]] = {}  # metric -> (step, value, points)
    if server:
        client = _client(server, token)
        remote = _client_errors(lambda: client.resolve_experiment(experiment))
        for m in _client_errors(lambda: client.metrics(remote.id)).series:
            if m.steps:  # downsampling keeps both ends, so the last point is the latest value
                last[m.name] = (m.steps[-1], m.values[-1], m.total_points)
        files = [
            (f.path, f.kind, f.size) for f in _client_errors(lambda: client.artifacts(remote.id))
        ]
        _print_details(remote, f"on {server} (GET .../artifacts)", last, files)
        return
    settings = load_settings()
    store = open_store(settings)
    _reap(settings, store)
    with user_errors():
        record = resolve_experiment(store, experiment)
    for point in store.metrics(record.id):
        count = last.get(point.name, (0, None, 0))[2] + 1
        last[point.name] = (point.step, point.value, count)
    files = [(a.path, a.kind, a.size) for a in store.artifacts(record.id)]
    _print_details(record, str(store.artifact_dir(record.id)), last, files)
    store.close()


def _print_details(
    record: Any,
    artifact_place: str,
    last: dict[str, tuple[int, float | None, int]],
    files: list[tuple[str, str, int]],
) -> None:
    """`experiments show` for a store record or an API experiment."""
    out = console()
    rows = [
        ("id", record.id),
        ("name", escape(record.name)),
        ("pipeline", f"{record.pipeline_id} {record.pipeline_version or ''}".strip()),
        ("status", _status(record)),
        ("attempts", f"{record.attempts} of {record.max_attempts}"),
        ("worker", escape(record.worker or "-")),
        ("created", format_time(record.created_at)),
        ("started", format_time(record.started_at)),
        ("finished", format_time(record.finished_at)),
        ("duration", _duration(record)),
        ("tags", escape(", ".join(record.tags) or "-")),
        ("parent", record.parent_id or "-"),
        ("artifacts", artifact_place),
    ]
    details = Table(show_header=False, box=None)
    details.add_column(style="bold")
    details.add_column()
    for key, value in rows:
        details.add_row(key, value)
    out.print(details)
    out.print("[bold]config[/]")
    out.print_json(json.dumps(record.config))
    if record.summary:
        out.print("[bold]summary[/]")
        out.print_json(json.dumps(record.summary))
    if last:
        table = Table(title="metrics (last value)", title_justify="left")
        for column in ("metric", "step", "value", "points"):
            table.add_column(column, justify="left" if column == "metric" else "right")
        for name, (step, last_value, count) in last.items():
            shown = f"{last_value:.6g}" if last_value is not None else "nan/inf"
            table.add_row(name, str(step), shown, str(count))
        out.print(table)
    if files:
        out.print("[bold]artifacts[/]")
        for path, kind, size in files:
            out.print(f"  {escape(path)} ({kind}, {size} bytes)")
    if record.error:
        out.print(f"[bold red]error:[/] {escape(record.error)}")
    if record.traceback:
        out.print("[bold]traceback[/]")
        out.print(escape(record.traceback.rstrip()), soft_wrap=True)


@experiments_app.command("cancel")
def cancel_command(
    experiment: Annotated[str, typer.Argument(help="Experiment id (or a unique prefix).")],
    server: Server = None,
    token: Token = None,
) -> None:
    """Cancel: a queued run at once, a running one at its next step (then forcibly)."""
    if server:
        client = _client(server, token)
        remote = _client_errors(lambda: client.cancel(client.resolve_experiment(experiment).id))
        console().print(f"experiment {remote.id}: {_status(remote)}")
        return
    settings = load_settings()
    store = open_store(settings)
    with user_errors():
        record = resolve_experiment(store, experiment)
        updated = store.request_cancel(record.id)
    bus = make_bus(settings.redis_url, prefix=settings.event_channel_prefix)
    try:
        EventService(store, bus).emit(record.id, "status", {"status": updated.status.value})
    finally:
        bus.close()
    console().print(f"experiment {record.id}: {_status(updated)}")
    store.close()


def _print_log(out_level: str, message: str, time_text: str) -> None:
    style = {"warning": "yellow", "error": "red"}.get(out_level, "")
    line = f"{time_text} {out_level.upper():7} {escape(message)}"
    console().print(f"[{style}]{line}[/]" if style else line, soft_wrap=True)


@experiments_app.command("logs")
def logs_command(
    experiment: Annotated[str, typer.Argument(help="Experiment id (or a unique prefix).")],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
    server: Server = None,
    token: Token = None,
) -> None:
    """The run's log lines; with --follow, new ones as they come, until it ends."""
    if server:
        _remote_logs(_client(server, token), experiment, follow)
        return
    settings = load_settings()
    store = open_store(settings)
    with user_errors():
        record = resolve_experiment(store, experiment)
    if not follow:
        after = 0
        while True:
            lines = store.logs(record.id, after_id=after, limit=1000)
            for line in lines:
                _print_log(line.level, line.message, format_time(line.time))
            if len(lines) < 1000:
                break
            after = lines[-1].id
        store.close()
        return
    # Following: the event stream (history, then live) carries every log line and the status.
    bus = make_bus(settings.redis_url, prefix=settings.event_channel_prefix)
    events = EventService(store, bus)
    status = store.get(record.id).status.value
    try:
        with events.stream(record.id, poll_interval=0.5) as stream:
            while True:
                event = stream.get(timeout=1.0)
                if event is None:
                    if status in FINAL and stream.last_seq >= store.get(record.id).last_event_seq:
                        break
                    continue
                if event.type == "log":
                    _print_log(
                        str(event.payload.get("level", "info")),
                        str(event.payload.get("message", "")),
                        format_time(event.time),
                    )
                elif event.type == "status":
                    status = str(event.payload.get("status"))
                    console().print(f"[bold]status: {status}[/]")
                    if status in FINAL:
                        break
    except KeyboardInterrupt:
        pass
    finally:
        bus.close()
        store.close()


def _follow_remote(client: Any, experiment: str) -> None:
    """Print log lines and status changes as they arrive over the WebSocket, history first."""
    for event in client.stream_events(experiment):
        payload = event.get("payload", {})
        if event.get("type") == "log":
            level = str(payload.get("level", "info"))
            _print_log(level, str(payload.get("message", "")), str(event.get("time", "")))
        elif event.get("type") == "status":
            console().print(f"[bold]status: {payload.get('status')}[/]")


def _remote_logs(client: Any, experiment: str, follow: bool) -> None:
    experiment = _client_errors(lambda: client.resolve_experiment(experiment)).id
    if follow:
        with suppress(KeyboardInterrupt):
            _client_errors(lambda: _follow_remote(client, experiment))
        return
    after = 0
    while True:
        page = _client_errors(partial(client.logs, experiment, after_id=after, limit=1000))
        for line in page.items:
            _print_log(line.level, line.message, format_time(line.time))
        if len(page.items) < 1000:
            return
        after = page.next_after_id


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")
