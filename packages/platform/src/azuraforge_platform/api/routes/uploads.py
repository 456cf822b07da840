"""`POST /uploads`: a user's data file (CSV, IDX, zip of PNGs) kept under a generated name."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, File, Path, UploadFile
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.api.deps import SettingsDep
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.schemas import UploadPublic
from azuraforge_platform.settings import Settings

router = APIRouter(prefix="/uploads", tags=["uploads"])

# The client's name only picks one of these suffixes; the stored name is generated.
KINDS = {
    ".csv": "table",
    ".tsv": "table",
    ".json": "json",
    ".zip": "archive",
    ".gz": "archive",
    ".idx": "idx",
    ".ubyte": "idx",
    ".idx1-ubyte": "idx",
    ".idx3-ubyte": "idx",
    ".png": "image",
    ".npz": "arrays",
}
_ID = re.compile(r"^[0-9a-f]{32}(\.[a-z0-9-]{1,12})?$")


def _suffix(filename: str) -> str:
    name = filename.lower().rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    for suffix in sorted(KINDS, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise ApiError(
        415,
        f"unsupported file type {name!r}; upload one of: {', '.join(sorted(KINDS))}",
        fields=[("file", "unsupported file type")],
    )


def upload_path(settings: Settings, upload_id: str) -> FsPath:
    """The stored file of `upload_id` (an id this server generated; anything else is 404)."""
    if not _ID.match(upload_id):
        raise ApiError(404, f"no upload {upload_id!r}")
    path = settings.upload_dir / upload_id
    if not path.is_file():
        raise ApiError(404, f"no upload {upload_id!r}")
    return path


@router.post(
    "",
    status_code=201,
    response_model=UploadPublic,
    responses=responses(413, 415, 422),
    summary="Upload a data file; reference the returned `path` from a pipeline config",
)
async def upload(
    settings: SettingsDep,
    file: Annotated[UploadFile, File(description="CSV, IDX (optionally .gz), zip of PNGs, ...")],
) -> UploadPublic:
    suffix = _suffix(file.filename or "")
    upload_id = f"{uuid.uuid4().hex}{suffix}"
    folder = settings.upload_dir
    target = folder / upload_id
    limit = settings.upload_max_bytes
    digest = hashlib.sha256()
    size = 0
    await run_in_threadpool(folder.mkdir, parents=True, exist_ok=True)
    tmp = folder / f".{upload_id}.part"
    try:
        with tmp.open("wb") as out:
            while chunk := await file.read(1024 * 1024):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"file too large (limit {limit} bytes)")
                digest.update(chunk)
                await run_in_threadpool(out.write, chunk)
        if size == 0:
            raise ApiError(422, "the file is empty", fields=[("file", "empty file")])
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    shown = re.sub(r"[^\w.\- ]", "_", (file.filename or "upload")[-200:])
    return UploadPublic(
        id=upload_id,
        path=str(target),
        filename=shown,
        size=size,
        sha256=digest.hexdigest(),
        kind=KINDS[suffix],
    )


@router.get(
    "/{upload_id}",
    response_model=UploadPublic,
    responses=responses(404),
    summary="An uploaded file's details",
)
async def get_upload(
    settings: SettingsDep, upload_id: Annotated[str, Path(max_length=64)]
) -> UploadPublic:
    path = upload_path(settings, upload_id)
    data = await run_in_threadpool(path.read_bytes)
    suffix = "." + upload_id.split(".", 1)[1] if "." in upload_id else ""
    return UploadPublic(
        id=upload_id,
        path=str(path),
        filename=upload_id,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        kind=KINDS.get(suffix, "file"),
    )
