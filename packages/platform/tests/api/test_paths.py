"""Data paths a client names (issue 11, defect 2): only uploads and the configured data roots
are reachable, symlinks included; errors quote no file contents; no answer shows an absolute
server path."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment
from azuraforge_platform.paths import redact_paths, run_path_policy
from azuraforge_platform.settings import Settings

from .conftest import make_settings, signed_in_client

API = "/api/v1"
ABSOLUTE = re.compile(r"(?<![\w.:/~-])/[\w.-]+/")  # the start of an absolute path

# Every pipeline config field that names a server path, with what makes the field used.
PATH_FIELDS = [
    ("trainer", "csv_path", {}),
    ("weather_forecaster", "csv_path", {"dataset": "csv"}),
    ("weather_forecaster", "cache_dir", {"dataset": "open_meteo"}),
    ("stock_predictor", "csv_path", {"dataset": "csv"}),
    ("stock_predictor", "cache_dir", {"dataset": "yfinance"}),
    ("image_classifier", "data_path", {"dataset": "image_folder"}),
]


def _create(api: TestClient, pipeline_id: str, config: dict[str, Any]) -> Any:
    return api.post(f"{API}/experiments", json={"pipeline_id": pipeline_id, "config": config})


def _run_here(api: TestClient, experiment_id: str) -> dict[str, Any]:
    """Run a queued experiment in this process as a worker would, and return its answer."""
    services = api.app.state.services  # type: ignore[attr-defined]
    events = EventService(services.store, InProcessEventBus())
    run_experiment(experiment_id, events, path_policy=run_path_policy(services.settings))
    answer = api.get(f"{API}/experiments/{experiment_id}")
    assert answer.status_code == 200
    return dict(answer.json())


def _refused(response: Any, field: str, secret: bytes) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_config"
    assert [f["path"] for f in error["fields"]] == [field]
    assert "outside the folders this server reads from" in error["fields"][0]["message"]
    for line in secret.splitlines()[:3]:  # none of the file's contents in the answer
        assert line.decode(errors="replace")[:12] not in response.text


def _forbidden_paths(settings: Settings, tmp_path: Path) -> list[tuple[str, bytes]]:
    """Server files a client must not reach, each as (what the client sends, its contents)."""
    outside = tmp_path.parent / f"{tmp_path.name}-outside.csv"
    outside.write_text("date,temp\nsecret-row,1\n")
    uploads = settings.upload_dir
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / "link.csv").symlink_to(outside)  # a link inside the uploads folder
    (uploads / "etc").symlink_to("/etc", target_is_directory=True)
    database = tmp_path / "store.db"
    cases = [
        ("/etc/passwd", Path("/etc/passwd").read_bytes()),
        ("/etc/shadow", b"root:"),
        ("../azuraforge.db", b""),
        (str(database), database.read_bytes()[:16]),  # the store's own database
        ("store.db", b""),  # the same, relative to the data folder
        ("uploads/link.csv", outside.read_bytes()),
        ("uploads/etc/passwd", Path("/etc/passwd").read_bytes()),
        ("uploads/../store.db", b""),
        (str(outside), outside.read_bytes()),
    ]
    return cases


@pytest.mark.parametrize(("pipeline", "field", "extra"), PATH_FIELDS)
def test_paths_outside_uploads_and_data_roots_are_refused(
    api: TestClient, trainer: str, tmp_path: Path, pipeline: str, field: str, extra: dict[str, Any]
) -> None:
    pipeline_id = trainer if pipeline == "trainer" else pipeline
    settings = api.app.state.services.settings  # type: ignore[attr-defined]
    for value, secret in _forbidden_paths(settings, tmp_path):
        response = _create(api, pipeline_id, {**extra, field: value})
        _refused(response, f"config.{field}", secret)
        assert repr(value) in response.json()["error"]["fields"][0]["message"]
    assert api.get(f"{API}/experiments").json()["items"] == []  # nothing was queued


def test_the_weather_example_from_the_issue(api: TestClient) -> None:
    config = {"dataset": "csv", "csv_path": "/etc/shadow", "epochs": 1}
    response = _create(api, "weather_forecaster", config)
    _refused(response, "config.csv_path", b"root:")
    assert "its columns" not in response.text


def test_a_rerun_cannot_reach_out_either(api: TestClient, trainer: str) -> None:
    first = _create(api, trainer, {"epochs": 1})
    assert first.status_code == 201
    rerun = api.post(
        f"{API}/experiments/{first.json()['id']}/rerun",
        json={"config": {"csv_path": "/etc/passwd"}},
    )
    _refused(rerun, "config.csv_path", Path("/etc/passwd").read_bytes())


def test_an_upload_named_as_its_path_answers_trains(api: TestClient, trainer: str) -> None:
    rows = "x,y\n" + "\n".join(f"{x / 10},{2 * x / 10 + 1}" for x in range(-10, 11))
    upload = api.post(f"{API}/uploads", files={"file": ("points.csv", rows.encode())})
    assert upload.status_code == 201
    path = upload.json()["path"]
    assert path == f"uploads/{upload.json()['id']}"
    created = _create(api, trainer, {"epochs": 200, "lr": 0.3, "csv_path": path})
    assert created.status_code == 201, created.text
    assert created.json()["config"]["csv_path"] == path  # stored as the client wrote it
    done = _run_here(api, created.json()["id"])
    assert done["status"] == "succeeded", done["error"]
    assert done["summary"]["w"] == pytest.approx(2, abs=0.05)


def test_files_in_a_data_root_are_accepted(tmp_path: Path, trainer: str) -> None:
    root = tmp_path / "shared-data"
    root.mkdir()
    (root / "points.csv").write_text("x,y\n" + "\n".join(f"{x},{3 * x}" for x in range(5)))
    (tmp_path / "data").mkdir()
    settings = make_settings(tmp_path / "data", data_roots=[root])
    with signed_in_client(settings, run_jobs=False, serve_dashboard=False) as api:
        ok = _create(api, trainer, {"epochs": 50, "lr": 0.05, "csv_path": str(root / "points.csv")})
        assert ok.status_code == 201, ok.text
        assert _run_here(api, ok.json()["id"])["status"] == "succeeded"
        # the data root is the door, not its neighbours
        _refused(
            _create(api, trainer, {"csv_path": str(tmp_path / "x.csv")}), "config.csv_path", b""
        )


def test_failed_runs_show_no_server_paths_and_no_file_contents(
    tmp_path: Path, trainer: str
) -> None:
    root = tmp_path / "shared-data"
    root.mkdir()
    rows = ["date,temp,wind"] + [f"2020-01-{d:02d},{d},{d % 3}" for d in range(1, 29)]
    rows[5] = "2020-01-05,TOP-SECRET,1"
    (root / "weather.csv").write_text("\n".join(rows))
    (tmp_path / "data").mkdir()
    settings = make_settings(tmp_path / "data", data_roots=[root])
    with signed_in_client(settings, run_jobs=False, serve_dashboard=False) as api:
        bad_cell = _create(
            api,
            "weather_forecaster",
            {"dataset": "csv", "csv_path": str(root / "weather.csv"), "epochs": 1},
        )
        assert bad_cell.status_code == 201, bad_cell.text
        failed = _run_here(api, bad_cell.json()["id"])
        assert failed["status"] == "failed"
        assert "column 'temp' has non-numeric values: row 5" in failed["error"]
        # a missing file: the library's message names the resolved path; the answer does not
        gone = _create(api, trainer, {"csv_path": str(root / "missing.csv")})
        missing = _run_here(api, gone.json()["id"])
        assert missing["status"] == "failed" and "missing.csv" in missing["error"]
        for answer in (failed, missing):
            for shown in (answer["error"], answer["traceback"]):
                assert "TOP-SECRET" not in shown
                assert str(tmp_path) not in shown, shown
                assert ABSOLUTE.search(shown) is None, shown
            assert 'execution/runner.py", line' in answer["traceback"]  # still a traceback


def test_uploads_answer_with_no_server_path(api: TestClient, tmp_path: Path) -> None:
    created = api.post(f"{API}/uploads", files={"file": ("a.csv", b"x,y\n1,2\n")})
    upload_id = created.json()["id"]
    for answer in (
        created,
        api.get(f"{API}/uploads/{upload_id}"),
        api.get(f"{API}/uploads"),
    ):
        assert answer.status_code in (200, 201)
        assert str(tmp_path) not in answer.text and str(Path.home()) not in answer.text
    assert created.json()["path"] == f"uploads/{upload_id}"


def test_predict_reads_only_the_callers_uploads(api: TestClient, trainer: str) -> None:
    created = _create(api, trainer, {"epochs": 200, "lr": 0.3})
    assert _run_here(api, created.json()["id"])["status"] == "succeeded"
    model = {"name": "line", "experiment_id": created.json()["id"]}
    assert api.post(f"{API}/models", json=model).status_code == 201
    xs = api.post(f"{API}/uploads", files={"file": ("xs.csv", b"0\n1\n")}).json()
    by_id = api.post(f"{API}/models/line/predict", json={"upload_id": xs["id"]})
    assert by_id.status_code == 200, by_id.text
    assert by_id.json()["predictions"] == pytest.approx([-2, 1], abs=0.1)  # y = 3x - 2
    # a string in `inputs` names a file only inside the uploads folder (or a data root)
    by_path = api.post(f"{API}/models/line/predict", json={"inputs": xs["path"]})
    assert by_path.json()["predictions"] == by_id.json()["predictions"]
    refused = api.post(f"{API}/models/line/predict", json={"inputs": "/etc/passwd"})
    assert refused.status_code == 422 and "root:" not in refused.text
    assert api.post(f"{API}/models/line/predict", json={"upload_id": "0" * 32}).status_code == 404


def test_redact_paths() -> None:
    base = Path("/srv/azuraforge")
    trace = (
        'File "/opt/venv/lib/python3.11/site-packages/pandas/io/common.py", line 873\n'
        "FileNotFoundError: [Errno 2] No such file or directory: "
        "'/srv/azuraforge/uploads/ab12.csv'\n"
        "see https://pandas.pydata.org/docs/a/b.html and /etc/passwd (or ~/x/y, 3/4 km/h)"
    )
    shown = redact_paths(trace, base)
    assert 'File "pandas/io/common.py", line 873' in shown
    assert "'uploads/ab12.csv'" in shown  # the name a config uses
    assert "https://pandas.pydata.org/docs/a/b.html" in shown  # URLs stay whole
    assert ".../etc/passwd" in shown and "~/x/y, 3/4 km/h" in shown
    assert "/srv" not in shown and "/opt" not in shown
