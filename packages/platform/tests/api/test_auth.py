"""Authentication and roles: 401 without a credential everywhere but /health and the login,
403 for what a role may not do, sessions, tokens (expiry, revocation), the WebSocket's
subprotocol token, Host and Origin checks, the login rate limit and the audit log."""

from __future__ import annotations

import os
import re
import stat
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from starlette.websockets import WebSocketDisconnect
from typer.testing import CliRunner

from azuraforge_platform.api import create_app
from azuraforge_platform.cli.app import app as cli
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment
from azuraforge_platform.store.tables import ApiToken

from .conftest import ADMIN_PASSWORD, add_user, bearer, make_settings

API = "/api/v1"


@pytest.fixture
def app_settings(tmp_path: Path, trainer: str):  # type: ignore[no-untyped-def]
    return make_settings(tmp_path, login_max_failures=3)


@pytest.fixture
def server(app_settings) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    """The app with one admin (`admin`); the client itself sends no credential."""
    add_user(app_settings, "admin")
    with TestClient(create_app(app_settings, run_jobs=False, serve_dashboard=False)) as client:
        yield client


def _finished_experiment(client: TestClient, trainer: str, owner: str | None) -> str:
    services = client.app.state.services  # type: ignore[attr-defined]
    exp = services.store.create(pipeline_id=trainer, config={"epochs": 3}, owner=owner)
    run_experiment(exp.id, EventService(services.store, InProcessEventBus()))
    return str(exp.id)


def _placeholder(path: str, experiment_id: str) -> str:
    return (
        path.replace("{experiment_id}", experiment_id)
        .replace("{path}", "model.json")
        .replace("{name}", "line")
        .replace("{upload_id}", "0" * 32 + ".csv")
        .replace("{pipeline_id}", "x")
        .replace("{token_id}", "1")
        .replace("{user_id}", "1")
    )


def test_every_route_but_health_and_login_needs_a_credential(
    server: TestClient, trainer: str
) -> None:
    exp_id = _finished_experiment(server, trainer, "admin")
    for page in ("openapi.json", "docs", "redoc"):
        assert server.get(f"{API}/{page}").status_code == 401
    admin = bearer(add_user(server.app.state.services.settings, "admin"))  # type: ignore[attr-defined]
    doc = server.get(f"{API}/openapi.json", headers=admin)
    assert server.get(f"{API}/docs", headers=admin).status_code == 200
    public = {(f"{API}/health", "get"), (f"{API}/auth/login", "post")}
    checked = 0
    for path, item in doc.json()["paths"].items():
        for method in item:
            if (path, method) in public:
                continue
            response = server.request(method.upper(), _placeholder(path, exp_id), json={})
            assert response.status_code == 401, (method, path, response.text)
            assert response.json()["error"]["code"] == "unauthenticated"
            assert response.headers["www-authenticate"] == "Bearer"
            checked += 1
    assert checked >= 25
    # artifact downloads too (the route above used a real file name)
    assert server.get(f"{API}/experiments/{exp_id}/artifacts/model.json").status_code == 401
    # a wrong scheme or an unknown token is no better than none
    for header in ("Basic YWRtaW46eA==", "Bearer af_nope", "Bearer "):
        answer = server.get(f"{API}/experiments", headers={"Authorization": header})
        assert answer.status_code == 401, header
    # /health answers anonymous load balancers, without internals
    health = server.get(f"{API}/health").json()
    assert health["status"] == "ok" and health["workers"] == []
    assert health["database"]["detail"] == ""
    assert health["storage"] == {"ok": True, "kind": "folder", "detail": ""}


def _login(client: TestClient, username: str = "admin", password: str = ADMIN_PASSWORD):  # type: ignore[no-untyped-def]
    return client.post(
        f"{API}/auth/login",
        json={"username": username, "password": password},
        headers={"Origin": "http://testserver"},
    )


