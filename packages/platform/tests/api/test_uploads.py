"""Uploads (issue 11, defect 5): details from the store, content streamed, listing, delete,
quotas, and content that must be what its name declares."""

from __future__ import annotations

import gzip
import hashlib
import io
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from .conftest import LiveServer, make_settings, signed_in_client

API = "/api/v1"
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
BIG = 8 * 1024 * 1024


def _client(tmp_path: Path, **settings: Any) -> TestClient:
    return signed_in_client(
        make_settings(tmp_path, **settings), run_jobs=False, serve_dashboard=False
    )


@pytest.fixture
def small_quota(tmp_path: Path) -> Iterator[TestClient]:
    with _client(tmp_path, upload_quota_user_bytes=3000, upload_quota_total_bytes=5000) as api:
        yield api


def _upload(api: TestClient, name: str, data: bytes) -> Any:
    return api.post(f"{API}/uploads", files={"file": (name, data)})


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_details_come_from_the_store_without_reading_the_file(
    api: TestClient, tmp_path: Path
) -> None:
    data = bytes(range(256)) * (BIG // 256)
    created = _upload(api, "big.npz", _zip({"a.npy": b"\x93NUMPY" + data}))
    assert created.status_code == 201, created.text
    upload = created.json()
    api.get(f"{API}/uploads/{upload['id']}")  # first-request imports and caches, untraced
    tracemalloc.start()
    try:
        details = api.get(f"{API}/uploads/{upload['id']}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert details.status_code == 200 and details.json() == upload
    assert peak < BIG / 4, f"reading an upload's details allocated {peak} bytes"
    # the record answers even when the file is gone; the content then is a clean 404
    (tmp_path / "uploads" / upload["id"]).unlink()
    assert api.get(f"{API}/uploads/{upload['id']}").json()["sha256"] == upload["sha256"]
    gone = api.get(f"{API}/uploads/{upload['id']}/content")
    assert gone.status_code == 404 and "gone" in gone.json()["error"]["message"]


def test_content_is_streamed_in_chunks(tmp_path: Path, trainer: str) -> None:
    rows = b"x,y\n" + b"".join(b"%d,%d\n" % (i, 2 * i) for i in range(BIG // 12))
    with (
        LiveServer(make_settings(tmp_path), run_jobs=False) as live,
        httpx.Client(headers=live.headers) as http,
    ):
        created = http.post(f"{live.url}{API}/uploads", files={"file": ("rows.csv", rows)})
        assert created.status_code == 201, created.text
        upload = created.json()
        url = f"{live.url}{API}/uploads/{upload['id']}/content"
        assert http.get(url).content == rows  # also pays the first request's imports untraced
        digest, size, chunks = hashlib.sha256(), 0, 0
        tracemalloc.start()
        try:
            with http.stream("GET", url) as r:
                assert r.status_code == 200
                assert r.headers["content-type"] == "application/octet-stream"
                assert r.headers["content-disposition"].startswith('attachment; filename="rows')
                assert r.headers["x-content-type-options"] == "nosniff"
                for chunk in r.iter_raw():
                    digest.update(chunk)
                    size += len(chunk)
                    chunks += 1
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert size == len(rows) == upload["size"] and digest.hexdigest() == upload["sha256"]
    # server and client in this process together never held the file whole
    assert chunks > 1 and peak < len(rows) / 4, f"{peak} bytes for a {len(rows)}-byte file"


def test_listing_is_the_callers_uploads_newest_first(api: TestClient) -> None:
    assert api.get(f"{API}/uploads").json() == {
        "items": [],
        "used_bytes": 0,
        "quota_bytes": 2 * 1024**3,
    }
    first = _upload(api, "a.csv", b"x,y\n1,2\n").json()
    second = _upload(api, "b.png", PNG).json()
    listing = api.get(f"{API}/uploads").json()
    assert [u["id"] for u in listing["items"]] == [second["id"], first["id"]]
    assert listing["items"][1] == first and first["filename"] == "a.csv"
    assert listing["used_bytes"] == first["size"] + second["size"]
    assert len(api.get(f"{API}/uploads", params={"limit": 1}).json()["items"]) == 1


def test_delete_removes_file_and_record_and_frees_the_quota(
    small_quota: TestClient, tmp_path: Path
) -> None:
    api = small_quota
    first = _upload(api, "a.csv", b"x" * 2000)
    assert first.status_code == 201
    refused = _upload(api, "b.csv", b"y" * 2000)
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert error["code"] == "quota_exceeded" and error["fields"][0]["path"] == "file"
    assert "2000 of 3000 bytes" in error["message"]  # the usage and the quota
    assert sorted(p.name for p in (tmp_path / "uploads").iterdir()) == [first.json()["id"]]

    upload_id = first.json()["id"]
    assert api.delete(f"{API}/uploads/{upload_id}").status_code == 204
    assert not (tmp_path / "uploads" / upload_id).exists()
    assert api.get(f"{API}/uploads/{upload_id}").status_code == 404
    assert api.delete(f"{API}/uploads/{upload_id}").status_code == 404
    assert api.get(f"{API}/uploads").json()["used_bytes"] == 0
    assert _upload(api, "b.csv", b"y" * 2000).status_code == 201


def test_the_total_quota_holds_for_everyone(tmp_path: Path) -> None:
    with _client(tmp_path, upload_quota_user_bytes=10_000, upload_quota_total_bytes=3000) as api:
        assert _upload(api, "a.csv", b"x" * 2500).status_code == 201
        refused = _upload(api, "b.csv", b"y" * 1000)
        assert refused.status_code == 413
        assert "2500 of 3000" in refused.json()["error"]["message"]


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        ("fake.png", b"GIF89a" + b"\0" * 20, 415, "not a PNG image"),
        ("fake.png", b"x,y\n1,2\n", 415, "not a PNG image"),
        ("data.gz", b"x,y\n1,2\n", 415, "not gzip data"),
        ("train-images.idx3-ubyte", b"\x12\x34\x08\x03rubbish", 415, "not an IDX file"),
        ("rows.csv", b"x,y\n\xff\xfe,2\n", 415, "UTF-8 text; byte 4"),
        ("rows.csv", b"x,y\n\0\0\0", 415, "must be text"),
        ("rows.json", "ä".encode()[:1], 415, "UTF-8 text"),  # cut inside a character
        ("images.zip", b"PK\x03\x04 not really a zip", 422, "not a valid zip archive"),
        ("images.zip", _zip({"cat/1.png": PNG, "dog/2.png": b"GIF89a"}), 422, "'dog/2.png'"),
        ("images.zip", _zip({"../evil.png": PNG}), 422, "unsafe path"),
        ("mnist.zip", _zip({"train-images-idx3-ubyte.gz": b"plain"}), 422, "not gzip data"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",  # bytes differ run to run
)
def test_content_must_match_its_declared_type(
    api: TestClient, tmp_path: Path, name: str, data: bytes, status: int, message: str
) -> None:
    response = _upload(api, name, data)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert message in error["message"] and error["fields"][0]["path"] == "file"
    # nothing kept: no file, no record
    assert list((tmp_path / "uploads").iterdir()) == []
    assert api.get(f"{API}/uploads").json()["items"] == []


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("digit.png", PNG),
        ("rows.csv", "date,température\n2020-01-01,1\n".encode()),
        ("train-images-idx3-ubyte.gz", gzip.compress(b"\0\0\x08\x03" + b"\0" * 12)),
        ("t10k-labels.idx1-ubyte", b"\0\0\x08\x01\0\0\0\x01\x05"),
        ("shapes.zip", _zip({"shapes/cat/1.png": PNG, "shapes/dog/1.png": PNG, "README": b"."})),
    ],
    ids=lambda value: value if isinstance(value, str) else "",  # zip and gzip carry the time
)
def test_good_files_are_accepted(api: TestClient, name: str, data: bytes) -> None:
    response = _upload(api, name, data)
    assert response.status_code == 201, response.text
    assert response.json()["size"] == len(data)
    content = api.get(f"{API}/uploads/{response.json()['id']}/content")
    assert content.status_code == 200 and content.content == data


def test_unknown_ids_are_404(api: TestClient) -> None:
    for path in ("uploads/nope", "uploads/../../etc/passwd", "uploads/" + "0" * 32 + ".csv"):
        assert api.get(f"{API}/{path}").status_code == 404
        assert api.get(f"{API}/{path}/content").status_code == 404
    assert api.delete(f"{API}/uploads/" + "0" * 32 + ".csv").status_code == 404
