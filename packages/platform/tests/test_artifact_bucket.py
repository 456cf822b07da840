"""Artifacts in an S3-compatible bucket (AZURAFORGE_ARTIFACT_S3_BUCKET), against moto's S3
served over real HTTP: runs upload their files and checkpoints, resume from the bucket on a
machine whose folder is empty, and deleting an experiment deletes its keys."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import Field

from azuraforge_pipeline import Pipeline, PipelineConfig, PipelineRegistry, RunContext
from azuraforge_platform.events import EventService, InProcessEventBus
from azuraforge_platform.execution import run_experiment
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import (
    ArtifactBucket,
    ArtifactNotFoundError,
    ArtifactPathError,
    ExperimentStatus,
    ExperimentStore,
)
from azuraforge_platform.store.bucket import clean_relative

from .conftest import bucket_objects

S = ExperimentStatus

# What the pipeline below calls to see the bucket's keys while it runs (set by the test).
_keys_in_bucket: Callable[[], set[str]] = set


class Saver(Pipeline):
    """Checkpoints each epoch, writes a checkpoint around `save_checkpoint` (as a Learner
    does), reports an artifact, and leaves a file in its folder without reporting it."""

    id = "saver"
    name = "Saver"

    class Config(PipelineConfig):
        epochs: int = Field(3, ge=1)
        fail: bool = False
        die_at: int | None = Field(None, description="attempt 1 dies after this epoch's metric")

    def run(self, config: Config, context: RunContext) -> dict[str, object]:
        found = context.load_checkpoint()
        start = 1 if found is None else int(found.meta["epoch"]) + 1
        for epoch in range(start, config.epochs + 1):
            context.log_metrics({"loss": 1 / epoch}, epoch=epoch)
            if epoch == config.die_at and context.attempt == 1:
                raise _Died  # as a SIGKILL would: no outcome recorded, the run stays running
            context.save_checkpoint({"w": [float(epoch)]}, {"epoch": epoch})
        side = context.checkpoint_dir / "learner.bin"
        tmp = context.checkpoint_dir / ".learner.bin.tmp"
        tmp.write_bytes(b"learner state")
        os.replace(tmp, side)
        deadline = time.monotonic() + 30
        key = f"{context.experiment_id}/checkpoints/learner.bin"
        while not any(k.endswith(key) for k in _keys_in_bucket()):  # the mirror's thread
            assert time.monotonic() < deadline, "learner.bin never reached the bucket"
            time.sleep(0.05)
        context.save_artifact("model.json", {"w": config.epochs}, kind="model")
        (context.artifact_dir / "plots").mkdir(exist_ok=True)
        (context.artifact_dir / "plots" / "loss.txt").write_text("not reported")
        if config.fail:
            raise RuntimeError("failed on purpose after saving")
        return {"started_at": start}


class _Died(BaseException):
    pass


@pytest.fixture
def registry() -> PipelineRegistry:
    reg = PipelineRegistry()
    reg.register(Saver)
    return reg


def _store(db_url: str, root: Path, s3: dict[str, str]) -> ExperimentStore:
    settings = Settings(data_dir=root, **s3)  # type: ignore[arg-type]
    return ExperimentStore(
        db_url, root / "artifacts", bucket=ArtifactBucket.from_settings(settings)
    )


def test_keys_are_built_from_clean_relative_paths_only(tmp_path: Path) -> None:
    for evil in (
        "../x", "a/../../x", "/etc/passwd", "a//b", "", "/", "./a", "a/.", "a\x00b",
        "..\\..\\x", "checkpoints/../../other/model.json",
    ):  # fmt: skip
        with pytest.raises(ArtifactPathError):
            clean_relative(evil)
    assert clean_relative("plots/loss.png") == "plots/loss.png"
    bucket = ArtifactBucket(None, "b", prefix="/a/b/", cache_dir=tmp_path)
    assert bucket.key("0123", "plots/x.png") == "a/b/0123/plots/x.png"
    assert bucket.url("0123") == "s3://b/a/b/0123/"
    for bad_id in ("", ".", "..", "a/b"):
        with pytest.raises(ValueError):
            bucket.folder_key(bad_id)


def test_a_run_puts_its_files_and_checkpoints_in_the_bucket(
    db_url: str, tmp_path: Path, s3_settings: dict[str, str], registry: PipelineRegistry
) -> None:
    global _keys_in_bucket
    _keys_in_bucket = lambda: set(bucket_objects(s3_settings))  # noqa: E731
    store = _store(db_url, tmp_path / "node1", s3_settings)
    exp = store.create(pipeline_id="saver", config={"epochs": 3})
    final = run_experiment(exp.id, EventService(store, InProcessEventBus()), registry=registry,
                           heartbeat_seconds=0.1)  # fmt: skip
    assert final.status is S.succeeded, final.error
    objects = bucket_objects(s3_settings)
    folder = store.artifact_dir(exp.id)
    expected = {
        "checkpoints/checkpoint.npz", "checkpoints/checkpoint.json", "checkpoints/learner.bin",
        "model.json", "plots/loss.txt",
    }  # fmt: skip
    assert set(objects) == {f"runs/{exp.id}/{name}" for name in expected}  # no temp files
    for name in expected:
        assert objects[f"runs/{exp.id}/{name}"] == (folder / name).read_bytes(), name
    assert (
        store.artifact_location(exp.id)
        == f"s3://{s3_settings['artifact_s3_bucket']}/runs/{exp.id}/"
    )
    # the API's machine has no folder at all: check_artifact asks the bucket
    elsewhere = _store(db_url, tmp_path / "api", s3_settings)
    elsewhere.check_artifact(exp.id, "model.json")
    with pytest.raises(ArtifactNotFoundError):
        elsewhere.check_artifact(exp.id, "missing.json")
    with pytest.raises(ArtifactPathError):
        elsewhere.check_artifact(exp.id, "../other/model.json")
    store.close()
    elsewhere.close()


def test_a_failed_run_still_uploads_what_it_wrote(
    db_url: str, tmp_path: Path, s3_settings: dict[str, str], registry: PipelineRegistry
) -> None:
    global _keys_in_bucket
    _keys_in_bucket = lambda: set(bucket_objects(s3_settings))  # noqa: E731
    store = _store(db_url, tmp_path / "node1", s3_settings)
    exp = store.create(pipeline_id="saver", config={"epochs": 2, "fail": True})
    final = run_experiment(exp.id, EventService(store, InProcessEventBus()), registry=registry,
                           heartbeat_seconds=0.1)  # fmt: skip
    assert final.status is S.failed and "failed on purpose" in (final.error or "")
    assert f"runs/{exp.id}/plots/loss.txt" in bucket_objects(s3_settings)
    store.close()


def test_a_retried_run_resumes_from_the_bucket_on_an_empty_machine(
    db_url: str, tmp_path: Path, s3_settings: dict[str, str], registry: PipelineRegistry
) -> None:
    """Attempt 1 on node1 dies in epoch 3 (its metric stored, its checkpoint not); attempt 2
    runs on node2, whose artifact folder is empty, from the bucket's checkpoint of epoch 2."""
    global _keys_in_bucket
    _keys_in_bucket = lambda: set(bucket_objects(s3_settings))  # noqa: E731
    node1 = _store(db_url, tmp_path / "node1", s3_settings)
    exp = node1.create(pipeline_id="saver", config={"epochs": 4, "die_at": 3}, max_attempts=2)
    with pytest.raises(_Died):
        run_experiment(exp.id, EventService(node1, InProcessEventBus()), registry=registry,
                       heartbeat_seconds=0.1)  # fmt: skip
    shutil.rmtree(node1.artifact_root)  # that machine is gone, and its disk with it
    assert node1.recover(exp.id, reason="node1 is gone") is not None  # what a reaper does
    node2 = _store(db_url, tmp_path / "node2", s3_settings)
    assert node2.get(exp.id).status is S.queued and not node2.artifact_dir(exp.id).exists()
    final = run_experiment(exp.id, EventService(node2, InProcessEventBus()), registry=registry,
                           heartbeat_seconds=0.1)  # fmt: skip
    assert final.status is S.succeeded and final.attempts == 2, final.error
    assert final.summary == {"started_at": 3}  # epochs 1 and 2 were not trained again
    assert [m.step for m in node2.metrics(exp.id)] == [1, 2, 3, 4]  # epoch 3 stored once
    node1.close()
    node2.close()


