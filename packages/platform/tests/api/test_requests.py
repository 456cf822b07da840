"""Requests without workers: validation with field paths, 404s, path traversal, trailing
slashes, body limits, CORS, one error shape, models without prediction, uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment
from azuraforge_platform.store import ExperimentStore

from .conftest import make_settings, signed_in_client

API = "/api/v1"


def _error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert "Traceback" not in response.text
    return body["error"]


def _run_here(api: TestClient, experiment_id: str) -> None:
    """Run a queued experiment in this process (the test app has no workers)."""
    store: ExperimentStore = api.app.state.services.store  # type: ignore[attr-defined]
    run_experiment(experiment_id, EventService(store, InProcessEventBus()))


def test_create_validates_config_with_field_paths(api: TestClient, trainer: str) -> None:
    r = api.post(
        f"{API}/experiments",
        json={"pipeline_id": trainer, "config": {"epochs": 0, "lr": "fast", "typo": 1}},
    )
    err = _error(r, 422)
    paths = {f["path"] for f in err["fields"]}
    assert paths == {"config.epochs", "config.lr", "config.typo"}
    assert err["code"] == "invalid_config" and "epochs" in err["message"]
    # the request schema itself: missing pipeline_id, wrong types, unknown keys
    err = _error(api.post(f"{API}/experiments", json={"config": [], "tags": "x", "x": 1}), 422)
    assert {f["path"] for f in err["fields"]} == {"pipeline_id", "config", "tags", "x"}
    err = _error(api.post(f"{API}/experiments", content=b"{not json"), 422)
    assert err["fields"]
    ok = api.post(f"{API}/experiments", json={"pipeline_id": trainer, "config": {"epochs": 2}})
    assert ok.status_code == 201 and ok.json()["config"]["epochs"] == 2


def test_unknown_things_are_404_with_a_helpful_message(api: TestClient, trainer: str) -> None:
    err = _error(api.post(f"{API}/experiments", json={"pipeline_id": "nope"}), 404)
    assert "known pipelines" in err["message"] and trainer in err["message"]
    err = _error(api.get(f"{API}/pipelines/nope"), 404)
    assert trainer in err["message"]
    for path in ("experiments/0123abcd", "experiments/0123abcd/metrics", "models/none"):
        _error(api.get(f"{API}/{path}"), 404)
    _error(api.post(f"{API}/experiments/0123abcd/cancel"), 404)
    _error(api.delete(f"{API}/experiments/0123abcd"), 404)
    _error(api.get(f"{API}/no/such/route"), 404)
    err = _error(api.put(f"{API}/experiments"), 405)
    assert err["code"] == "method_not_allowed"


def test_pipelines_list_and_detail(api: TestClient, trainer: str) -> None:
    rows = {p["id"]: p for p in api.get(f"{API}/pipelines").json()["items"]}
    assert rows[trainer]["installed"] and not rows[trainer]["official"]
    assert {"stock_predictor", "image_classifier"} <= set(rows)  # the catalog is listed too
    detail = api.get(f"{API}/pipelines/{trainer}").json()
    assert detail["default_config"]["epochs"] == 30 and detail["supports_prediction"]
    assert detail["config_schema"]["properties"]["lr"]["exclusiveMinimum"] == 0
    assert not api.get(f"{API}/pipelines/{trainer}_np").json()["supports_prediction"]


def test_every_route_answers_with_and_without_trailing_slash(api: TestClient, trainer: str) -> None:
    created = api.post(f"{API}/experiments/", json={"pipeline_id": trainer})
    assert created.status_code == 201  # a POST to the slashed path is not redirected
    exp_id = created.json()["id"]
    for path in (
        "health", "pipelines", f"pipelines/{trainer}", "experiments", f"experiments/{exp_id}",
        f"experiments/{exp_id}/metrics", f"experiments/{exp_id}/logs",
        f"experiments/{exp_id}/events", f"experiments/{exp_id}/artifacts", "models",
    ):  # fmt: skip
        plain = api.get(f"{API}/{path}", follow_redirects=False)
        slashed = api.get(f"{API}/{path}/", follow_redirects=False)
        assert plain.status_code == slashed.status_code == 200, path
        assert plain.json() == slashed.json() or path == "health"
    r = api.post(f"{API}/experiments/{exp_id}/cancel/", follow_redirects=False)
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


def test_artifact_paths_cannot_escape_the_experiment_folder(
    api: TestClient, trainer: str, tmp_path: Path
) -> None:
    exp_id = api.post(f"{API}/experiments", json={"pipeline_id": trainer}).json()["id"]
    _run_here(api, exp_id)
    assert api.get(f"{API}/experiments/{exp_id}/artifacts/model.json").json()["w"] != 0
    (tmp_path / "secret.txt").write_text("top secret")
    for evil in (
        "../../secret.txt",
        "..%2F..%2Fsecret.txt",
        "%2e%2e/%2e%2e/secret.txt",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "checkpoints/../../../secret.txt",
    ):
        r = api.get(f"{API}/experiments/{exp_id}/artifacts/{evil}")
        assert r.status_code in (400, 404, 422), (evil, r.status_code)  # 422: client-normalised
        assert "top secret" not in r.text
    err = _error(api.get(f"{API}/experiments/{exp_id}/artifacts/..%2F..%2Fsecret.txt"), 400)
    assert err["code"] == "bad_path"
    _error(api.get(f"{API}/experiments/{exp_id}/artifacts/missing.bin"), 404)


def test_models_register_and_predict_errors(api: TestClient, trainer: str) -> None:
    queued = api.post(f"{API}/experiments", json={"pipeline_id": trainer}).json()["id"]
    err = _error(api.post(f"{API}/models", json={"name": "m", "experiment_id": queued}), 409)
    assert "succeeded" in err["message"]
    _error(api.post(f"{API}/models", json={"name": "m", "experiment_id": "ffff"}), 404)
    err = _error(api.post(f"{API}/models", json={"name": "bad name!", "experiment_id": "x"}), 422)
    assert err["fields"][0]["path"] == "name"
    plain = api.post(f"{API}/experiments", json={"pipeline_id": f"{trainer}_np"}).json()["id"]
    _run_here(api, plain)
    assert api.post(f"{API}/models", json={"name": "np", "experiment_id": plain}).status_code == 201
    err = _error(api.post(f"{API}/models/np/predict", json={"inputs": [1]}), 400)
    assert err["code"] == "prediction_not_supported"
    assert "does not support prediction" in err["message"]
    err = _error(
        api.post(
            f"{API}/models", json={"name": "x", "experiment_id": plain, "artifact_path": "../x"}
        ),
        400,
    )
    assert err["code"] == "bad_path"
    _error(api.post(f"{API}/models/np/predict", json={}), 422)
    _error(api.post(f"{API}/models/np/predict", json={"upload_id": "../../etc/passwd"}), 404)


def test_delete_refuses_a_running_experiment(api: TestClient, trainer: str) -> None:
    services = api.app.state.services  # type: ignore[attr-defined]
    exp_id = api.post(f"{API}/experiments", json={"pipeline_id": trainer}).json()["id"]
    services.store.claim(exp_id, "w1")
    err = _error(api.delete(f"{API}/experiments/{exp_id}"), 409)
    assert "cancel it first" in err["message"]
    cancelled = api.post(f"{API}/experiments/{exp_id}/cancel").json()
    assert cancelled["status"] == "cancelling"
    events = api.get(f"{API}/experiments/{exp_id}/events").json()
    assert events[-1]["payload"]["status"] == "cancelling"


def test_body_limits_and_uploads(tmp_path: Path, trainer: str) -> None:
    settings = make_settings(tmp_path, api_max_body_bytes=2048, upload_max_bytes=4096)
    with signed_in_client(settings, run_jobs=False, serve_dashboard=False) as api:
        big = {"pipeline_id": trainer, "name": "x" * 100, "config": {"csv_path": "y" * 5000}}
        err = _error(api.post(f"{API}/experiments", json=big), 413)
        assert "2048" in err["message"]

        def chunks() -> Any:  # no Content-Length: the limit counts the streamed bytes
            for _ in range(10):
                yield b" " * 1000

        _error(api.post(f"{API}/experiments", content=chunks()), 413)
        ok = api.post(f"{API}/uploads", files={"file": ("d.csv", b"x,y\n1,2\n")})
        assert ok.status_code == 201
        body = ok.json()
        assert body["size"] == 8 and body["kind"] == "table" and body["filename"] == "d.csv"
        assert api.get(f"{API}/uploads/{body['id']}").json()["sha256"] == body["sha256"]
        _error(api.post(f"{API}/uploads", files={"file": ("d.csv", b"1" * 6000)}), 413)
        err = _error(api.post(f"{API}/uploads", files={"file": ("run.sh", b"rm -rf /")}), 415)
        assert ".csv" in err["message"]
        _error(api.post(f"{API}/uploads", files={"file": ("e.csv", b"")}), 422)
        assert sorted(p.name for p in settings.upload_dir.iterdir()) == [body["id"]]


def test_cors_is_off_by_default_and_configurable(tmp_path: Path, trainer: str) -> None:
    headers = {"Origin": "http://example.test", "Access-Control-Request-Method": "GET"}
    with signed_in_client(make_settings(tmp_path), run_jobs=False) as api:
        r = api.get(f"{API}/health", headers=headers)
        assert "access-control-allow-origin" not in r.headers
    settings = make_settings(tmp_path, cors_origins=["http://example.test"])
    with signed_in_client(settings, run_jobs=False) as api:
        r = api.options(f"{API}/health", headers=headers)
        assert r.headers["access-control-allow-origin"] == "http://example.test"


def test_dashboard_is_served_with_a_spa_fallback(tmp_path: Path, trainer: str) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<html>dashboard</html>")
    (dist / "assets" / "app.js").write_text("console.log(1)")
    settings = make_settings(tmp_path, dashboard_dir=dist)
    with signed_in_client(settings, run_jobs=False) as api:
        assert api.get("/").text == "<html>dashboard</html>"
        assert api.get("/experiments/abc").text == "<html>dashboard</html>"  # client route
        assert api.get("/assets/app.js").text == "console.log(1)"
        assert api.get("/../../etc/passwd").text == "<html>dashboard</html>"
        _error(api.get(f"{API}/nothing"), 404)  # the API never falls back to the page
        assert api.get(f"{API}/health").status_code == 200


def test_openapi_declares_every_error_shape(api: TestClient) -> None:
    doc = api.get(f"{API}/openapi.json").json()
    assert "ErrorResponse" in doc["components"]["schemas"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for path, item in doc["paths"].items():
        for method, op in item.items():
            codes = set(op["responses"])
            ok = {c for c in codes if c.startswith("2")}
            assert ok, (method, path)
            for code in codes - ok:
                schema = op["responses"][code]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (path, code)
    assert api.get(f"{API}/docs").status_code == 200
