"""`azuraforge tune TARGET --space ... --trials N --parallel K`: a hyper_tuner study with a
live table of its trials. Here (an executor in this process runs the study and its trials),
or on a running AzuraForge with `--server URL` (its workers run them)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from azuraforge_pipeline import ConfigError, discover
from azuraforge_platform.cli.common import (
    EXIT_CANCELLED,
    EXIT_FAILED,
    EXIT_USAGE,
    console,
    fail,
    load_settings,
    open_store,
    user_errors,
)
from azuraforge_platform.cli.models import Server, Token, _client, _client_errors
from azuraforge_platform.cli.run import LOCAL_PATHS, _assign, _read_config_file, parse_set
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.store import ExperimentStatus, InvalidTransitionError

__all__ = ["parse_space", "register"]

TUNER = "hyper_tuner"
S = ExperimentStatus
FINAL = {S.succeeded.value, S.failed.value, S.cancelled.value}
STATE_STYLE = {"running": "cyan", "complete": "green", "pruned": "yellow", "failed": "red"}


def _number(text: str, item: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise typer.BadParameter(f"{item}: {text!r} is not a number") from None


def _choice(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # a bare word is text: choice:adam,sgd


def parse_space(items: list[str]) -> dict[str, dict[str, Any]]:
    """`name=float:LOW:HIGH[:log|:step=S]`, `name=int:LOW:HIGH[:step=S]`, `name=choice:A,B`
    (each choice JSON when it parses, else text) or `name={...}` (the JSON of one parameter)."""
    space: dict[str, dict[str, Any]] = {}
    for item in items:
        name, sep, spec = item.partition("=")
        name = name.strip()
        if not sep or not name or not spec:
            raise typer.BadParameter(
                f"{item!r}: write name=float:LOW:HIGH, name=int:LOW:HIGH or name=choice:A,B"
            )
        if spec.lstrip().startswith("{"):
            try:
                space[name] = json.loads(spec)
            except json.JSONDecodeError as exc:
                raise typer.BadParameter(f"{item}: {exc}") from None
            continue
        kind, _, rest = spec.partition(":")
        if kind == "choice":
            if rest.lstrip().startswith("["):
                choices = _choice(rest)
                if not isinstance(choices, list):
                    raise typer.BadParameter(f"{item}: choice:[...] must be a JSON list")
            else:
                choices = [_choice(c.strip()) for c in rest.split(",") if c.strip()]
            space[name] = {"type": "choice", "choices": choices}
            continue
        if kind not in ("int", "float"):
            raise typer.BadParameter(f"{item}: the kind is int, float or choice, not {kind!r}")
        parts = rest.split(":")
        if len(parts) < 2:
            raise typer.BadParameter(f"{item}: a range needs {kind}:LOW:HIGH")
        param: dict[str, Any] = {
            "type": kind,
            "low": _number(parts[0], item),
            "high": _number(parts[1], item),
        }
        for extra in parts[2:]:
            if extra == "log":
                param["log"] = True
            elif extra.startswith("step="):
                param["step"] = _number(extra[5:], item)
            else:
                raise typer.BadParameter(f"{item}: unknown option {extra!r} (log or step=S)")
        space[name] = param
    return space


class _TrialTable:
    """The live view: one row per trial, from the study's `trial` events."""

    def __init__(self, target: str, objective: str, direction: str, n_trials: int) -> None:
        self.title = f"{target}: {direction} {objective}"
        self.n_trials = n_trials
        self.trials: dict[int, dict[str, Any]] = {}
        self.best: tuple[int | None, float | None] = (None, None)
        self.status = "queued"
        self.lines: list[str] = []

    def handle(self, event: Mapping[str, Any]) -> None:
        kind, payload = event.get("type"), event.get("payload") or {}
        if kind == "trial":
            self.trials[int(payload["number"])] = dict(payload)
            self.best = (payload.get("best_number"), payload.get("best_value"))
        elif kind == "status":
            self.status = str(payload.get("status"))
        elif kind == "log" and payload.get("level") in ("warning", "error"):
            self.lines = [*self.lines[-3:], str(payload.get("message"))]

    def render(self) -> Group:
        table = Table(title=self.title, title_justify="left")
        for column in ("#", "state", "value", "epochs", "params", "experiment"):
            table.add_column(
                column, justify="right" if column in ("#", "value", "epochs") else "left"
            )
        for number in sorted(self.trials)[-30:]:  # the newest 30: a terminal is not a database
            t = self.trials[number]
            value = t.get("value")
            mark = " *" if number == self.best[0] else ""
            table.add_row(
                f"{number}{mark}",
                f"[{STATE_STYLE.get(t['state'], '')}]{t['state']}[/]",
                f"{value:.6g}" if isinstance(value, int | float) else "-",
                str(t.get("epochs", 0)),
                escape(json.dumps(t.get("params", {}))),
                str(t.get("experiment_id") or "-")[:8],
            )
        done = sum(1 for t in self.trials.values() if t["state"] != "running")
        best = self.best[1]
        footer = Text(
            f"{self.status} · {done}/{self.n_trials} trials finished"
            + (
                f" · best {best:.6g} (trial {self.best[0]})"
                if isinstance(best, int | float)
                else ""
            )
        )
        return Group(table, footer, *(Text(line, style="yellow") for line in self.lines))


