"""`azuraforge up` as a user starts it, and `azuraforge models` on the local store."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from azuraforge_platform.cli.app import app as cli
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment
from azuraforge_platform.store import ExperimentStore

from .conftest import free_port


@pytest.mark.slow
def test_up_serves_api_and_dashboard_and_prints_the_address(tmp_path: Path, trainer: str) -> None:
    dist = tmp_path / "dist"
    dist.mkdir()
    (dist / "index.html").write_text("<html>the dashboard</html>")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURAFORGE_")}
    env["AZURAFORGE_DATA_DIR"] = str(tmp_path / "data")
    log = tmp_path / "up.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "azuraforge_platform.cli", "up", "--port", str(port),
         "--dashboard", str(dist)],
        env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                health = httpx.get(f"{url}/api/v1/health", timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        assert health.json()["mode"] == "embedded" and health.json()["database"]["kind"] == "sqlite"
        printed = log.read_text()
        assert f"open {url}/" in printed
        # the first admin's password is printed once; nothing works without signing in
        password = re.search(r"password: (\S+)", printed)
        assert password is not None, printed
        assert httpx.get(f"{url}/api/v1/experiments").status_code == 401
        assert httpx.get(f"{url}/experiments/abc").text == "<html>the dashboard</html>"
        key = tmp_path / "data" / "secret.key"
        assert key.stat().st_mode & 0o777 == 0o600
        browser = httpx.Client(base_url=url, headers={"Origin": url})
        signed_in = browser.post(
            "/api/v1/auth/login", json={"username": "admin", "password": password.group(1)}
        )
        assert signed_in.status_code == 200, signed_in.text
        created = browser.post(
            "/api/v1/experiments", json={"pipeline_id": trainer, "config": {"epochs": 5}}
        ).json()
        while (exp := browser.get(f"/api/v1/experiments/{created['id']}").json())["status"] not in (
            "succeeded",
            "failed",
        ):
            assert time.monotonic() < deadline + 60, exp
            time.sleep(0.2)
        assert exp["status"] == "succeeded" and exp["owner"] == "admin"  # embedded workers ran it
        assert (tmp_path / "data" / "azuraforge.db").is_file()
    finally:
        process.terminate()
        process.wait(30)
    # a restart creates no second admin and prints no password
    again = subprocess.run(
        [sys.executable, "-m", "azuraforge_platform.cli", "users", "list"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0 and again.stdout.count("admin") == 2, again.stdout  # name+role


def test_models_commands_on_the_local_store(
    tmp_path: Path, trainer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURAFORGE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("AZURAFORGE_DATABASE_URL", raising=False)
    store = ExperimentStore(f"sqlite:///{tmp_path / 'azuraforge.db'}", tmp_path / "artifacts")
    exp = store.create(pipeline_id=trainer, config={"epochs": 200, "lr": 0.3})
    run_experiment(exp.id, EventService(store, InProcessEventBus()))
    store.close()
    runner = CliRunner()
    result = runner.invoke(cli, ["models", "register", "line", exp.id[:10]])
    assert result.exit_code == 0, result.output
    assert "registered line" in result.output
    again = runner.invoke(cli, ["models", "register", "line", exp.id])
    assert again.exit_code == 2 and "already registered" in again.output
    listed = runner.invoke(cli, ["models", "list"])
    assert "line" in listed.output and trainer in listed.output
    predicted = runner.invoke(cli, ["models", "predict", "line", "[0, 1]"])
    assert predicted.exit_code == 0, predicted.output
    assert json.loads(predicted.output) == pytest.approx([-2, 1], abs=0.05)
    bad = runner.invoke(cli, ["models", "predict", "line", '{"a": 1}'])
    assert bad.exit_code == 2 and "do not suit" in bad.output


def test_experiments_commands_against_a_running_server(live, trainer: str) -> None:
    """`azuraforge experiments ... --server URL` works on a remote platform through the client."""
    from azuraforge_platform.client import AzuraForgeClient

    client = AzuraForgeClient(live.url)
    created = client.create_experiment(trainer, {"epochs": 4}, name="remote run", tags=["cli"])
    finished = client.wait(created.id, progress=False, timeout=120)
    assert finished.status.value == "succeeded"
    runner = CliRunner(env={"COLUMNS": "200"})  # wide tables: nothing is cut off

    listed = runner.invoke(cli, ["experiments", "list", "--server", live.url, "--tag", "cli"])
    assert listed.exit_code == 0, listed.output
    assert created.id[:12] in listed.output and "remote run" in listed.output

    # the 12-character ids of the listing work as they do locally
    shown = runner.invoke(cli, ["experiments", "show", created.id[:12], "--server", live.url])
    assert shown.exit_code == 0, shown.output
    assert "succeeded" in shown.output and '"epochs": 4' in shown.output
    assert "loss" in shown.output  # the metrics table, read over HTTP

    logs = runner.invoke(cli, ["experiments", "logs", created.id[:8], "--server", live.url])
    followed = runner.invoke(
        cli, ["experiments", "logs", created.id, "--follow", "--server", live.url]
    )
    assert logs.exit_code == 0 and followed.exit_code == 0, logs.output + followed.output
    assert "status: succeeded" in followed.output

    missing = runner.invoke(cli, ["experiments", "show", "nope", "--server", live.url])
    assert missing.exit_code == 2 and "Traceback" not in missing.output, missing.output
    # two runs whose ids share a prefix: it is refused, naming the ambiguity
    store = live.server.config.app.state.services.store
    for digit in "01":
        store.create(pipeline_id=trainer, config={"epochs": 1}, experiment_id="abcd" + digit * 28)
    ambiguous = runner.invoke(cli, ["experiments", "show", "abcd", "--server", live.url])
    assert ambiguous.exit_code == 2 and "matches 2 experiments" in ambiguous.output
    unique = runner.invoke(cli, ["experiments", "show", "abcd1", "--server", live.url])
    assert unique.exit_code == 0 and "abcd" + "1" * 28 in unique.output, unique.output
    cancelled = runner.invoke(cli, ["experiments", "cancel", created.id, "--server", live.url])
    assert cancelled.exit_code == 2, cancelled.output  # a finished run cannot be cancelled