def test_deleting_an_experiment_deletes_its_keys_and_no_others(
    db_url: str, tmp_path: Path, s3_settings: dict[str, str], registry: PipelineRegistry
) -> None:
    global _keys_in_bucket
    _keys_in_bucket = lambda: set(bucket_objects(s3_settings))  # noqa: E731
    store = _store(db_url, tmp_path / "node1", s3_settings)
    events = EventService(store, InProcessEventBus())
    doomed = store.create(pipeline_id="saver", config={"epochs": 1})
    kept = store.create(pipeline_id="saver", config={"epochs": 1})
    for exp in (doomed, kept):
        run_experiment(exp.id, events, registry=registry, heartbeat_seconds=0.1)
    # a key that starts like the doomed one's folder, but is not in it
    bucket = store.bucket
    assert bucket is not None
    (tmp_path / "x").write_text("x")
    bucket.client.upload_file(str(tmp_path / "x"), bucket.bucket, f"runs/{doomed.id}x/file")
    fetched = store.artifact_file(doomed.id, "model.json")  # now in this machine's cache
    assert fetched.is_file() and fetched.is_relative_to(tmp_path / "node1" / "artifact-cache")
    store.delete(doomed.id)
    left = set(bucket_objects(s3_settings))
    assert not any(k.startswith(f"runs/{doomed.id}/") for k in left)
    assert f"runs/{doomed.id}x/file" in left and f"runs/{kept.id}/model.json" in left
    assert not fetched.exists() and not store.artifact_dir(doomed.id).exists()
    store.close()


