"""`azuraforge db upgrade`: bring the experiment store's schema up to date."""

from __future__ import annotations

import typer

from azuraforge_platform.cli.common import console, fail, load_settings
from azuraforge_platform.store import current_revision, make_engine, upgrade

__all__ = ["register"]

db_app = typer.Typer(help="The experiment store's database.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade_command() -> None:
    """Apply the pending schema migrations (safe to run any time, from any process)."""
    settings = load_settings()
    url = settings.resolved_database_url
    try:
        upgrade(url)
        engine = make_engine(url)
        revision = current_revision(engine)
        engine.dispose()
    except Exception as exc:  # driver errors differ per backend
        fail(f"cannot upgrade the database at {url} ({type(exc).__name__}: {exc})")
    console().print(f"database at revision [bold]{revision}[/] ({url})")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
