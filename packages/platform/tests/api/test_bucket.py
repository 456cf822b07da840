"""The API with artifacts in an S3-compatible bucket (moto's S3 over real HTTP): downloads
stream from the bucket, a registered model predicts from an empty cache, deleting an
experiment deletes its keys, and hostile paths never become keys."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import boto3

from ..conftest import bucket_objects
from .conftest import make_settings, signed_in_client
from .test_predict import _error, _store, _train

API = "/api/v1"


def test_artifacts_models_and_deletion_go_through_the_bucket(
    tmp_path: Path, trainer: str, s3_settings: dict[str, str]
) -> None:
    settings = make_settings(tmp_path, **s3_settings)
    cache = tmp_path / "artifact-cache"
    with signed_in_client(settings, run_jobs=False, serve_dashboard=False) as client:
        store = _store(client)
        experiment_id = _train(store, client, trainer, {"epochs": 20})
        kept_id = _train(store, client, trainer, {"epochs": 2})
        keys = set(bucket_objects(s3_settings))
        assert {f"runs/{experiment_id}/model.json", f"runs/{experiment_id}/report.md"} <= keys
        shutil.rmtree(store.artifact_root)  # the worker's machine: nothing of it is here

        # downloads are streamed from the bucket and leave no copy behind
        got = client.get(f"{API}/experiments/{experiment_id}/artifacts/model.json")
        assert got.status_code == 200, got.text
        model = got.json()
        assert model["w"] > 1 and got.headers["content-type"] == "application/json"
        report = client.get(f"{API}/experiments/{experiment_id}/artifacts/report.md?download=1")
        assert report.text.startswith("# Fit") and "attachment" in report.headers[
            "content-disposition"
        ] and report.headers["content-length"] == str(len(report.content))  # fmt: skip
        assert not store.artifact_root.exists() and not cache.exists()
        err = _error(client.get(f"{API}/experiments/{experiment_id}/artifacts/nope.bin"), 404)
        assert "has no artifact 'nope.bin'" in err["message"]

        # hostile paths: refused, and never another experiment's keys
        for evil in (
            f"..%2F{kept_id}%2Fmodel.json",
            f"checkpoints%2F..%2F..%2F{kept_id}%2Fmodel.json",
            "%2Fetc%2Fpasswd",
            "a%5C..%5Cmodel.json",
            "a%2F%2Fb",
        ):
            r = client.get(f"{API}/experiments/{experiment_id}/artifacts/{evil}")
            assert r.status_code in (400, 404), (evil, r.status_code)
            assert '"w"' not in r.text
        err = _error(client.get(f"{API}/experiments/{experiment_id}/artifacts/..%2Fx"), 400)
        assert err["code"] == "bad_path"
        body = {"name": "x", "experiment_id": experiment_id, "artifact_path": "../x"}
        assert _error(client.post(f"{API}/models", json=body), 400)["code"] == "bad_path"
        body = {"name": "x", "experiment_id": experiment_id, "artifact_path": "gone.json"}
        _error(client.post(f"{API}/models", json=body), 404)

        # a model registered and used from an empty local cache
        registered = client.post(
            f"{API}/models", json={"name": "line", "experiment_id": experiment_id}
        )
        assert registered.status_code == 201, registered.text
        predicted = client.post(f"{API}/models/line/predict", json={"inputs": [0.0, 1.0]})
        assert predicted.status_code == 200, predicted.text
        assert predicted.json()["predictions"] == [model["b"], model["w"] + model["b"]]
        assert any(cache.rglob("model.json"))  # fetched into this machine's cache
        # a new version in the bucket is the one used next (the cache follows its ETag)
        client_s3 = boto3.client("s3", endpoint_url=s3_settings["artifact_s3_endpoint_url"])
        client_s3.put_object(
            Bucket=s3_settings["artifact_s3_bucket"],
            Key=f"runs/{experiment_id}/model.json",
            Body=json.dumps({"w": 10.0, "b": 1.0}).encode(),
        )
        again = client.post(f"{API}/models/line/predict", json={"inputs": [2.0]})
        assert again.json()["predictions"] == [21.0]
        client_s3.delete_object(
            Bucket=s3_settings["artifact_s3_bucket"], Key=f"runs/{experiment_id}/model.json"
        )
        err = _error(client.post(f"{API}/models/line/predict", json={"inputs": [2.0]}), 404)
        assert "is gone" in err["message"]

        # deleting the experiment deletes its keys and its cached copies, and no others
        assert client.delete(f"{API}/models/line").status_code == 204
        assert client.delete(f"{API}/experiments/{experiment_id}").status_code == 204
        left = set(bucket_objects(s3_settings))
        assert not any(k.startswith(f"runs/{experiment_id}/") for k in left)
        assert f"runs/{kept_id}/model.json" in left
        assert not (cache / experiment_id).exists()
        _error(client.get(f"{API}/experiments/{experiment_id}/artifacts/model.json"), 404)


def _check_ranges(client, url: str, *, bucket: bool) -> None:
    """The answers to Range requests that local files (Starlette's FileResponse) and the
    bucket (its own range requests) must give alike."""
    whole = client.get(url)
    assert whole.status_code == 200
    body = whole.content
    n = len(body)
    assert n > 12
    partial = {
        "bytes=0-4": (0, 4),
        "bytes=5-": (5, n - 1),
        "bytes=-3": (n - 3, n - 1),
        "bytes=2-2": (2, 2),
        "bytes=0-99999999": (0, n - 1),  # the end is clamped to the object
    }
    for header, (first, last) in partial.items():
        got = client.get(url, headers={"Range": header})
        assert got.status_code == 206, (header, got.status_code, got.text)
        assert got.content == body[first : last + 1], header
        assert got.headers["content-range"] == f"bytes {first}-{last}/{n}", header
        assert got.headers["content-length"] == str(last - first + 1)
        assert got.headers["accept-ranges"] == "bytes"
    for header in (f"bytes={n}-", f"bytes={n + 10}-{n + 20}", "bytes=-0"):
        got = client.get(url, headers={"Range": header})
        assert got.status_code == 416, (header, got.status_code)
        assert got.headers["content-range"] == f"bytes */{n}"
    for header in ("items=0-4", "bytes=5-2", "bytes=abc", "bytes="):
        got = client.get(url, headers={"Range": header})
        assert got.status_code == 400, (header, got.status_code)
    # the path is checked before any range: outside the folder 400, no such file 404
    folder = url.rsplit("/", 1)[0]
    ranged = {"Range": "bytes=0-4"}
    assert _error(client.get(f"{folder}/..%2Fx", headers=ranged), 400)["code"] == "bad_path"
    _error(client.get(f"{folder}/nope.bin", headers=ranged), 404)
    # If-Range that does not match: the whole file, which is always a correct answer
    got = client.get(url, headers={"Range": "bytes=0-4", "If-Range": '"stale"'})
    assert got.status_code == 200 and got.content == body
    if bucket:  # S3 cannot answer several ranges at once: the whole object
        got = client.get(url, headers={"Range": "bytes=0-1, 4-5"})
        assert got.status_code == 200 and got.content == body
        huge = "bytes=" + "9" * 30 + "-"  # past int64: not a range S3 is asked for
        assert _error(client.get(url, headers={"Range": huge}), 400)["code"] == "bad_range"
        err = _error(client.get(url, headers={"Range": f"bytes={n}-"}), 416)
        assert err["code"] == "range_not_satisfiable" and str(n) in err["message"]


def test_range_requests_are_answered_alike_from_the_bucket_and_from_local_files(
    tmp_path: Path, trainer: str, s3_settings: dict[str, str]
) -> None:
    """A resumed download or a seek asks for a byte range: 206 with the part, 416 past the
    end, 400 for a header that is not a byte range, whether the file is local or in the
    bucket (where the API turns it into the bucket's own range request)."""
    local = make_settings(tmp_path / "local")
    with signed_in_client(local, run_jobs=False, serve_dashboard=False) as client:
        experiment_id = _train(_store(client), client, trainer, {"epochs": 2})
        _check_ranges(
            client, f"{API}/experiments/{experiment_id}/artifacts/report.md", bucket=False
        )
    remote = make_settings(tmp_path / "remote", **s3_settings)
    with signed_in_client(remote, run_jobs=False, serve_dashboard=False) as client:
        store = _store(client)
        experiment_id = _train(store, client, trainer, {"epochs": 2})
        shutil.rmtree(store.artifact_root)  # only the bucket has the files now
        _check_ranges(client, f"{API}/experiments/{experiment_id}/artifacts/report.md", bucket=True)


def test_health_reports_the_bucket(tmp_path: Path, s3_settings: dict[str, str]) -> None:
    """/health says whether the bucket is there: a missing one or an unreachable server
    makes the platform "degraded" at once, not at a run's first upload."""
    bucket = s3_settings["artifact_s3_bucket"]
    with signed_in_client(make_settings(tmp_path / "a", **s3_settings)) as client:
        health = client.get(f"{API}/health").json()
        assert health["status"] == "ok"
        assert health["storage"] == {"ok": True, "kind": "s3", "detail": f"s3://{bucket}/runs/"}
    missing = {**s3_settings, "artifact_s3_bucket": f"{bucket}-missing"}
    with signed_in_client(make_settings(tmp_path / "b", **missing)) as client:
        health = client.get(f"{API}/health").json()
        assert health["status"] == "degraded" and not health["storage"]["ok"]
        assert f"the bucket '{bucket}-missing' does not exist" in health["storage"]["detail"]
        client.headers.pop("Authorization", None)
        client.cookies.clear()
        public = client.get(f"{API}/health").json()  # anonymous: the verdict, no details
        assert public["status"] == "degraded" and public["storage"]["detail"] == ""
    nowhere = {**s3_settings, "artifact_s3_endpoint_url": "http://127.0.0.1:9"}  # discard port
    with signed_in_client(make_settings(tmp_path / "c", **nowhere)) as client:
        health = client.get(f"{API}/health").json()
        assert health["status"] == "degraded" and not health["storage"]["ok"]
        assert "127.0.0.1:9" in health["storage"]["detail"]
