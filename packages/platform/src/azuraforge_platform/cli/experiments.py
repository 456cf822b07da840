"""`azuraforge experiments list|show|cancel|logs`: what ran, what runs, and its output, in
the local store or on a server (`--server URL`): both are an `Experiments`, chosen once."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from datetime import datetime
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from azuraforge_platform.api.schemas import ExperimentPublic, ExperimentSummary
from azuraforge_platform.cli.common import (
    EXIT_USAGE,
    STATUS_STYLE,
    console,
    fail,
    format_time,
    load_settings,
    open_store,
    user_errors,
)
from azuraforge_platform.cli.models import Server, Token, client_errors
from azuraforge_platform.experiments import Experiments, LocalExperiments
from azuraforge_platform.store import ExperimentStatus

__all__ = ["register"]

S = ExperimentStatus

experiments_app = typer.Typer(
    help="Experiments in the local store, or on a running AzuraForge with --server URL.",
    no_args_is_help=True,
)


@contextmanager
def _experiments(server: str | None, token: str | None) -> Iterator[Experiments]:
    """The experiments of the local store, or of the AzuraForge at `server`; the errors
    either can raise become one message and an exit code."""
    with user_errors(), client_errors() if server else nullcontext():
        experiments: Experiments
        if server:
            from azuraforge_platform.client import AzuraForgeClient

            experiments = AzuraForgeClient(server, token=token)
        else:
            settings = load_settings()
            experiments = LocalExperiments(open_store(settings), settings)
        try:
            yield experiments
        finally:
            experiments.close()


def _status(record: ExperimentSummary) -> str:
    return f"[{STATUS_STYLE[record.status]}]{record.status.value}[/]"


def _duration(record: ExperimentSummary) -> str:
    """Run time so far; a running one's lasts until its last heartbeat, where known (the
    local store's listings have it, a server's list items do not)."""
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
    with _experiments(server, token) as experiments:
        page = experiments.list_experiments(
            pipeline_id=pipeline, status=status, tags=tag or (), search=search, limit=limit
        )
    _print_list(page.items)


def _print_list(items: Sequence[ExperimentSummary]) -> None:
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
    with _experiments(server, token) as experiments:
        record = experiments.resolve_experiment(experiment)
        # metric -> (step, value, points); downsampling keeps both ends: the last is the latest
        last = {
            series.name: (series.steps[-1], series.values[-1], series.total_points)
            for series in experiments.metrics(record.id).series
            if series.steps
        }
        files = [(a.path, a.kind, a.size) for a in experiments.artifacts(record.id)]
        place = experiments.artifact_location(record.id)
    _print_details(record, place, last, files)


def _print_details(
    record: ExperimentPublic,
    artifact_place: str,
    last: dict[str, tuple[int, float | None, int]],
    files: list[tuple[str, str, int]],
) -> None:
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
    with _experiments(server, token) as experiments:
        updated = experiments.cancel(experiments.resolve_experiment(experiment).id)
    console().print(f"experiment {updated.id}: {_status(updated)}")


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
    with _experiments(server, token) as experiments:
        experiment_id = experiments.resolve_experiment(experiment).id
        if follow:
            with suppress(KeyboardInterrupt):
                _follow(experiments, experiment_id)
            return
        after = 0
        while True:
            page = experiments.logs(experiment_id, after_id=after, limit=1000)
            for line in page.items:
                _print_log(line.level, line.message, format_time(line.time))
            if len(page.items) < 1000:
                return
            after = page.next_after_id


def _follow(experiments: Experiments, experiment_id: str) -> None:
    """Print log lines and status changes as they arrive, history first, until the run ends:
    the event stream carries every log line and status change."""
    events = experiments.stream_events(experiment_id)
    try:
        for event in events:
            payload = event.get("payload", {})
            if event.get("type") == "log":
                _print_log(
                    str(payload.get("level", "info")),
                    str(payload.get("message", "")),
                    format_time(datetime.fromisoformat(event["time"])),
                )
            elif event.get("type") == "status":
                console().print(f"[bold]status: {payload.get('status')}[/]")
    finally:
        events.close()  # now, not when collected: it holds a bus subscription or a socket


def register(app: typer.Typer) -> None:
    app.add_typer(experiments_app, name="experiments")
