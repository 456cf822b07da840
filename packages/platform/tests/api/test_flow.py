"""The whole flow over real HTTP and WebSocket, with the embedded executor training in child
processes: create, stream live, succeed, read metrics and artifacts, register, predict,
re-run, cancel, delete."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from azuraforge_platform.client import ApiError, AzuraForgeClient

from .conftest import LiveServer


def _ws(live: LiveServer, experiment_id: str, after: int = 0) -> str:
    return f"ws://127.0.0.1:{live.port}/api/v1/experiments/{experiment_id}/events?after={after}"


@pytest.mark.slow
def test_full_flow(live: LiveServer, trainer: str, tmp_path: Path) -> None:
    af = AzuraForgeClient(live.url)
    exp = af.create_experiment(
        trainer, {"epochs": 40, "sleep": 0.02, "lr": 0.3}, name="fit", tags=["api", "flow"]
    )
    assert exp.status.value == "queued" and exp.config["epochs"] == 40
    assert exp.config["samples"] == 64  # defaults are filled in and stored

    # Live: events arrive while it runs, in seq order, and the socket closes after the end.
    messages = []
    with connect(_ws(live, exp.id), open_timeout=30, additional_headers=live.headers) as ws:
        while True:
            message = json.loads(ws.recv(timeout=120))
            messages.append(message)
            if message["type"] == "end":
                break
    events = [m for m in messages if "seq" in m]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    types = [e["type"] for e in events]
    # announced when created, then claimed by a worker
    assert [e["payload"]["status"] for e in events[:2]] == ["queued", "running"]
    assert types[:2] == ["status", "status"]
    assert types.count("metrics") == 40 and "progress" in types and "artifact" in types
    assert events[-1]["type"] == "status" and events[-1]["payload"]["status"] == "succeeded"
    assert messages[-1] == {"type": "end", "status": "succeeded", "last_seq": events[-1]["seq"]}

    done = af.get_experiment(exp.id)
    assert done.status.value == "succeeded" and done.summary is not None
    assert abs(done.summary["w"] - 3) < 0.2 and abs(done.summary["b"] + 2) < 0.2  # it learned

    full = af.metrics(exp.id, max_points=1000).series[0]
    assert full.name == "loss" and full.total_points == 40 and not full.downsampled
    assert full.steps == list(range(1, 41))
    small = af.metrics(exp.id, ["loss"], max_points=10).series[0]
    assert small.downsampled and len(small.steps) <= 10
    assert max(v for v in small.values if v is not None) == max(full.values)  # peak kept
    assert small.steps[0] == 1 and small.steps[-1] == 40

    logs = af.logs(exp.id).items
    assert any("fitted w=" in line.message for line in logs)
    paths = {a.path: a for a in af.artifacts(exp.id)}
    assert set(paths) == {"model.json", "report.md"} and paths["model.json"].kind == "model"
    saved = af.download_artifacts(exp.id, tmp_path / "dl")
    assert {p.name for p in saved} == {"model.json", "report.md"}
    assert json.loads((tmp_path / "dl" / "model.json").read_text())["w"] == done.summary["w"]

    # A model from the run, and predictions on raw inputs.
    model = af.register_model("line", exp.id, description="y = 3x - 2")
    assert model.pipeline_id == trainer and model.artifact_path == "model.json"
    assert [m.name for m in af.models()] == ["line"]
    with pytest.raises(ApiError) as taken:
        af.register_model("line", exp.id)
    assert taken.value.status == 409
    preds = af.predict("line", [0.0, 1.0]).predictions
    assert preds[0] == pytest.approx(-2, abs=0.2) and preds[1] == pytest.approx(1, abs=0.2)
    with pytest.raises(ApiError) as bad:
        af.predict("line", [[1, 2], [3, 4]])
    assert bad.value.status == 422 and "inputs" in bad.value.message

    # Re-run with a change: a child experiment with the merged config.
    child = af.rerun(exp.id, {"epochs": 3})
    assert child.parent_id == exp.id and child.config["epochs"] == 3
    assert child.config["sleep"] == 0.02 and child.tags == ["api", "flow"]
    assert af.wait(child.id, progress=False, timeout=120).status.value == "succeeded"

    # Cancel a long run while it trains.
    long = af.create_experiment(trainer, {"epochs": 100000, "sleep": 0.01})
    for event in af.stream_events(long.id):
        if event["type"] == "metrics":
            break
    assert af.cancel(long.id).status.value in ("cancelling", "cancelled")
    assert af.wait(long.id, progress=False, timeout=120).status.value == "cancelled"
    with pytest.raises(ApiError) as again:
        af.cancel(long.id)
    assert again.value.status == 409

    # Delete removes the records and the artifact folder (and the model registered from it).
    folder = live.settings.resolved_artifact_root / exp.id
    assert (folder / "model.json").is_file()
    af.delete(exp.id)
    assert not folder.exists()
    for call in (lambda: af.get_experiment(exp.id), lambda: af.model("line")):
        with pytest.raises(ApiError) as gone:
            call()
        assert gone.value.status == 404
    af.close()


@pytest.mark.slow
def test_reconnect_with_after_sees_every_event_exactly_once(live: LiveServer, trainer: str) -> None:
    af = AzuraForgeClient(live.url)
    exp = af.create_experiment(trainer, {"epochs": 60, "sleep": 0.06})
    seen: list[int] = []
    # First connection: read a few live events, then drop the socket mid-run.
    with connect(_ws(live, exp.id), open_timeout=30, additional_headers=live.headers) as ws:
        while len(seen) < 8:
            message = json.loads(ws.recv(timeout=120))
            if "seq" in message:
                seen.append(message["seq"])
    assert af.get_experiment(exp.id).status.value == "running"  # really mid-run
    # Reconnect from the last seq, twice more, the last one until the end.
    for stop_after in (5, None):
        with connect(
            _ws(live, exp.id, after=seen[-1]), open_timeout=30, additional_headers=live.headers
        ) as ws:
            got = 0
            while True:
                message = json.loads(ws.recv(timeout=120))
                if message["type"] == "end":
                    break
                if "seq" in message:
                    seen.append(message["seq"])
                    got += 1
                    if stop_after is not None and got == stop_after:
                        break
    final = af.get_experiment(exp.id)
    assert final.status.value == "succeeded"
    assert seen == list(range(1, final.last_event_seq + 1))
    # A client that connects after the end gets the backlog and the end at once.
    with connect(
        _ws(live, exp.id, after=final.last_event_seq - 1),
        open_timeout=30,
        additional_headers=live.headers,
    ) as ws:
        last = json.loads(ws.recv(timeout=30))
        assert last["seq"] == final.last_event_seq and last["payload"]["status"] == "succeeded"
        assert json.loads(ws.recv(timeout=30))["type"] == "end"
    af.close()


@pytest.mark.slow
def test_uploaded_csv_feeds_a_run(live: LiveServer, trainer: str, tmp_path: Path) -> None:
    csv = tmp_path / "points.csv"
    csv.write_text("x,y\n" + "\n".join(f"{x / 10},{2 * x / 10 + 1}" for x in range(-10, 11)))
    af = AzuraForgeClient(live.url)
    upload = af.upload(csv)
    # the answer names it the way a config does, relative to the data folder
    assert upload.path == f"uploads/{upload.id}" and upload.kind == "table"
    stored = live.settings.upload_dir / upload.id
    assert stored.read_text() == csv.read_text()
    with httpx.Client(headers=live.headers) as raw:
        evil = raw.post(
            f"{live.url}/api/v1/uploads",
            files={"file": ("../../evil.csv", b"x,y\n1,2\n")},
        )
    assert evil.status_code == 201 and evil.json()["path"] == f"uploads/{evil.json()['id']}"
    assert (live.settings.upload_dir / evil.json()["id"]).is_file()
    exp = af.create_experiment(trainer, {"epochs": 200, "csv_path": upload.path, "lr": 0.3})
    done = af.wait(exp.id, progress=False, timeout=120)
    assert done.status.value == "succeeded", done.error
    assert done.summary is not None and done.summary["w"] == pytest.approx(2, abs=0.05)
    af.close()
