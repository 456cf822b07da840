"""Predictions run in a sandbox (issue 11): a child process with a time and a memory limit,
reading only files a client may name. Each test reproduces one way a request used to hurt
the API process and checks that it now costs one 4xx while the API keeps working."""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment
from azuraforge_platform.paths import run_path_policy
from azuraforge_platform.store import ExperimentStore

from .conftest import LiveServer, make_settings, signed_in_client

API = "/api/v1"


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "Traceback" not in response.text
    return body["error"]


def _train(store: ExperimentStore, client: Any, pipeline_id: str, config: Any = None) -> str:
    """A succeeded experiment, run in this process (the test apps run no workers)."""
    body = {"pipeline_id": pipeline_id, "config": config or {}}
    created = client.post(f"{API}/experiments", json=body)
    assert created.status_code == 201, created.text
    experiment_id = created.json()["id"]
    app = getattr(client, "app", None)  # an in-process app: resolve uploads/<id> as workers do
    policy = run_path_policy(app.state.services.settings) if app is not None else None
    run_experiment(experiment_id, EventService(store, InProcessEventBus()), path_policy=policy)
    assert store.get(experiment_id).status.value == "succeeded"
    return str(experiment_id)


def _register(store: ExperimentStore, client: Any, pipeline_id: str, name: str, **config: Any):
    experiment_id = _train(store, client, pipeline_id, config)
    registered = client.post(f"{API}/models", json={"name": name, "experiment_id": experiment_id})
    assert registered.status_code == 201, registered.text


