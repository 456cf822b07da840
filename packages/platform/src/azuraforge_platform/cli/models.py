"""`azuraforge models list|register|predict`: registered models, locally or on a server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from azuraforge_pipeline import PredictionNotSupportedError, discover
from azuraforge_platform.cli.common import (
    EXIT_USAGE,
    console,
    fail,
    format_time,
    load_settings,
    open_store,
    resolve_experiment,
    user_errors,
)
from azuraforge_platform.store import (
    ArtifactNotFoundError,
    ArtifactPathError,
    ExperimentStatus,
    ModelExistsError,
    ModelNotFoundError,
    ModelRegistry,
)

__all__ = ["Server", "Token", "client_errors", "register"]

models_app = typer.Typer(help="Registered models: name a trained model, predict with it.")

Server = Annotated[
    str | None,
    typer.Option(
        "--server", help="Use a running AzuraForge at this URL instead of the local store."
    ),
]


Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="API token for --server (default: AZURAFORGE_TOKEN, else the one `azuraforge "
        "login` stored for that server).",
    ),
]


def _client(server: str, token: str | None = None) -> Any:
    from azuraforge_platform.client import AzuraForgeClient

    return AzuraForgeClient(server, token=token)


@contextmanager
def client_errors() -> Iterator[None]:
    """A server's error answers, and a server that cannot be reached, as one message and an
    exit code (2 for a 4xx: the request was wrong)."""
    import httpx

    from azuraforge_platform.client import ApiError

    try:
        yield
    except ApiError as exc:
        if exc.status == 401:
            fail(
                f"{exc.message}: sign in with `azuraforge login --server URL`, or pass --token",
                EXIT_USAGE,
            )
        fail(str(exc), EXIT_USAGE if 400 <= exc.status < 500 else 1)
    except (OSError, httpx.TransportError) as exc:  # httpx's are no OSError (websockets' are)
        fail(f"cannot reach the server ({exc})")


def _client_errors(call: Any) -> Any:
    with client_errors():
        return call()


@models_app.command("list")
def list_command(server: Server = None, token: Token = None) -> None:
    """The registered models."""
    if server:
        rows = [m.model_dump() for m in _client_errors(lambda: _client(server, token).models())]
    else:
        store = open_store(load_settings())
        rows = [vars(m) for m in ModelRegistry(store).list()]
        store.close()
    table = Table("name", "pipeline", "experiment", "file", "registered")
    for m in rows:
        table.add_row(
            escape(m["name"]),
            m["pipeline_id"],
            m["experiment_id"][:12],
            escape(m["artifact_path"]),
            format_time(m["created_at"]),
        )
    console().print(table if rows else "no registered models")


@models_app.command("register")
def register_command(
    name: Annotated[str, typer.Argument(help="The model's name.")],
    experiment: Annotated[str, typer.Argument(help="A succeeded experiment (id or prefix).")],
    artifact: Annotated[
        str | None, typer.Option(help="The model file among its artifacts (default: its model).")
    ] = None,
    description: Annotated[str | None, typer.Option(help="A note.")] = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """Register the model a succeeded experiment saved, under NAME."""
    if server:
        model = _client_errors(
            lambda: _client(server, token).register_model(
                name, experiment, artifact_path=artifact, description=description
            )
        )
        console().print(f"registered {model.name} ({model.pipeline_id}, {model.artifact_path})")
        return
    store = open_store(load_settings())
    with user_errors():
        record = resolve_experiment(store, experiment)
        if record.status is not ExperimentStatus.succeeded:
            fail(f"experiment {record.id} is {record.status.value}; it must have succeeded", 2)
        path = artifact
        if path is None:
            models = [a.path for a in store.artifacts(record.id) if a.kind == "model"]
            if not models:
                fail(f"experiment {record.id} saved no model; name the file with --artifact", 2)
            path = models[0]
        try:
            store.check_artifact(record.id, path)
        except (ArtifactPathError, ArtifactNotFoundError):
            fail(f"experiment {record.id} has no artifact {path!r}", EXIT_USAGE)
        try:
            model = ModelRegistry(store).register(
                name,
                experiment_id=record.id,
                artifact_path=path,
                description=description,
                metrics=record.summary,
            )
        except ModelExistsError as exc:
            fail(str(exc), EXIT_USAGE)
    store.close()
    console().print(f"registered {model.name} ({model.pipeline_id}, {model.artifact_path})")


@models_app.command("predict")
def predict_command(
    name: Annotated[str, typer.Argument(help="A registered model.")],
    inputs: Annotated[
        str,
        typer.Argument(help="RAW inputs as JSON, @file.json for a JSON file, or a data file path."),
    ],
    server: Server = None,
    token: Token = None,
) -> None:
    """Predict with a registered model; prints the predictions as JSON."""
    value: Any
    data_file: Path | None = None
    if inputs.startswith("@"):
        value = json.loads(Path(inputs[1:]).read_text())
    else:
        try:
            value = json.loads(inputs)
        except json.JSONDecodeError:
            data_file = Path(inputs)
            if not data_file.is_file():
                fail(f"{inputs!r} is neither JSON nor an existing file", EXIT_USAGE)
            value = data_file.resolve()  # a Path: pipelines take files only as paths
    if server:
        client = _client(server, token)
        if data_file is not None:
            upload = _client_errors(lambda: client.upload(data_file))
            result = _client_errors(lambda: client.predict(name, upload_id=upload.id))
        else:
            result = _client_errors(lambda: client.predict(name, value))
        typer.echo(json.dumps(result.predictions))
        return
    store = open_store(load_settings())
    registry = ModelRegistry(store)
    try:
        model = registry.get(name)
    except ModelNotFoundError as exc:
        fail(str(exc), EXIT_USAGE)
    with user_errors():
        pipeline = discover().get(model.pipeline_id)
    try:
        predictions = pipeline.predict(registry.path(model), value)
    except PredictionNotSupportedError as exc:
        fail(str(exc), EXIT_USAGE)
    except (ValueError, TypeError, KeyError) as exc:
        fail(f"the inputs do not suit model {name!r}: {exc}", EXIT_USAGE)
    finally:
        store.close()
    from azuraforge_platform.store.tables import json_safe

    typer.echo(json.dumps(json_safe(predictions)))


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
