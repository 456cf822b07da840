"""Listing on SQLite and PostgreSQL: filters, search, sort, keyset pagination."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from azuraforge_platform.api import create_app

from .conftest import add_user, bearer, make_settings

API = "/api/v1"


@pytest.fixture
def api_db(db_url: str, tmp_path: Path, trainer: str) -> Iterator[TestClient]:
    settings = make_settings(tmp_path, database_url=db_url)
    token = add_user(settings, "admin")
    app = create_app(settings, run_jobs=False)
    with TestClient(app, headers=bearer(token)) as client:
        yield client


def test_filters_search_sort_and_pages(api_db: TestClient) -> None:
    store = api_db.app.state.services.store  # type: ignore[attr-defined]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(25):
        store.create(
            pipeline_id="alpha" if i % 2 else "beta",
            config={"i": i},
            name=f"run {i:02d}" + (" lstm" if i % 5 == 0 else ""),
            tags=["even"] if i % 2 == 0 else ["odd", "x"],
            created_at=start + timedelta(hours=i),
        )
    ids_seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 7, "pipeline_id": "alpha"}
        if cursor:
            params["cursor"] = cursor
        page = api_db.get(f"{API}/experiments", params=params).json()
        ids_seen += [r["id"] for r in page["items"]]
        assert all(r["pipeline_id"] == "alpha" for r in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(ids_seen) == len(set(ids_seen)) == 12

    names = [
        r["name"]
        for r in api_db.get(
            f"{API}/experiments", params={"q": "LSTM", "sort": "name", "order": "asc"}
        ).json()["items"]
    ]
    assert names == ["run 00 lstm", "run 05 lstm", "run 10 lstm", "run 15 lstm", "run 20 lstm"]
    r = api_db.get(
        f"{API}/experiments",
        params=[("tag", "odd"), ("tag", "x"), ("created_after", "2026-01-01T10:00:00Z"),
                ("created_before", "2026-01-01T20:00:00+00:00"), ("with_total", "true")],
    )  # fmt: skip
    body = r.json()
    assert body["total"] == 5 and [x["name"][:6] for x in body["items"]] == [
        "run 19", "run 17", "run 15", "run 13", "run 11",
    ]  # fmt: skip
    page = api_db.get(f"{API}/experiments", params={"status": ["queued", "running"], "limit": 1})
    assert page.json()["items"][0]["name"].startswith("run 24")
    bad = api_db.get(f"{API}/experiments", params={"status": "bogus"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["path"] == "query.status.0"
    assert api_db.get(f"{API}/experiments", params={"cursor": "garbage"}).status_code == 400
    assert api_db.get(f"{API}/experiments", params={"limit": 0}).status_code == 422


def test_pages_back_and_forth_with_an_estimated_total(api_db: TestClient) -> None:
    store = api_db.app.state.services.store  # type: ignore[attr-defined]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(12):
        store.create(pipeline_id="alpha", config={}, name=f"run {i:02d}",
                     created_at=start + timedelta(hours=i))  # fmt: skip
    params = {"limit": 5, "estimate_total": "true"}
    first = api_db.get(f"{API}/experiments", params=params).json()
    assert (first["estimated_total"], first["estimate_exact"]) == (12, True)
    assert first["prev_cursor"] is None and first["total"] is None
    second = api_db.get(
        f"{API}/experiments", params={**params, "cursor": first["next_cursor"]}
    ).json()
    assert [r["name"] for r in second["items"]] == [f"run {i:02d}" for i in range(6, 1, -1)]
    back = api_db.get(f"{API}/experiments", params={**params, "cursor": second["prev_cursor"]})
    assert back.json()["items"] == first["items"] and back.json()["prev_cursor"] is None
    # a cursor from another sort order is refused, whichever way it points
    wrong = api_db.get(
        f"{API}/experiments", params={"cursor": second["prev_cursor"], "sort": "name"}
    )
    assert wrong.status_code == 400 and "different sort" in wrong.json()["error"]["message"]


def test_metrics_downsampling_keeps_peaks_on_both_backends(api_db: TestClient) -> None:
    from azuraforge_platform.store import MetricValue

    store = api_db.app.state.services.store  # type: ignore[attr-defined]
    exp = store.create(pipeline_id="alpha", config={})
    n = 6000  # over the size fetched whole: PostgreSQL reduces it in SQL
    points = [MetricValue("loss", step, 1.0 / (1 + step)) for step in range(n)]
    points[4321] = MetricValue("loss", 4321, 99.0)
    points[777] = MetricValue("loss", 777, -5.0)
    points[10] = MetricValue("loss", 10, float("nan"))
    points += [MetricValue("acc", step, step / 10) for step in range(10)]
    for i in range(0, len(points), 1000):
        store.append_metrics(exp.id, points[i : i + 1000])
    body = api_db.get(f"{API}/experiments/{exp.id}/metrics", params={"max_points": 100}).json()
    series = {s["name"]: s for s in body["series"]}
    acc, loss = series["acc"], series["loss"]
    assert acc["steps"] == list(range(10)) and not acc["downsampled"]
    assert loss["downsampled"] and loss["total_points"] == n and len(loss["steps"]) <= 100
    kept = dict(zip(loss["steps"], loss["values"], strict=True))
    assert kept[4321] == 99.0 and kept[777] == -5.0  # the peaks, at their own steps
    assert loss["steps"] == sorted(loss["steps"])
    only = api_db.get(
        f"{API}/experiments/{exp.id}/metrics", params={"name": "acc", "max_points": 5}
    ).json()["series"]
    assert [s["name"] for s in only] == ["acc"] and len(only[0]["steps"]) <= 5
    empty = store.create(pipeline_id="alpha", config={})
    assert api_db.get(f"{API}/experiments/{empty.id}/metrics").json()["series"] == []
    assert api_db.get(f"{API}/experiments/ffff/metrics").status_code == 404