def _store(client: TestClient) -> ExperimentStore:
    return client.app.state.services.store  # type: ignore[attr-defined,no-any-return]


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped by its parent, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_until_dead(pid: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still runs"
        time.sleep(0.05)


def _pid_from(path: Path, within: float = 60.0) -> int:
    deadline = time.monotonic() + within
    while not path.is_file() or not path.read_text():
        assert time.monotonic() < deadline, "the prediction never started"
        time.sleep(0.05)
    return int(path.read_text())


@pytest.fixture
def small(tmp_path: Path, trainer: str) -> Iterator[TestClient]:
    """The app with tight prediction limits, and models `bad` (the misbehaving pipeline) and
    `line` (a real fit)."""
    settings = make_settings(tmp_path, predict_timeout_seconds=3, predict_memory_mb=256)
    with signed_in_client(settings, run_jobs=False, serve_dashboard=False) as client:
        _register(_store(client), client, f"{trainer}_bad", "bad")
        _register(_store(client), client, trainer, "line")
        yield client


# ----------------------------------------------------------------------- files as inputs
def test_the_database_as_input_is_refused_and_the_store_keeps_working(
    small: TestClient, tmp_path: Path, trainer: str
) -> None:
    """Reproduction: the API opened and closed its own SQLite file as prediction input, which
    drops the process's POSIX locks on it; the store then split and broke."""
    database = tmp_path / "store.db"
    assert database.is_file()
    for value in (str(database), "store.db", "uploads/../store.db", f"{database}-wal"):
        err = _error(small.post(f"{API}/models/bad/predict", json={"inputs": value}), 422)
        assert err["fields"][0]["path"] == "inputs"
        assert "outside the folders this server reads from" in err["message"]
    # the store still works: a new experiment is created, runs and finishes
    experiment_id = _train(_store(small), small, trainer, {"epochs": 2})
    assert small.get(f"{API}/experiments/{experiment_id}").json()["status"] == "succeeded"
    listed = small.get(f"{API}/experiments", params={"limit": 100}).json()["items"]
    assert experiment_id in {e["id"] for e in listed}


def test_uploads_and_data_roots_are_readable_and_nothing_else(tmp_path: Path, trainer: str) -> None:
    root = tmp_path / "shared"
    root.mkdir()
    (root / "table.csv").write_bytes(b"x\n" * 10)
    (root / "link.db").symlink_to(tmp_path / "store.db")  # a link out of the root
    (tmp_path / "secret.txt").write_text("top secret")
    settings = make_settings(tmp_path, data_roots=[root])
    with signed_in_client(settings, run_jobs=False, serve_dashboard=False) as client:
        _register(_store(client), client, f"{trainer}_bad", "bad")
        upload = client.post(f"{API}/uploads", files={"file": ("d.csv", b"a,b\n1,2\n")}).json()

        def predict(**body: Any) -> Any:
            return client.post(f"{API}/models/bad/predict", json=body)

        for body in (
            {"upload_id": upload["id"]},
            {"inputs": upload["path"]},
            {"inputs": f"uploads/{upload['id']}"},  # relative to the data folder
        ):
            answer = predict(**body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["predictions"] == {"bytes": 8}
        assert predict(inputs=str(root / "table.csv")).json()["predictions"] == {"bytes": 20}
        for value in (str(root / "link.db"), str(tmp_path / "secret.txt"), "/etc/passwd"):
            err = _error(predict(inputs=value), 422)
            assert err["fields"][0]["path"] == "inputs" and "top secret" not in err["message"]
        err = _error(predict(inputs="x" * 5000), 422)
        assert "a path of 5000 characters is too long" in err["message"]


def test_error_messages_name_no_server_path(small: TestClient, tmp_path: Path) -> None:
    upload = small.post(f"{API}/uploads", files={"file": ("d.csv", b"1\n")}).json()
    err = _error(
        small.post(
            f"{API}/models/bad/predict",
            json={"inputs": {"do": "fail", "path": str(tmp_path / upload["path"])}},
        ),
        422,
    )
    assert err["code"] == "bad_inputs" and err["fields"][0]["path"] == "inputs"
    assert "the file of model 'bad' cannot read" in err["message"]
    assert str(tmp_path) not in err["message"] and ".../" in err["message"]
    crash = _error(small.post(f"{API}/models/bad/predict", json={"inputs": {"do": "crash"}}), 500)
    assert crash["message"] == "the prediction failed (RuntimeError); see the server log"


# -------------------------------------------------------------------- numbers and counts
@pytest.mark.parametrize("number", ["Infinity", "-Infinity", "NaN", "1e400"])
def test_non_finite_numbers_are_refused(small: TestClient, number: str) -> None:
    for inputs in (f"[1, {number}]", f'{{"rows": [], "horizon": {number}}}'):
        r = small.post(
            f"{API}/models/line/predict",
            content=f'{{"inputs": {inputs}}}'.encode(),
            headers={"content-type": "application/json"},
        )
        err = _error(r, 422)
        assert err["fields"][0]["path"] == "inputs" and "finite" in err["message"]


def test_deeply_nested_inputs_are_refused(small: TestClient) -> None:
    deep = small.post(f"{API}/models/line/predict", json={"inputs": [[[[[1.0]]]]]})
    assert deep.status_code == 422 and "bad_inputs" in deep.text  # the pipeline's own answer
    too_deep = "[" * 200 + "1" + "]" * 200
    err = _error(
        small.post(f"{API}/models/line/predict", json={"inputs": json.loads(too_deep)}), 422
    )
    assert err["fields"][0]["path"] == "inputs" and "levels deep" in err["message"]


def _prices(n: int) -> list[dict[str, Any]]:
    """Business-day price rows as the stock predictor reads them."""
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    days = np.datetime64("2015-01-01") + np.arange(n)
    return [
        {"Date": str(day), "Open": c, "High": c * 1.01, "Low": c * 0.99, "Close": c,
         "Adj Close": c, "Volume": 1_000_000}
        for day, c in zip(days, close.tolist(), strict=True)
    ]  # fmt: skip


def test_a_forecast_horizon_is_bounded(api: TestClient) -> None:
    """Reproduction: horizon=1e20 pinned an API thread until SIGKILL; Infinity was a 500."""
    rows = _prices(120)
    table = ",".join(rows[0]) + "\n" + "".join(",".join(map(str, r.values())) + "\n" for r in rows)
    upload = api.post(f"{API}/uploads", files={"file": ("p.csv", table.encode())}).json()
    _register(
        _store(api), api, "stock_predictor", "stocks",
        dataset="csv", csv_path=upload["path"], window=5, epochs=1, hidden_size=4,
    )  # fmt: skip
    rows = rows[-10:]

    def predict(horizon: Any) -> Any:
        return api.post(
            f"{API}/models/stocks/predict", json={"inputs": {"rows": rows, "horizon": horizon}}
        )

    answer = predict(3)
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["predictions"]["predictions"]) == 3
    err = _error(predict(1e20), 422)
    assert err["code"] == "bad_inputs" and "between 1 and 1000 steps" in err["message"]
    err = _error(
        api.post(
            f"{API}/models/stocks/predict",
            content=b'{"inputs": {"rows": [], "horizon": Infinity}}',
            headers={"content-type": "application/json"},
        ),
        422,
    )
    assert err["fields"][0]["path"] == "inputs"
    err = _error(
        api.post(
            f"{API}/models/stocks/predict", json={"inputs": {"rows": "/etc/passwd", "horizon": 2}}
        ),
        422,
    )
    assert "rows must be a list of row objects" in err["message"]


def _blank_png(width: int, height: int) -> bytes:
    """A valid grayscale PNG of zeros, compressed row by row (the image is never in memory):
    a 12000x12000 one takes about 140 kB."""
    packer = zlib.compressobj(9)
    row = bytes(width + 1)  # filter byte + pixels
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body)
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def test_a_zip_of_huge_images_is_refused_before_decoding(api: TestClient, tmp_path: Path) -> None:
    """Reproduction: six 12000x12000 PNGs in an 840 kB zip took the API to 8 GB."""
    _register(
        _store(api), api, "image_classifier", "digits",
        dataset="digits_8x8", epochs=1, max_samples=200, conv_channels=[4], hidden_units=8,
    )  # fmt: skip
    huge = _blank_png(12000, 12000)
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(6):
            zf.writestr(f"images/{i}.png", huge)
    upload = api.post(f"{API}/uploads", files={"file": ("bomb.zip", archive.getvalue())}).json()
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = _error(api.post(f"{API}/models/digits/predict", json={"upload_id": upload["id"]}), 422)
    # refused by the header check, not by running out of memory while decoding
    assert err["code"] == "bad_inputs"
    assert "images/0.png: wrong image size 12000x12000" in err["message"]
    assert "takes 8x8" in err["message"] and str(tmp_path) not in err["message"]
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kb < 200 * 1024  # this process served the API: no image was decoded here
    fine = np.full((2, 8, 8), 200).tolist()
    answer = api.post(f"{API}/models/digits/predict", json={"inputs": fine})
    assert answer.status_code == 200 and len(answer.json()["predictions"]) == 2


