"""`azuraforge up` (the whole platform on one machine) and `azuraforge api` (only the API,
against shared PostgreSQL and Redis, for several instances behind a load balancer)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.panel import Panel

from azuraforge_platform.accounts import Accounts, load_signing_key
from azuraforge_platform.cli.common import console, fail, is_loopback, load_settings, open_store
from azuraforge_platform.store.accounts import AccountStore
from azuraforge_platform.telemetry.logs import logging_config

__all__ = ["register"]

Host = Annotated[str | None, typer.Option(help="Address to listen on (default 127.0.0.1).")]
Port = Annotated[int | None, typer.Option(min=0, max=65535, help="Port (default 8000).")]


def _address(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def up_command(
    host: Host = None,
    port: Port = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Experiments run at once (default 1).")
    ] = None,
    dashboard: Annotated[
        Path | None, typer.Option(help="The built dashboard folder (default: dashboard/dist).")
    ] = None,
    no_auth: Annotated[
        bool,
        typer.Option(
            "--no-auth",
            help="No sign-in at all, for one person on this machine: refused with a "
            "non-loopback --host.",
        ),
    ] = False,
) -> None:
    """Start everything on this machine: the API, embedded workers and the dashboard
    (SQLite and a local artifact folder unless configured otherwise; no Redis needed).
    On a store without users it creates the admin and prints its password once."""
    import uvicorn

    from azuraforge_platform.api.app import create_app, default_dashboard_dir

    settings = load_settings()
    out = console()
    if settings.redis_url:
        out.print("note: `up` runs embedded workers; AZURAFORGE_REDIS_URL is not used here")
    updates: dict[str, object] = {"redis_url": None}
    if host is not None:
        updates["api_host"] = host
    if port is not None:
        updates["api_port"] = port
    if workers is not None:
        updates["embedded_workers"] = workers
    if dashboard is not None:
        if not (dashboard / "index.html").is_file():
            fail(f"{dashboard} has no index.html; build the dashboard first (make setup)", 2)
        updates["dashboard_dir"] = dashboard
    if no_auth:
        if not is_loopback(host if host is not None else settings.api_host):
            fail(
                "--no-auth lets anyone who reaches the port do anything: it is only allowed "
                "on a loopback address (--host 127.0.0.1 or ::1)",
                2,
            )
        updates["auth_enabled"] = False
    settings = settings.model_copy(update=updates)
    store = open_store(settings)  # migrates now, and fails clearly if it cannot
    try:
        password = None
        if settings.auth_enabled:
            password = Accounts(AccountStore(store), settings).ensure_first_admin()
            load_signing_key(settings)  # created now, owner-only, not by a racing request
    finally:
        store.close()
    app = create_app(settings)
    address = _address(settings.api_host, settings.api_port)
    if password is not None:
        out.print(
            Panel(
                f"A first admin was created.\n\n  username: [bold]admin[/]\n  password: "
                f"[bold]{password}[/]\n\nIt is shown only this once: sign in and keep it "
                "(or add users with `azuraforge users create`).",
                title="first start",
                border_style="yellow",
            )
        )
    elif not settings.auth_enabled:
        out.print("[yellow]authentication is off (--no-auth): loopback only[/]")
    out.print(f"[bold green]AzuraForge is up:[/] open {address}/")
    out.print(f"  API {address}/api/v1  ·  docs {address}/api/v1/docs")
    out.print(f"  store {settings.resolved_database_url}")
    out.print(f"  artifacts {settings.resolved_artifact_root}")
    if default_dashboard_dir(settings) is None:
        out.print("  (dashboard not built: only the API is served; build it with `make setup`)")
    uvicorn.run(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=logging_config(settings),
        log_level="warning",
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # behind nginx: the client's address and https come from the proxy's headers
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def api_command(
    host: Host = None,
    port: Port = None,
    processes: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Serve only the API against shared services (AZURAFORGE_DATABASE_URL and
    AZURAFORGE_REDIS_URL); run as many as needed behind a load balancer."""
    import uvicorn

    settings = load_settings()
    if not settings.redis_url:
        fail(
            "`azuraforge api` serves the distributed mode: set AZURAFORGE_REDIS_URL (and "
            "AZURAFORGE_DATABASE_URL for a shared PostgreSQL); for one machine use `azuraforge up`",
            2,
        )
    if not settings.database_url:
        console().print(
            "note: no AZURAFORGE_DATABASE_URL: using the local SQLite file, which only "
            "processes on this machine can share"
        )
    store = open_store(settings)
    try:
        if settings.auth_enabled and AccountStore(store).count_users() == 0:
            console().print(
                "note: the store has no users yet: create the first admin with "
                "`azuraforge users create NAME --admin`"
            )
    finally:
        store.close()
    if settings.secret_key is None:
        console().print(
            "note: no AZURAFORGE_SECRET_KEY: WebSocket tokens are signed with this machine's "
            f"{settings.data_dir / 'secret.key'}; API instances behind one load balancer "
            "must share one key"
        )
    host = host or settings.api_host
    port = port if port is not None else settings.api_port
    if processes > 1 or settings.prometheus_multiproc_dir is not None:
        _multiprocess_metrics(settings.prometheus_multiproc_dir)
    console().print(f"[bold green]AzuraForge API:[/] {_address(host, port)}/api/v1")
    # By import string, so every process builds its app from the same environment.
    uvicorn.run(
        "azuraforge_platform.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        log_config=logging_config(settings),  # applied in every process uvicorn starts
        log_level="warning",
        ws_ping_interval=20,
        ws_ping_timeout=20,
        # behind nginx: the client's address and https come from the proxy's headers
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )


def _multiprocess_metrics(folder: Path | None) -> None:
    """Several processes answer on one port, so /metrics must add up all of them:
    prometheus_client's multiprocess mode, its values in files of one folder. The processes
    uvicorn starts inherit the folder through the environment (prometheus_client reads it
    there); its files of an earlier run are removed first, as that mode requires."""
    if folder is None:
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="azuraforge-metrics-"))
        atexit.register(shutil.rmtree, folder, True)
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(folder)


def register(app: typer.Typer) -> None:
    app.command("up")(up_command)
    app.command("api")(api_command)
