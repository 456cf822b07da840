"""`ArtifactBucket`: experiments' artifact folders in an S3-compatible bucket (opt-in).

With `AZURAFORGE_ARTIFACT_S3_BUCKET` set, the bucket is where an experiment's files live for
good, under `<prefix><experiment id>/<relative path>`: runs write to their local folder (the
working copy) and upload to the bucket, and whoever reads an artifact reads the bucket, so
nodes need no shared folder. Credentials come only from boto3's own chain (AWS_* variables,
~/.aws, an instance role); nothing here reads or logs them.

Keys are built from validated relative paths only (`clean_relative`): no `..`, no absolute
path, no empty part, so no request can name another experiment's keys.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from azuraforge_platform.store.records import (
    ArtifactNotFoundError,
    ArtifactPathError,
    ArtifactRangeError,
)

if TYPE_CHECKING:
    from azuraforge_platform.settings import Settings

__all__ = [
    "ArtifactBucket",
    "BucketObject",
    "check_experiment_id",
    "clean_relative",
    "one_byte_range",
]

_CHUNK = 1024 * 1024
_CACHE_GRACE_S = 60.0  # a copy used this recently is never trimmed: its reader may be opening it
_DELETE_BATCH = 1000  # DeleteObjects takes at most this many keys


def check_experiment_id(experiment_id: str) -> str:
    if not experiment_id or "/" in experiment_id or experiment_id in (".", ".."):
        raise ValueError(f"bad experiment id {experiment_id!r}")
    return experiment_id


def clean_relative(relative: str) -> str:
    """`relative` as the posix path of a file inside an experiment's folder, or
    `ArtifactPathError`: the only way a client's path becomes part of a key."""
    if "\x00" in relative or "\\" in relative or not relative.strip("/"):
        raise ArtifactPathError("artifact path must name a file")
    path = PurePosixPath(relative)
    if path.is_absolute() or any(part in ("..", ".") for part in relative.split("/")):
        raise ArtifactPathError(f"artifact path {relative!r} leaves the experiment's folder")
    if any(part == "" for part in relative.split("/")):
        raise ArtifactPathError(f"artifact path {relative!r} has an empty part")
    return path.as_posix()


_RANGE_PART = re.compile(r"(\d{0,19})-(\d{0,19})")  # offsets up to 19 digits (int64)


def one_byte_range(header: str) -> str | None:
    """An HTTP Range header as the one `bytes=` range to ask the bucket for, read as
    Starlette reads it for local files (so both storages answer alike): None when the
    whole object is to be sent (several ranges, which S3 cannot serve in one answer),
    `ValueError` naming the problem for a header that is not a byte range."""
    units, sep, spec = header.partition("=")
    if not sep or units.strip().lower() != "bytes":
        raise ValueError("the Range header must be bytes=<first>-<last>")
    parts = [p.strip() for p in spec.split(",") if p.strip() not in ("", "-")]
    if len(parts) > 1:
        return None
    found = _RANGE_PART.fullmatch(parts[0]) if parts else None
    if found is None or found.groups() == ("", ""):
        raise ValueError("the Range header names no byte range")
    first, last = found.groups()
    if first and last and int(last) < int(first):
        raise ValueError("the Range header's range ends before it starts")
    return f"bytes={first}-{last}"


@dataclass(frozen=True)
class BucketObject:
    """An object being read: its size (of the part asked for), a stream of its bytes
    (close it when done) and, for a byte range, S3's `bytes first-last/size`."""

    size: int
    body: Any
    content_range: str | None = None

    def chunks(self) -> Iterator[bytes]:
        try:
            yield from self.body.iter_chunks(_CHUNK)
        finally:
            self.body.close()


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _missing(error: Exception) -> bool:
    return _error_code(error) in ("404", "NoSuchKey", "NotFound")