# ----------------------------------------------------------------------- time and memory
def test_a_prediction_that_never_ends_is_killed_while_the_api_keeps_answering(
    tmp_path: Path, trainer: str
) -> None:
    settings = make_settings(tmp_path, predict_timeout_seconds=3)
    with (
        LiveServer(settings, run_jobs=False) as server,
        httpx.Client(base_url=server.url, timeout=120, headers=server.headers) as client,
    ):
        store = server.server.config.app.state.services.store
        _register(store, client, f"{trainer}_bad", "bad")
        _register(store, client, trainer, "line")
        pid_file = tmp_path / "sleeper.pid"
        answers: list[httpx.Response] = []
        sleeper = threading.Thread(
            target=lambda: answers.append(
                client.post(
                    f"{API}/models/bad/predict",
                    json={"inputs": {"do": "sleep", "pid_file": str(pid_file)}},
                )
            )
        )
        sleeper.start()
        pid = _pid_from(pid_file)
        # while it sleeps, the API answers, and another prediction runs beside it
        assert client.get(f"{API}/health").status_code == 200
        line = client.post(f"{API}/models/line/predict", json={"inputs": [0.0, 1.0]})
        assert line.status_code == 200, line.text
        assert len(line.json()["predictions"]) == 2
        sleeper.join(120)
        err = _error(answers[0], 422)
        assert err["code"] == "prediction_timeout" and "longer than 3 s" in err["message"]
        _wait_until_dead(pid)
        assert client.get(f"{API}/experiments").status_code == 200