def tune_command(
    target: Annotated[str, typer.Argument(help="Id of the pipeline to tune.")],
    space: Annotated[
        list[str],
        typer.Option(
            "--space",
            help="A tuned setting (repeatable): name=float:LOW:HIGH[:log|:step=S], "
            "name=int:LOW:HIGH[:step=S], name=choice:A,B,... or name={JSON}.",
        ),
    ],
    objective: Annotated[
        str, typer.Option(help="The validation metric to optimise (e.g. val_mae).")
    ] = "val_loss",
    direction: Annotated[str, typer.Option(help="minimize or maximize.")] = "minimize",
    trials: Annotated[int, typer.Option("--trials", "-n", help="How many trials.")] = 20,
    parallel: Annotated[int, typer.Option("--parallel", "-p", help="Trials at once.")] = 2,
    sampler: Annotated[str, typer.Option(help="tpe, random or grid.")] = "tpe",
    pruner: Annotated[str, typer.Option(help="none, median or successive_halving.")] = "none",
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="Start no trial after this many minutes.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seeds the sampler.")] = 0,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="A fixed setting of the target: key=value (repeatable)."),
    ] = None,
    config_file: Annotated[
        Path | None, typer.Option("--config", "-c", help="JSON or TOML file of fixed settings.")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Name of the study's experiment.")] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Print the study's id and return.")
    ] = False,
    server: Server = None,
    token: Token = None,
) -> None:
    """Search TARGET's hyperparameters: each trial is a child experiment; Ctrl-C cancels the
    study and its running trials."""
    base: dict[str, Any] = _read_config_file(config_file) if config_file is not None else {}
    for item in set_ or []:
        path, value, _ = parse_set(item)
        _assign(base, path, value)
    config = {
        "target": target,
        "objective": objective,
        "direction": direction,
        "space": parse_space(space),
        "base_config": base,
        "sampler": sampler,
        "pruner": pruner,
        "n_trials": trials,
        "parallel": parallel,
        "timeout_minutes": timeout,
        "seed": seed,
    }
    view = _TrialTable(target, objective, direction, trials)
    if server:
        _tune_remote(server, token, config, name, detach, view)
    else:
        _tune_here(config, name, detach, view)


def _follow(view: _TrialTable, events: Iterator[Mapping[str, Any]], on_interrupt: Any) -> None:
    interrupted = False
    with Live(view.render(), console=console(), refresh_per_second=4) as live:
        while True:
            try:
                for event in events:
                    view.handle(event)
                    live.update(view.render())
                return
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                live.console.print("[yellow]cancelling the study and its running trials[/]")
                on_interrupt()


