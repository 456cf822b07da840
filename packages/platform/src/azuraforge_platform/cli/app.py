"""The root `azuraforge` command. Each command group lives in its own module with a
`register(app)` function; adding one is an import and a line in the block below."""

from __future__ import annotations

import typer

from azuraforge_platform.cli import (
    accounts,
    db,
    experiments,
    models,
    pipelines,
    run,
    serve,
    tune,
    worker,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="azuraforge",
    help="AzuraForge: run pipelines, workers and the experiment store.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,  # errors users can act on are printed as messages
    add_completion=False,
)

# -- command registration: one line per command module ------------------------------------
run.register(app)  # azuraforge run PIPELINE --set key=value
worker.register(app)  # azuraforge worker
pipelines.register(app)  # azuraforge pipelines list|show
experiments.register(app)  # azuraforge experiments list|show|cancel|logs
db.register(app)  # azuraforge db upgrade
serve.register(app)  # azuraforge up | azuraforge api
models.register(app)  # azuraforge models list|register|predict
accounts.register(app)  # azuraforge login | users ... | tokens ...
tune.register(app)  # azuraforge tune TARGET --space ... (a hyper_tuner study)
# -- end of command registration ----------------------------------------------------------


def main() -> None:
    app()
