"""`azuraforge login`, `users create|list|disable|enable` and `tokens create|list|revoke`.

`users` and `tokens` work on the local store (an admin on the machine that holds it; how the
first admin of a distributed install is made) or, with `--server`, through the API.
"""

from __future__ import annotations

import socket
import sys
from typing import Annotated, Any

import httpx
import typer
from rich.table import Table

from azuraforge_platform.accounts import Accounts
from azuraforge_platform.cli.common import (
    EXIT_USAGE,
    console,
    fail,
    format_time,
    load_settings,
    open_store,
)
from azuraforge_platform.cli.models import Server, Token, _client, _client_errors
from azuraforge_platform.credentials import save_token
from azuraforge_platform.store.accounts import AccountStore, UserExistsError, UserNotFoundError
from azuraforge_platform.store.tables import Role

__all__ = ["register"]

users_app = typer.Typer(help="User accounts (the local store, or --server URL as an admin).")
tokens_app = typer.Typer(help="Personal API tokens for the CLI, the Python client and scripts.")

PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input."),
]


def _read_password(from_stdin: bool, prompt: str = "Password") -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt(prompt, hide_input=True))


def _local_accounts() -> tuple[Accounts, Any]:
    settings = load_settings()
    store = open_store(settings)
    return Accounts(AccountStore(store), settings), store


# -- login ----------------------------------------------------------------------------------
def login_command(
    server: Annotated[str, typer.Option("--server", help="The AzuraForge URL.")],
    username: Annotated[str | None, typer.Option("--username", "-u")] = None,
    password_stdin: PasswordStdin = False,
    days: Annotated[int, typer.Option(min=1, max=365, help="Token lifetime in days.")] = 90,
) -> None:
    """Sign in to a server and keep an API token for it (owner-only file): later `--server`
    commands and the Python client use it."""
    settings = load_settings()
    server = server.rstrip("/")
    username = username or str(typer.prompt("Username"))
    password = _read_password(password_stdin)
    api = f"{server}/api/v1"
    try:
        # the session cookie is used once, to make a named token; then the session ends
        with httpx.Client(base_url=api, timeout=30, headers={"Origin": server}) as http:
            answer = http.post("/auth/login", json={"username": username, "password": password})
            if answer.status_code != 200:
                fail(_message(answer), EXIT_USAGE)
            name = f"cli on {socket.gethostname()}"[:100]
            made = http.post("/tokens", json={"name": name, "expires_in_days": days})
            if made.status_code != 201:
                fail(_message(made))
            http.post("/auth/logout")
    except httpx.HTTPError as exc:
        fail(f"cannot reach {server} ({exc})")
    token = made.json()
    path = save_token(settings.config_dir, server, token["token"], username)
    console().print(
        f"signed in to {server} as [bold]{username}[/]; token {token['prefix']}… stored in "
        f"{path} (expires {token['expires_at'][:10]})"
    )


