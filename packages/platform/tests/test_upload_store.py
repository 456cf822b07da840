"""UploadStore on SQLite and PostgreSQL: records, listing by owner, bytes used, delete, and a
quota that two parallel uploads cannot both squeeze past."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from azuraforge_platform.store import (
    ExperimentStore,
    UploadQuotaError,
    UploadRecord,
    UploadStore,
)


def _add(
    uploads: UploadStore, upload_id: str, owner: str | None, size: int, **quota: Any
) -> UploadRecord:
    return uploads.add(
        upload_id=upload_id,
        owner=owner,
        filename=f"{upload_id}.csv",
        size=size,
        sha256="0" * 64,
        kind="table",
        **quota,
    )


def test_records_by_owner(store: ExperimentStore) -> None:
    uploads = UploadStore(store)
    a1 = _add(uploads, "a1", "alice", 100)
    _add(uploads, "b1", "bob", 40)
    a2 = _add(uploads, "a2", "alice", 5)
    _add(uploads, "n1", None, 7)
    assert uploads.get("a1") == a1 and uploads.get("nope") is None
    assert [u.id for u in uploads.list("alice")] == [a2.id, a1.id]  # newest first
    assert [u.id for u in uploads.list(None)] == ["n1"]  # no owner is its own group
    assert [u.id for u in uploads.list("alice", limit=1)] == [a2.id]
    assert (uploads.used_bytes("alice"), uploads.used_bytes("bob")) == (105, 40)
    assert (uploads.used_bytes(None), uploads.used_bytes("carol"), uploads.total_bytes()) == (
        7,
        0,
        152,
    )
    assert uploads.delete("a1") and not uploads.delete("a1")
    assert uploads.used_bytes("alice") == 5 and uploads.total_bytes() == 52


def test_quotas_per_owner_and_in_total(store: ExperimentStore) -> None:
    uploads = UploadStore(store)
    _add(uploads, "a1", "alice", 600, user_quota=1000, total_quota=1500)
    with pytest.raises(
        UploadQuotaError, match="the uploads of 'alice' take 600 of 1000 bytes"
    ) as err:
        _add(uploads, "a2", "alice", 401, user_quota=1000, total_quota=1500)
    assert (err.value.used, err.value.quota) == (600, 1000)
    _add(uploads, "a2", "alice", 400, user_quota=1000, total_quota=1500)  # exactly full
    _add(uploads, "b1", "bob", 500, user_quota=1000, total_quota=1500)
    with pytest.raises(UploadQuotaError, match="uploads use 1500 of 1500 bytes"):
        _add(uploads, "b2", "bob", 1, user_quota=1000, total_quota=1500)
    assert uploads.get("a2") is not None and uploads.get("b2") is None


def test_parallel_uploads_cannot_both_pass_the_quota(store: ExperimentStore) -> None:
    uploads = UploadStore(store)
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def one(i: int) -> None:
        start.wait()
        try:
            _add(uploads, f"u{i}", "alice", 600, user_quota=1000)
            outcomes.append("stored")
        except UploadQuotaError:
            outcomes.append("refused")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["refused", "refused", "refused", "stored"]
    assert uploads.used_bytes("alice") == 600