def test_session_cookie_is_httponly_strict_and_needs_a_same_site_origin_to_change_state(
    server: TestClient, trainer: str
) -> None:
    answer = _login(server)
    assert answer.status_code == 200, answer.text
    assert answer.json()["user"]["username"] == "admin"
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    me = server.get(f"{API}/auth/me").json()
    assert me["username"] == "admin" and me["role"] == "admin" and me["auth"] == "session"
    body = {"pipeline_id": trainer, "config": {"epochs": 1}}
    # a cross-site form post carries the cookie but no Origin of ours: refused
    assert server.post(f"{API}/experiments", json=body).status_code == 403
    evil = server.post(f"{API}/experiments", json=body, headers={"Origin": "http://evil.example"})
    assert evil.status_code == 403
    ok = server.post(f"{API}/experiments", json=body, headers={"Origin": "http://testserver"})
    assert ok.status_code == 201 and ok.json()["owner"] == "admin"
    referer = {"Referer": "http://testserver/launch"}
    assert server.post(f"{API}/experiments", json=body, headers=referer).status_code == 201
    # logging out ends the session for good
    out = server.post(f"{API}/auth/logout", headers={"Origin": "http://testserver"})
    assert out.status_code == 204
    server.cookies.clear()
    server.cookies.set("azuraforge_session", answer.cookies["azuraforge_session"])
    assert server.get(f"{API}/auth/me").status_code == 401


def test_wrong_passwords_are_rate_limited_and_audited(server: TestClient) -> None:
    for _ in range(3):
        wrong = _login(server, password="not the password")
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"] == "invalid_credentials"
    assert _login(server, username="nobody").status_code == 401  # same answer for no such user
    limited = _login(server)  # even the right password waits now
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    token = add_user(server.app.state.services.settings, "admin")  # type: ignore[attr-defined]
    audit = server.get(f"{API}/audit", params={"action": "login.failed"}, headers=bearer(token))
    reasons = [e["detail"]["reason"] for e in audit.json()["items"]]
    assert reasons.count("bad password") == 3 and "unknown user" in reasons