def _tune_remote(
    server: str, token: str | None, config: dict[str, Any], name: str | None, detach: bool,
    view: _TrialTable,
) -> None:  # fmt: skip
    client = _client(server, token)
    study = _client_errors(
        lambda: client.create_experiment(TUNER, config, name=name, tags=["study"])
    )
    console().print(f"study [bold]{study.id}[/] on {server}")
    if detach:
        return
    _follow(view, client.stream_events(study.id), lambda: client.cancel(study.id))
    final = client.get_experiment(study.id)
    _outcome(final.status.value, final.summary, final.error)


def _tune_here(config: dict[str, Any], name: str | None, detach: bool, view: _TrialTable) -> None:
    from azuraforge_platform.execution import LocalExecutor
    from azuraforge_platform.lifecycle import Lifecycle

    registry = discover(only=[TUNER])
    if TUNER not in registry:
        fail("the hyper_tuner plugin is not installed (pip install azuraforge-hyper-tuner)")
    tuner = registry.get(TUNER)
    try:
        clean = tuner.validate_config(config, path_policy=LOCAL_PATHS).model_dump(mode="json")
    except ConfigError as exc:
        fail("\n".join(f"{p or '<config>'}: {m}" for p, m in exc.errors), EXIT_USAGE)
    settings = load_settings()
    store = open_store(settings)
    bus = InProcessEventBus()
    events = EventService(store, bus)
    lifecycle = Lifecycle(events)
    with user_errors():
        study = lifecycle.submit(
            pipeline_id=TUNER,
            config=clean,
            pipeline_version=tuner.version,
            owner=None,
            max_attempts=settings.max_attempts,
            name=name,
            tags=["study"],
            coordinator=True,
        )
    console().print(
        f"study [bold]{study.id}[/] · {config['n_trials']} trials of {config['target']}"
    )
    if detach:
        console().print("[yellow]queued for an `azuraforge up` using this store[/]")
        return
    # this process is the platform for the study: its coordinator slot and its trials' workers
    executor = LocalExecutor(
        settings, store, bus, max_workers=max(1, int(config["parallel"])), poll_seconds=0.2
    )

    def stream() -> Iterator[Mapping[str, Any]]:
        with events.stream(study.id, poll_interval=1.0) as live:
            while True:
                event = live.get(timeout=0.5)
                if event is not None:
                    yield event.to_dict()
                elif store.get(study.id).status.value in FINAL:
                    while (event := live.get(timeout=0.2)) is not None:
                        yield event.to_dict()
                    return

    def cancel() -> None:
        with contextlib.suppress(InvalidTransitionError):
            lifecycle.cancel(study.id)

    with executor:
        _follow(view, stream(), cancel)
        deadline = time.monotonic() + settings.cancel_grace_seconds + 10
        while executor.running and time.monotonic() < deadline:  # trials wind down
            time.sleep(0.2)
    final = store.get(study.id)
    store.close()
    _outcome(final.status.value, final.summary, final.error)


def _outcome(status: str, summary: Mapping[str, Any] | None, error: str | None) -> None:
    out = console()
    if status == S.succeeded.value and summary:
        out.print(
            f"[bold green]best {summary['objective']} {summary['best_value']:.6g}[/] "
            f"(trial {summary['best_trial']}, experiment {summary['best_experiment_id']})"
        )
        out.print(f"settings: {escape(json.dumps(summary['best_params']))}")
        if summary.get("importances"):
            shares = ", ".join(f"{k} {v:.2f}" for k, v in summary["importances"].items())
            out.print(f"importances: {shares}")
        return
    if status == S.cancelled.value:
        out.print("[yellow]the study was cancelled[/]")
        raise typer.Exit(EXIT_CANCELLED)
    out.print(f"[red]the study {status}: {escape(error or '')}[/]")
    raise typer.Exit(EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)