def test_the_cache_serves_the_buckets_current_version(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    bucket = ArtifactBucket.from_settings(Settings(data_dir=tmp_path, **s3_settings))  # type: ignore[arg-type]
    assert bucket is not None
    source = tmp_path / "model.json"
    source.write_text('{"w": 1}')
    bucket.upload("e1", "models/model.json", source)
    first = bucket.fetch("e1", "models/model.json")
    assert first.read_text() == '{"w": 1}' and bucket.fetch("e1", "models/model.json") == first
    source.write_text('{"w": 2}')
    bucket.upload("e1", "models/model.json", source)
    second = bucket.fetch("e1", "models/model.json")
    assert second.read_text() == '{"w": 2}' and not first.exists()  # the old copy is gone
    with pytest.raises(ArtifactNotFoundError):
        bucket.fetch("e1", "models/other.json")
    with pytest.raises(ArtifactPathError):
        bucket.fetch("e1", "../e2/models/model.json")


def test_the_cache_keeps_its_size_by_dropping_the_least_recently_used(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    settings = Settings(data_dir=tmp_path, artifact_cache_max_mb=1, **s3_settings)  # type: ignore[arg-type]
    bucket = ArtifactBucket.from_settings(settings)
    assert bucket is not None and bucket.cache_max_bytes == 1024 * 1024
    bucket.cache_max_bytes = 1000  # bytes: three 400-byte files do not fit
    source = tmp_path / "blob"
    for name in "abc":
        source.write_bytes(name.encode() * 400)
        bucket.upload("e1", f"{name}.bin", source)
    a, b = bucket.fetch("e1", "a.bin"), bucket.fetch("e1", "b.bin")
    long_ago = time.time() - 3600
    os.utime(a, (long_ago, long_ago))
    os.utime(b, (long_ago + 10, long_ago + 10))  # used after a
    c = bucket.fetch("e1", "c.bin")  # 1,200 bytes: a, the least recently used, goes
    assert not a.exists() and b.read_bytes() == b"b" * 400 and c.exists()
    # a hit marks its copy as used now; copies used within the last minute are never
    # dropped (a fetch's caller opens the file next), even over the limit
    assert bucket.fetch("e1", "b.bin") == b and b.stat().st_mtime > long_ago + 10
    a = bucket.fetch("e1", "a.bin")
    assert a.read_bytes() == b"a" * 400 and b.exists() and c.exists()
    os.utime(c, (long_ago, long_ago))
    assert bucket.trim_cache() == 400 and not c.exists() and a.exists() and b.exists()
    assert bucket.trim_cache() == 0  # within the limit now
    # a dropped copy is fetched again when asked for
    assert bucket.fetch("e1", "c.bin").read_bytes() == b"c" * 400


class _CountingHeads:
    """The real client, counting its HEAD-bucket requests (each sleeps 0.2 s first, so
    that concurrent checks overlap)."""

    def __init__(self, client: object) -> None:
        self.client = client
        self.heads = 0

    def head_bucket(self, **kwargs: object) -> object:
        self.heads += 1
        time.sleep(0.2)
        return self.client.head_bucket(**kwargs)  # type: ignore[attr-defined]


def test_the_bucket_check_is_shared_and_kept_for_a_while(
    tmp_path: Path, s3_settings: dict[str, str]
) -> None:
    """/health is public: however often and however many at once it is asked, the bucket's
    server gets one HEAD request per `check_max_age`, and a missing bucket keeps failing
    with its reason (never a cached success, never a lost reason)."""
    import concurrent.futures

    import boto3

    client = boto3.client("s3", endpoint_url=s3_settings["artifact_s3_endpoint_url"])
    name = s3_settings["artifact_s3_bucket"]
    for bucket_name, error in ((name, None), (f"{name}-missing", LookupError)):
        counting = _CountingHeads(client)
        bucket = ArtifactBucket(
            client, bucket_name, cache_dir=tmp_path / bucket_name, check_client=counting
        )
        bucket.check_max_age = 600.0  # no expiry while the first part runs, however slow

        def check(bucket: ArtifactBucket = bucket) -> str:
            try:
                bucket.check()
                return "ok"
            except Exception as exc:
                return f"{type(exc).__name__}: {exc}"

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: check(), range(16)))
        expected = (
            "ok" if error is None else f"LookupError: the bucket {bucket_name!r} does not exist"
        )
        assert answers == [expected] * 16
        assert counting.heads == 1
        assert [check() for _ in range(5)] == [expected] * 5 and counting.heads == 1
        bucket.check_max_age = 0.0  # every answer is too old now: asked again
        assert check() == expected and counting.heads == 2