class ArtifactBucket:
    """One bucket (and key prefix) holding every experiment's artifact folder."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = "",
        cache_dir: Path,
        cache_max_bytes: int = 2048 * 1024 * 1024,
        check_client: Any = None,
    ) -> None:
        self.client = client
        self.check_client = check_client or client
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.cache_dir = Path(cache_dir)
        self.cache_max_bytes = cache_max_bytes
        self._check_lock = threading.Lock()
        self._checked: tuple[float, Exception | None] | None = None  # (when, outcome)

    @classmethod
    def from_settings(cls, settings: Settings) -> ArtifactBucket | None:
        """The bucket the settings name, or None when artifacts stay in local folders."""
        if not settings.artifact_s3_bucket:
            return None
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:  # the `s3` extra is not installed
            raise RuntimeError(
                "AZURAFORGE_ARTIFACT_S3_BUCKET is set but boto3 is missing: install "
                "azuraforge-platform[s3] (the Docker images have it)"
            ) from exc
        config = Config(
            retries={"mode": "standard", "max_attempts": 5},
            # S3-compatible servers (MinIO, Ceph, ...) are reached by path, AWS by host name
            s3={"addressing_style": "path" if settings.artifact_s3_endpoint_url else "auto"},
        )
        session = boto3.session.Session()
        where = {
            "endpoint_url": settings.artifact_s3_endpoint_url,
            "region_name": settings.artifact_s3_region,
        }
        client = session.client("s3", config=config, **where)
        # health checks must answer fast when the server is down: one try, short timeouts
        quick = config.merge(
            Config(
                retries={"mode": "standard", "max_attempts": 1}, connect_timeout=2, read_timeout=2
            )
        )
        return cls(
            client,
            settings.artifact_s3_bucket,
            prefix=settings.artifact_s3_prefix,
            cache_dir=settings.data_dir / "artifact-cache",
            cache_max_bytes=settings.artifact_cache_max_mb * 1024 * 1024,
            check_client=session.client("s3", config=quick, **where),
        )

    # -- keys -----------------------------------------------------------------------------
    def folder_key(self, experiment_id: str) -> str:
        """The prefix of the experiment's keys, ending in `/` (so `abc` never matches `abcd`)."""
        return f"{self.prefix}{check_experiment_id(experiment_id)}/"

    def key(self, experiment_id: str, relative: str) -> str:
        return self.folder_key(experiment_id) + clean_relative(relative)

    def url(self, experiment_id: str, relative: str = "") -> str:
        """`s3://bucket/key`, for people (the CLI shows where the files are)."""
        key = self.key(experiment_id, relative) if relative else self.folder_key(experiment_id)
        return f"s3://{self.bucket}/{key}"

    @property
    def location(self) -> str:
        """`s3://bucket/prefix`, for people."""
        return f"s3://{self.bucket}/{self.prefix}"

    # How long one answer of `check` stands. /health is public and the dashboard asks it
    # every 10 s per open tab: without this each call was a request to the bucket's server
    # (billed per request on AWS), and each call to an unreachable one waited its timeouts.
    check_max_age = 10.0

    def check(self) -> None:
        """That the bucket exists and these credentials reach it, or an exception with the
        reason: one HEAD request through `check_client` (one try, 2 s timeouts), its answer
        kept for `check_max_age` seconds. Concurrent callers wait for the request under way
        instead of sending their own."""
        with self._check_lock:
            checked = self._checked
            if checked is None or time.monotonic() - checked[0] >= self.check_max_age:
                try:
                    self._head_bucket()
                    outcome = None
                except Exception as exc:
                    outcome = exc
                checked = self._checked = (time.monotonic(), outcome)
        if checked[1] is not None:
            raise checked[1].with_traceback(None)  # shared: no traceback grows on it

    def _head_bucket(self) -> None:
        try:
            self.check_client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            code = _error_code(exc)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise LookupError(f"the bucket {self.bucket!r} does not exist") from None
            if code in ("403", "AccessDenied"):
                raise PermissionError(f"the credentials may not read {self.bucket!r}") from None
            raise

    # -- writing --------------------------------------------------------------------------
    def upload(self, experiment_id: str, relative: str, path: Path) -> None:
        # upload_file switches to a multipart upload for large files by itself
        self.client.upload_file(str(path), self.bucket, self.key(experiment_id, relative))

    def delete_experiment(self, experiment_id: str) -> int:
        """Remove every key of the experiment; returns how many there were."""
        keys = [o["Key"] for o in self._objects(self.folder_key(experiment_id))]
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + _DELETE_BATCH]]
            result = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            if result.get("Errors"):
                first = result["Errors"][0]
                raise OSError(
                    f"the bucket kept {len(result['Errors'])} object(s) of experiment "
                    f"{experiment_id} ({first.get('Code')}: {first.get('Message')})"
                )
        return len(keys)

    # -- reading --------------------------------------------------------------------------
    def _objects(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_objects_v2")
        for page in pages.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def list_files(self, experiment_id: str, sub: str = "") -> list[tuple[str, int]]:
        """(relative path, size) of the experiment's objects, under `sub` if given."""
        folder = self.folder_key(experiment_id)
        prefix = folder + (clean_relative(sub).rstrip("/") + "/" if sub else "")
        return [(o["Key"][len(folder) :], int(o["Size"])) for o in self._objects(prefix)]

    def head(self, experiment_id: str, relative: str) -> tuple[int, str]:
        """(size, ETag) of one object; `ArtifactNotFoundError` when there is none."""
        try:
            meta = self.client.head_object(
                Bucket=self.bucket, Key=self.key(experiment_id, relative)
            )
        except Exception as exc:
            if _missing(exc):
                raise ArtifactNotFoundError(experiment_id, relative) from None
            raise
        return int(meta["ContentLength"]), str(meta["ETag"])

    def open(
        self, experiment_id: str, relative: str, byte_range: str | None = None
    ) -> BucketObject:
        """Start reading one object, or the `bytes=first-last` part of it (see
        `one_byte_range`); stream it with `chunks()`. `ArtifactRangeError` for a range
        that starts past the end."""
        key = self.key(experiment_id, relative)
        if byte_range == "bytes=-0":  # S3 would send the whole object; nothing is asked for
            raise ArtifactRangeError(byte_range, self.head(experiment_id, relative)[0])
        extra = {"Range": byte_range} if byte_range else {}
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=key, **extra)
        except Exception as exc:
            if _missing(exc):
                raise ArtifactNotFoundError(experiment_id, relative) from None
            if byte_range and _error_code(exc) == "InvalidRange":
                size = self.head(experiment_id, relative)[0]
                raise ArtifactRangeError(byte_range, size) from None
            raise
        return BucketObject(
            size=int(got["ContentLength"]),
            body=got["Body"],
            content_range=got.get("ContentRange") if byte_range else None,
        )

    def download(self, experiment_id: str, relative: str, dest: Path) -> None:
        """Write the object to `dest` atomically (a reader never sees half a file)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                self.client.download_fileobj(self.bucket, self.key(experiment_id, relative), fh)
            os.replace(tmp, dest)
        except BaseException as exc:
            Path(tmp).unlink(missing_ok=True)
            if isinstance(exc, Exception) and _missing(exc):
                raise ArtifactNotFoundError(experiment_id, relative) from None
            raise

    def fetch(self, experiment_id: str, relative: str) -> Path:
        """A local copy of the object, from the cache while the bucket holds the same version
        (same ETag: one HEAD request), downloaded into it otherwise."""
        relative = clean_relative(relative)
        _, etag = self.head(experiment_id, relative)
        version = re.sub(r"[^0-9A-Za-z-]", "", etag) or "none"
        folder = self.cache_dir / check_experiment_id(experiment_id)
        path = folder / relative
        target = path.parent / f".v-{version}" / path.name
        try:  # marks its last use first, so a trim running meanwhile spares it
            os.utime(target)
            return target
        except FileNotFoundError:
            pass
        self.download(experiment_id, relative, target)
        for old in path.parent.glob(f".v-*/{glob.escape(path.name)}"):  # older versions
            if old != target:
                old.unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # it may hold another file's version
                    old.parent.rmdir()
        self.trim_cache()
        return target

    def trim_cache(self) -> int:
        """Delete the least recently used cached copies until the cache holds at most
        `cache_max_bytes`, sparing any used in the last `_CACHE_GRACE_S` seconds (a fetch
        returns a path its caller opens next, maybe in another process). Several processes
        may trim at once: a copy already gone is skipped. Returns the bytes freed."""
        copies: list[tuple[float, int, Path]] = []
        for file in self.cache_dir.rglob("*"):
            with contextlib.suppress(OSError):  # gone meanwhile
                if file.is_file() and not file.name.endswith(".tmp"):  # .tmp: downloading
                    st = file.stat()
                    copies.append((st.st_mtime, st.st_size, file))
        total = sum(size for _, size, _ in copies)
        freed = 0
        recent = time.time() - _CACHE_GRACE_S
        for used, size, file in sorted(copies, key=lambda c: c[0]):
            if total - freed <= self.cache_max_bytes or used > recent:
                break
            try:  # used since it was listed (a fetch in another process): keep it
                if file.stat().st_mtime > recent:
                    continue
            except FileNotFoundError:
                continue
            file.unlink(missing_ok=True)
            freed += size
            with contextlib.suppress(OSError):  # its version folder, when now empty
                file.parent.rmdir()
        return freed

    def drop_cache(self, experiment_id: str) -> None:
        shutil.rmtree(self.cache_dir / check_experiment_id(experiment_id), ignore_errors=True)