def _message(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


# -- users ----------------------------------------------------------------------------------
@users_app.command("create")
def users_create(
    username: str,
    role: Annotated[Role, typer.Option(help="admin, member or viewer.")] = Role.member,
    admin: Annotated[bool, typer.Option("--admin", help="Same as --role admin.")] = False,
    password_stdin: PasswordStdin = False,
    server: Server = None,
    token: Token = None,
) -> None:
    """Create a user; without --password-stdin a password is generated and shown once."""
    role = Role.admin if admin else role
    password = _read_password(True) if password_stdin else None
    if server:
        made = _client_errors(
            lambda: _client(server, token).create_user(username, role=role.value, password=password)
        )
        _print_created(made.user.username, made.user.role, made.password)
        return
    accounts, store = _local_accounts()
    try:
        user, generated = accounts.create_user(username, role=role, password=password)
        accounts.store.audit("user.create", actor=None, target=username, detail={"cli": True})
    except UserExistsError as exc:
        fail(str(exc), EXIT_USAGE)
    except ValueError as exc:
        fail(str(exc), EXIT_USAGE)
    finally:
        store.close()
    _print_created(user.username, user.role.value, generated)


def _print_created(username: str, role: str, password: str | None) -> None:
    out = console()
    out.print(f"created user [bold]{username}[/] ({role})")
    if password:
        out.print(f"password: [bold]{password}[/]  (shown only now)")


@users_app.command("list")
def users_list(server: Server = None, token: Token = None) -> None:
    """Every user with its role and state."""
    if server:
        rows: list[Any] = _client_errors(lambda: _client(server, token).users())
    else:
        accounts, store = _local_accounts()
        try:
            rows = accounts.store.users()
        finally:
            store.close()
    table = Table("id", "username", "role", "state", "created", "last login")
    for u in rows:
        role = u.role.value if isinstance(u.role, Role) else u.role
        state = "[red]disabled[/]" if u.disabled else "active"
        created, last = format_time(u.created_at), format_time(u.last_login_at)
        table.add_row(str(u.id), u.username, role, state, created, last)
    console().print(table)


def _set_disabled(username: str, disabled: bool, server: str | None, token: str | None) -> None:
    verb = "disabled" if disabled else "enabled"
    if server:
        client = _client(server, token)
        users = _client_errors(client.users)
        match = next((u for u in users if u.username == username), None)
        if match is None:
            fail(f"no user {username!r}", EXIT_USAGE)
        _client_errors(lambda: client.update_user(match.id, disabled=disabled))
    else:
        accounts, store = _local_accounts()
        try:
            user = accounts.store.user_by_name(username)
            if disabled and user.role is Role.admin and accounts.store.count_admins() <= 1:
                fail(f"{username} is the last admin: make another admin first", EXIT_USAGE)
            accounts.update_user(user.id, disabled=disabled)
            accounts.store.audit(
                "user.update", actor=None, target=username, detail={"disabled": disabled}
            )
        except UserNotFoundError as exc:
            fail(str(exc), EXIT_USAGE)
        finally:
            store.close()
    console().print(f"user {username} {verb}")


@users_app.command("disable")
def users_disable(username: str, server: Server = None, token: Token = None) -> None:
    """Disable a user: its sign-ins, sessions and tokens stop working at once."""
    _set_disabled(username, True, server, token)


@users_app.command("enable")
def users_enable(username: str, server: Server = None, token: Token = None) -> None:
    """Enable a disabled user again."""
    _set_disabled(username, False, server, token)


# -- tokens ---------------------------------------------------------------------------------
UserOption = Annotated[
    str | None,
    typer.Option("--user", help="Local store only: whose tokens (required without --server)."),
]


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option("--name", help="What it is for.")] = "cli",
    days: Annotated[int, typer.Option(min=1, max=3650, help="Lifetime in days.")] = 90,
    user: UserOption = None,
    server: Server = None,
    token: Token = None,
) -> None:
    """A new API token; its secret is printed once and kept only hashed."""
    if server:
        made = _client_errors(
            lambda: _client(server, token).create_token(name, expires_in_days=days)
        )
        secret, expires = made.token, made.expires_at
    else:
        accounts, store = _local_accounts()
        try:
            owner = accounts.store.user_by_name(_need_user(user))
            record, secret = accounts.create_token(owner, name, days)
            expires = record.expires_at
            accounts.store.audit(
                "token.create", actor=None, target=f"token:{record.id}", detail={"name": name}
            )
        except (UserNotFoundError, ValueError) as exc:
            fail(str(exc), EXIT_USAGE)
        finally:
            store.close()
    console().print(f"token (shown only now, expires {format_time(expires)}):")
    print(secret)


def _need_user(user: str | None) -> str:
    if not user:
        fail("name the user with --user (or use --server URL for your own tokens)", EXIT_USAGE)
    return user


@tokens_app.command("list")
def tokens_list(user: UserOption = None, server: Server = None, token: Token = None) -> None:
    """API tokens: name, prefix, expiry, last use (never the secrets)."""
    if server:
        rows: list[Any] = _client_errors(lambda: _client(server, token).tokens())
    else:
        accounts, store = _local_accounts()
        try:
            rows = accounts.store.tokens(accounts.store.user_by_name(_need_user(user)).id)
        except UserNotFoundError as exc:
            fail(str(exc), EXIT_USAGE)
        finally:
            store.close()
    table = Table("id", "name", "prefix", "created", "expires", "last used", "state")
    for t in rows:
        state = "[red]revoked[/]" if t.revoked_at else "active"
        table.add_row(
            str(t.id),
            t.name,
            t.prefix + "…",
            format_time(t.created_at),
            format_time(t.expires_at),
            format_time(t.last_used_at),
            state,
        )
    console().print(table)


@tokens_app.command("revoke")
def tokens_revoke(token_id: int, server: Server = None, token: Token = None) -> None:
    """Revoke a token: it stops working at once."""
    if server:
        _client_errors(lambda: _client(server, token).revoke_token(token_id))
    else:
        accounts, store = _local_accounts()
        try:
            if not accounts.revoke_token(token_id):
                fail(f"no active token {token_id}", EXIT_USAGE)
            accounts.store.audit("token.revoke", actor=None, target=f"token:{token_id}")
        finally:
            store.close()
    console().print(f"token {token_id} revoked")


def register(app: typer.Typer) -> None:
    app.command("login")(login_command)
    app.add_typer(users_app, name="users")
    app.add_typer(tokens_app, name="tokens")