def test_a_prediction_that_allocates_without_bound_runs_out_of_memory(small: TestClient) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    err = _error(small.post(f"{API}/models/bad/predict", json={"inputs": {"do": "allocate"}}), 422)
    assert err["code"] == "prediction_out_of_memory"
    assert err["message"] == "the prediction ran out of memory (limit 256 MB)"
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024
    answer = small.post(f"{API}/models/line/predict", json={"inputs": [2.0]})
    assert answer.status_code == 200, answer.text


def test_a_prediction_process_that_dies_without_an_answer(small: TestClient) -> None:
    err = _error(small.post(f"{API}/models/bad/predict", json={"inputs": {"do": "exit"}}), 500)
    assert "exited with code 3 without an answer" in err["message"]
    answer = small.post(f"{API}/models/bad/predict", json={"inputs": {"value": [1, "a"]}})
    assert answer.status_code == 200 and answer.json()["predictions"]["echo"] == [1, "a"]
    assert answer.json()["predictions"]["pid"] != os.getpid()  # it ran in a child process


def test_a_prediction_stops_when_its_client_goes_away(tmp_path: Path, trainer: str) -> None:
    with (
        LiveServer(make_settings(tmp_path), run_jobs=False) as server,
        httpx.Client(base_url=server.url, timeout=120, headers=server.headers) as client,
    ):
        services = server.server.config.app.state.services
        _register(services.store, client, f"{trainer}_bad", "bad")
        pid_file = tmp_path / "sleeper.pid"
        body = {"inputs": {"do": "sleep", "pid_file": str(pid_file)}}
        failures: list[BaseException] = []

        def give_up() -> None:  # a client that stops waiting closes its connection
            try:
                client.post(f"{API}/models/bad/predict", json=body, timeout=3)
            except httpx.ReadTimeout as exc:
                failures.append(exc)

        gone = threading.Thread(target=give_up)
        gone.start()
        pid = _pid_from(pid_file)
        gone.join(60)
        assert len(failures) == 1
        _wait_until_dead(pid)  # long before the 60 s limit
        deadline = time.monotonic() + 30
        while services.predictions.running:
            assert time.monotonic() < deadline
            time.sleep(0.05)


SANDBOX_SCRIPT = """
import sys
import anyio
from azuraforge_platform.execution.predict import PredictionSandbox

sandbox = PredictionSandbox(timeout_seconds=600, memory_mb=256, max_concurrent=1)
pipeline_id, model_path, pid_file = sys.argv[1:]
anyio.run(lambda: sandbox.predict(pipeline_id, model_path, {"do": "sleep", "pid_file": pid_file}))
"""


def test_prediction_processes_die_with_the_api_process(tmp_path: Path, trainer: str) -> None:
    model = tmp_path / "model.json"
    model.write_text("{}")
    pid_file = tmp_path / "sleeper.pid"
    api = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(SANDBOX_SCRIPT), f"{trainer}_bad", str(model),
         str(pid_file)],
    )  # fmt: skip
    try:
        pid = _pid_from(pid_file)
        assert _alive(pid)
        api.send_signal(signal.SIGKILL)  # no clean-up runs in the "API" process
        api.wait(30)
        _wait_until_dead(pid)
    finally:
        if api.poll() is None:
            api.kill()
            api.wait()