def test_tokens_are_shown_once_expire_and_can_be_revoked(server: TestClient) -> None:
    admin = bearer(add_user(server.app.state.services.settings, "admin"))  # type: ignore[attr-defined]
    made = server.post(f"{API}/tokens", json={"name": "ci", "expires_in_days": 7}, headers=admin)
    assert made.status_code == 201
    secret = made.json()["token"]
    assert secret.startswith("af_") and made.json()["prefix"] == secret[:10]
    listed = server.get(f"{API}/tokens", headers=admin).json()["items"]
    assert any(t["name"] == "ci" for t in listed)
    assert secret not in str(listed)  # never shown again
    services = server.app.state.services  # type: ignore[attr-defined]
    stored = services.store.engine.connect().exec_driver_sql("SELECT secret_hash FROM api_tokens")
    assert secret not in str(stored.all())  # kept only hashed
    assert server.get(f"{API}/auth/me", headers=bearer(secret)).json()["auth"] == "token"
    too_long = server.post(
        f"{API}/tokens", json={"name": "x", "expires_in_days": 400}, headers=admin
    )
    assert too_long.status_code == 422
    # expiry (time passing, played by the database: the process's short credential cache is
    # emptied, as it would be by the time it trusts a credential running out)
    with services.store.engine.begin() as conn:
        conn.execute(
            update(ApiToken)
            .where(ApiToken.id == made.json()["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    services.accounts.forget_cached()
    assert server.get(f"{API}/auth/me", headers=bearer(secret)).status_code == 401
    # revocation
    other = server.post(f"{API}/tokens", json={"name": "other"}, headers=admin).json()
    assert server.get(f"{API}/experiments", headers=bearer(other["token"])).status_code == 200
    assert server.delete(f"{API}/tokens/{other['id']}", headers=admin).status_code == 204
    assert server.get(f"{API}/experiments", headers=bearer(other["token"])).status_code == 401
    assert server.delete(f"{API}/tokens/{other['id']}", headers=admin).status_code == 204


def test_roles_viewer_reads_member_manages_its_own_admin_everything(
    server: TestClient, trainer: str
) -> None:
    settings = server.app.state.services.settings  # type: ignore[attr-defined]
    admin = bearer(add_user(settings, "admin"))
    made = {
        name: server.post(
            f"{API}/users", json={"username": name, "role": role}, headers=admin
        ).json()
        for name, role in (("vera", "viewer"), ("max", "member"), ("mia", "member"))
    }
    assert all(len(m["password"]) >= 10 for m in made.values())  # generated, shown once
    viewer, max_, mia = (bearer(add_user(settings, n)) for n in ("vera", "max", "mia"))
    body = {"pipeline_id": trainer, "config": {"epochs": 1}}

    # viewer: reads, may take a WebSocket token and its own API tokens, changes nothing
    assert server.get(f"{API}/experiments", headers=viewer).status_code == 200
    assert server.post(f"{API}/experiments", json=body, headers=viewer).status_code == 403
    assert server.post(f"{API}/auth/ws-token", headers=viewer).status_code == 200
    assert server.post(f"{API}/tokens", json={"name": "read"}, headers=viewer).status_code == 201
    upload = server.post(f"{API}/uploads", files={"file": ("a.csv", b"x,y\n1,2\n")}, headers=viewer)
    assert upload.status_code == 403

    # members: their own runs only
    own = server.post(f"{API}/experiments", json=body, headers=max_).json()
    assert own["owner"] == "max"
    assert server.post(f"{API}/experiments/{own['id']}/cancel", headers=mia).status_code == 403
    assert server.delete(f"{API}/experiments/{own['id']}", headers=mia).status_code == 403
    assert server.post(f"{API}/experiments/{own['id']}/cancel", headers=max_).status_code == 200
    assert server.delete(f"{API}/experiments/{own['id']}", headers=max_).status_code == 204
    legacy = _finished_experiment(server, trainer, None)  # from before auth: admins only
    assert server.delete(f"{API}/experiments/{legacy}", headers=max_).status_code == 403

    # models: a member registers and deletes its own; another member cannot
    done = _finished_experiment(server, trainer, "max")
    reg = server.post(f"{API}/models", json={"name": "line", "experiment_id": done}, headers=max_)
    assert reg.status_code == 201 and reg.json()["owner"] == "max"
    assert server.delete(f"{API}/models/line", headers=mia).status_code == 403
    assert server.delete(f"{API}/models/line", headers=admin).status_code == 204

    # users and the audit log are for admins
    for headers in (viewer, max_):
        assert server.get(f"{API}/users", headers=headers).status_code == 403
        assert server.get(f"{API}/audit", headers=headers).status_code == 403
        new = {"username": "eve", "role": "admin"}
        assert server.post(f"{API}/users", json=new, headers=headers).status_code == 403
    assert server.delete(f"{API}/experiments/{legacy}", headers=admin).status_code == 204

    # disabling a user stops its tokens at once; the last admin cannot be removed
    users = {u["username"]: u for u in server.get(f"{API}/users", headers=admin).json()["items"]}
    assert server.patch(
        f"{API}/users/{users['max']['id']}", json={"disabled": True}, headers=admin
    ).json()["disabled"]
    assert server.get(f"{API}/experiments", headers=max_).status_code == 401
    last = server.patch(
        f"{API}/users/{users['admin']['id']}", json={"role": "member"}, headers=admin
    )
    assert last.status_code == 409 and "last admin" in last.json()["error"]["message"]

    actions = [e["action"] for e in server.get(f"{API}/audit", headers=admin).json()["items"]]
    for expected in (
        "user.create",
        "user.update",
        "token.create",
        "experiment.cancel",
        "experiment.delete",
        "model.register",
        "model.delete",
    ):
        assert expected in actions, actions
    by_max = server.get(f"{API}/audit", params={"actor": "max"}, headers=admin).json()["items"]
    assert {e["action"] for e in by_max} == {
        "experiment.cancel",
        "experiment.delete",
        "model.register",
    }


def test_host_and_origin_checks(server: TestClient) -> None:
    admin = bearer(add_user(server.app.state.services.settings, "admin"))  # type: ignore[attr-defined]
    rebinding = server.get(f"{API}/experiments", headers={**admin, "Host": "evil.example"})
    assert rebinding.status_code == 400 and rebinding.json()["error"]["code"] == "bad_host"
    assert server.get(f"{API}/health", headers={"Host": "evil.example"}).status_code == 400
    foreign = {**admin, "Origin": "http://evil.example"}
    assert server.post(f"{API}/tokens", json={"name": "x"}, headers=foreign).status_code == 403
    form = server.post(
        f"{API}/uploads",
        files={"file": ("a.csv", b"x,y\n1,2\n")},
        headers={**admin, "Origin": "null"},
    )
    assert form.status_code == 403
    assert server.get(f"{API}/experiments", headers=foreign).status_code == 200  # reads are fine


def test_websocket_needs_a_subprotocol_token_or_bearer(server: TestClient, trainer: str) -> None:
    exp_id = _finished_experiment(server, trainer, "admin")
    admin = bearer(add_user(server.app.state.services.settings, "admin"))  # type: ignore[attr-defined]
    url = f"{API}/experiments/{exp_id}/events?after=0"

    def first_message(**kwargs):  # type: ignore[no-untyped-def]
        with server.websocket_connect(url, **kwargs) as socket:
            return socket.receive_json()

    message = first_message()
    assert message["type"] == "error" and message["error"]["code"] == "unauthenticated"
    token = server.post(f"{API}/auth/ws-token", headers=admin).json()
    assert token["expires_in"] == 60
    with server.websocket_connect(
        url, subprotocols=["azuraforge.v1", f"azuraforge.token.{token['token']}"]
    ) as ws:
        assert ws.accepted_subprotocol == "azuraforge.v1"
        assert ws.receive_json()["seq"] == 1
    # a tampered or expired token, or a token in the URL, is refused
    forged = token["token"][:-2] + ("AA" if not token["token"].endswith("AA") else "BB")
    for protocols in (["azuraforge.v1", f"azuraforge.token.{forged}"], ["azuraforge.v1"]):
        message = first_message(subprotocols=protocols)
        assert message["error"]["code"] == "unauthenticated"
    with server.websocket_connect(f"{url}&token={token['token']}") as ws:
        assert ws.receive_json()["error"]["code"] == "unauthenticated"
    accounts = server.app.state.services.accounts  # type: ignore[attr-defined]
    principal = accounts.authenticate(admin["Authorization"].removeprefix("Bearer "))
    accounts.settings.ws_token_seconds = -5  # signed correctly, but already expired
    try:
        stale = accounts.ws_token(principal)
    finally:
        accounts.settings.ws_token_seconds = 60
    with server.websocket_connect(url, subprotocols=[f"azuraforge.token.{stale}"]) as ws:
        assert ws.receive_json()["error"]["code"] == "unauthenticated"
    # scripts may send their API token as a header instead
    with server.websocket_connect(url, headers=admin) as ws:
        assert ws.receive_json()["seq"] == 1
    # another site's page may not open it, whatever it sends
    foreign = {**admin, "Origin": "http://evil.example"}
    with pytest.raises(WebSocketDisconnect), server.websocket_connect(url, headers=foreign):
        pass


def test_no_auth_mode_is_a_local_admin(tmp_path: Path, trainer: str) -> None:
    settings = make_settings(tmp_path, auth_enabled=False)
    with TestClient(create_app(settings, run_jobs=False)) as client:
        me = client.get(f"{API}/auth/me").json()
        assert me["auth"] == "none" and me["role"] == "admin"
        assert client.get(f"{API}/experiments").status_code == 200
    refused = CliRunner().invoke(cli, ["up", "--no-auth", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and "loopback" in refused.output


def test_cli_users_tokens_and_login(
    live,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:
    settings = live.settings
    for name, value in {
        "AZURAFORGE_DATA_DIR": str(settings.data_dir),
        "AZURAFORGE_DATABASE_URL": settings.resolved_database_url,
        "AZURAFORGE_CONFIG_DIR": str(tmp_path / "home-config"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AZURAFORGE_TOKEN")
    runner = CliRunner()
    created = runner.invoke(
        cli, ["users", "create", "ada", "--role", "member", "--password-stdin"],
        input="a long enough password\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    assert "created user ada (member)" in created.output and "password:" not in created.output
    generated = runner.invoke(cli, ["users", "create", "bob", "--role", "viewer"])
    assert re.search(r"password: \S{20}", generated.output), generated.output
    short = runner.invoke(cli, ["users", "create", "cy", "--password-stdin"], input="short\n")
    assert short.exit_code == 2 and "10 characters" in short.output

    anonymous = runner.invoke(cli, ["experiments", "list", "--server", live.url])
    assert anonymous.exit_code == 2 and "sign in with" in anonymous.output
    login = runner.invoke(
        cli, ["login", "--server", live.url, "-u", "ada", "--password-stdin"],
        input="a long enough password\n",
    )  # fmt: skip
    assert login.exit_code == 0, login.output
    stored = tmp_path / "home-config" / "credentials.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(os.stat(stored.parent).st_mode) == 0o700
    listed = runner.invoke(cli, ["experiments", "list", "--server", live.url])
    assert listed.exit_code == 0, listed.output
    mine = runner.invoke(cli, ["tokens", "list", "--server", live.url])
    assert "cli on" in mine.output
    bad = runner.invoke(
        cli, ["login", "--server", live.url, "-u", "ada", "--password-stdin"], input="wrong\n"
    )
    assert bad.exit_code == 2 and "wrong username or password" in bad.output

    local = runner.invoke(cli, ["tokens", "create", "--user", "bob", "--name", "ro", "--days", "3"])
    assert local.exit_code == 0, local.output
    secret = local.output.strip().splitlines()[-1]
    as_bob = runner.invoke(cli, ["experiments", "list", "--server", live.url, "--token", secret])
    assert as_bob.exit_code == 0, as_bob.output
    token_id = runner.invoke(cli, ["tokens", "list", "--user", "bob"]).output
    revoke = re.search(r"│\s*(\d+)\s*│\s*ro\s", token_id)
    assert revoke is not None, token_id
    # revoked or disabled through another process (the CLI on the store): the server stops
    # trusting the credential within its auth_cache_seconds
    assert runner.invoke(cli, ["tokens", "revoke", revoke.group(1)]).exit_code == 0
    _eventually_refused(runner, ["--token", secret], live)
    disabled = runner.invoke(cli, ["users", "disable", "ada"])
    assert disabled.exit_code == 0
    _eventually_refused(runner, [], live)


def _eventually_refused(runner: CliRunner, extra: list[str], live) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 3 * live.settings.auth_cache_seconds + 5
    while True:
        listed = runner.invoke(cli, ["experiments", "list", "--server", live.url, *extra])
        if listed.exit_code == 2:
            assert "sign in with" in listed.output
            return
        assert time.monotonic() < deadline, "the server kept accepting a revoked credential"
        time.sleep(0.2)


def test_uploads_belong_to_their_owner(server: TestClient, trainer: str) -> None:
    settings = server.app.state.services.settings  # type: ignore[attr-defined]
    admin = bearer(add_user(settings, "admin"))
    for name in ("ann", "ben"):
        made = server.post(f"{API}/users", json={"username": name, "role": "member"}, headers=admin)
        assert made.status_code == 201
    ann, ben = bearer(add_user(settings, "ann")), bearer(add_user(settings, "ben"))
    csv = b"x,y\n" + b"\n".join(f"{x},{2 * x + 1}".encode() for x in range(20))
    upload = server.post(f"{API}/uploads", files={"file": ("d.csv", csv)}, headers=ann).json()
    assert upload["owner"] == "ann"
    body = {"pipeline_id": trainer, "config": {"epochs": 1, "csv_path": upload["path"]}}
    # to another member the upload does not exist, and a config cannot name it
    for route in (f"{API}/uploads/{upload['id']}", f"{API}/uploads/{upload['id']}/content"):
        assert server.get(route, headers=ben).status_code == 404
    assert server.delete(f"{API}/uploads/{upload['id']}", headers=ben).status_code == 404
    assert upload["id"] not in str(server.get(f"{API}/uploads", headers=ben).json())
    refused = server.post(f"{API}/experiments", json=body, headers=ben)
    assert refused.status_code == 422
    assert refused.json()["error"]["fields"][0]["path"] == "config.csv_path"
    assert "not one of your uploads" in refused.json()["error"]["message"]
    # its owner and admins use it
    assert server.post(f"{API}/experiments", json=body, headers=ann).status_code == 201
    assert server.get(f"{API}/uploads/{upload['id']}", headers=admin).status_code == 200
    assert server.delete(f"{API}/uploads/{upload['id']}", headers=ann).status_code == 204
    actions = server.get(f"{API}/audit", params={"actor": "ann"}, headers=admin).json()["items"]
    assert [e["action"] for e in actions] == ["upload.delete"]


def test_a_process_trusts_a_checked_credential_briefly_and_forgets_it_on_changes(
    server: TestClient,
) -> None:
    accounts = server.app.state.services.accounts  # type: ignore[attr-defined]
    secret = add_user(accounts.settings, "admin")
    token_id = accounts.authenticate(secret).token_id
    # another process revokes it: this one keeps trusting it for auth_cache_seconds at most
    accounts.store.revoke_token(token_id)
    assert accounts.authenticate(secret) is not None
    accounts.settings.auth_cache_seconds = 0  # ... and not at all once that time is over
    try:
        assert accounts.authenticate(secret) is None
    finally:
        accounts.settings.auth_cache_seconds = 2.0
    # a revocation or a user change made through this process takes effect at once
    fresh = add_user(accounts.settings, "admin")
    principal = accounts.authenticate(fresh)
    assert accounts.cached(fresh) == principal
    accounts.revoke_token(principal.token_id)
    assert accounts.cached(fresh) is None and accounts.authenticate(fresh) is None
