"""Uploads: a user's data files (CSV, IDX, zip of PNGs, ...) kept under generated names in the
uploads folder, with their records (owner, size, sha256, kind) in the store.

A config names an upload as `uploads/<id>` (the `path` of the answer). Nothing here reads a
whole file into memory: metadata comes from the store, content is streamed."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable
from pathlib import Path as FsPath
from typing import Annotated

from fastapi import APIRouter, File, Path, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from azuraforge_pipeline import PathNotAllowedError
from azuraforge_platform.accounts import Principal
from azuraforge_platform.api.deps import SettingsDep, UploadsDep
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.schemas import UploadList, UploadPublic
from azuraforge_platform.api.security import PrincipalDep, audit
from azuraforge_platform.api.upload_content import ContentCheck, ContentError, suffix_of
from azuraforge_platform.settings import Settings
from azuraforge_platform.store import UploadQuotaError, UploadRecord, UploadStore

__all__ = ["KINDS", "router", "upload_file"]

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
_CHUNK = 1024 * 1024

UploadId = Annotated[str, Path(max_length=64, description="The id an upload answered")]


def _suffix(filename: str) -> str:
    name = filename.lower().rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    suffix = suffix_of(name, KINDS)
    if suffix is None:
        raise ApiError(
            415,
            f"unsupported file type {name!r}; upload one of: {', '.join(sorted(KINDS))}",
            fields=[("file", "unsupported file type")],
        )
    return suffix


def _public(record: UploadRecord) -> UploadPublic:
    # `path` is relative to the data folder: what a config names, never a server path
    return UploadPublic(
        id=record.id,
        path=f"uploads/{record.id}",
        filename=record.filename,
        size=record.size,
        sha256=record.sha256,
        kind=record.kind,
        created_at=record.created_at,
        owner=record.owner,
    )


def _record(uploads: UploadStore, upload_id: str, principal: Principal) -> UploadRecord:
    """The upload, if the caller may use it: its owner's and admins' only (to anyone else it
    does not exist)."""
    record = uploads.get(upload_id) if _ID.match(upload_id) else None
    if record is None or not principal.may_use(record.owner):
        raise ApiError(404, f"no upload {upload_id!r}")
    return record


def upload_guard(
    settings: Settings, uploads: UploadStore, principal: Principal
) -> Callable[[FsPath], None]:
    """For the client path policy: a config may name only the caller's own uploads."""

    def guard(path: FsPath) -> None:
        if path.parent != settings.upload_dir:
            return
        record = uploads.get(path.name) if _ID.match(path.name) else None
        if record is None or not principal.may_use(record.owner):
            raise PathNotAllowedError(f"uploads/{path.name} is not one of your uploads")

    return guard


def _file(settings: Settings, record: UploadRecord) -> FsPath:
    path = settings.upload_dir / record.id
    if not path.is_file():
        raise ApiError(404, f"the file of upload {record.id!r} is gone")
    return path


def upload_file(
    settings: Settings, uploads: UploadStore, upload_id: str, principal: Principal
) -> FsPath:
    """The stored file of a recorded upload the caller may use (anything else is 404)."""
    return _file(settings, _record(uploads, upload_id, principal))


def _quota_error(exc: UploadQuotaError) -> ApiError:
    return ApiError(413, str(exc), code="quota_exceeded", fields=[("file", "over the quota")])


@router.post(
    "",
    status_code=201,
    response_model=UploadPublic,
    responses=responses(413, 415, 422),
    summary="Upload a data file; put the returned `path` into a pipeline config",
)
async def upload(
    settings: SettingsDep,
    uploads: UploadsDep,
    principal: PrincipalDep,
    file: Annotated[UploadFile, File(description="CSV, IDX (optionally .gz), zip of PNGs, ...")],
) -> UploadPublic:
    owner = principal.username
    suffix = _suffix(file.filename or "")
    upload_id = f"{uuid.uuid4().hex}{suffix}"
    user_quota, total_quota = settings.upload_quota_user_bytes, settings.upload_quota_total_bytes
    # A cheap look first, so a full quota refuses at once instead of after the whole file;
    # the store checks again, atomically, when it records the upload.
    used = await run_in_threadpool(uploads.used_bytes, owner)
    used_total = await run_in_threadpool(uploads.total_bytes)
    room = min(user_quota - used, total_quota - used_total)
    limit = settings.upload_max_bytes
    folder = settings.upload_dir
    target = folder / upload_id
    digest = hashlib.sha256()
    check = ContentCheck(suffix)
    size = 0
    await run_in_threadpool(folder.mkdir, parents=True, exist_ok=True)
    tmp = folder / f".{upload_id}.part"
    try:
        with tmp.open("wb") as out:
            while chunk := await file.read(_CHUNK):
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, f"file too large (limit {limit} bytes)")
                if size > room:
                    raise ApiError(
                        413,
                        f"upload quota exceeded: your uploads use {used} of {user_quota} "
                        f"bytes and all uploads {used_total} of {total_quota}; this file is "
                        f"larger than the {max(room, 0)} bytes left",
                        code="quota_exceeded",
                        fields=[("file", "over the quota")],
                    )
                digest.update(chunk)
                check.feed(chunk)
                await run_in_threadpool(out.write, chunk)
        if size == 0:
            raise ApiError(422, "the file is empty", fields=[("file", "empty file")])
        await run_in_threadpool(check.finish, tmp)
        shown = re.sub(r"[^\w.\- ]", "_", (file.filename or "upload")[-200:])
        try:
            record = await run_in_threadpool(
                lambda: uploads.add(
                    upload_id=upload_id,
                    owner=owner,
                    filename=shown,
                    size=size,
                    sha256=digest.hexdigest(),
                    kind=KINDS[suffix],
                    user_quota=user_quota,
                    total_quota=total_quota,
                )
            )
        except UploadQuotaError as exc:
            raise _quota_error(exc) from None
        try:
            os.replace(tmp, target)
        except OSError:
            await run_in_threadpool(uploads.delete, upload_id)
            raise
    except ContentError as exc:
        raise ApiError(exc.status, exc.message, fields=[("file", exc.message)]) from None
    finally:
        tmp.unlink(missing_ok=True)
    return _public(record)


@router.get(
    "",
    response_model=UploadList,
    summary="The caller's uploads, newest first, with the bytes they take and the quota",
)
async def list_uploads(
    settings: SettingsDep,
    uploads: UploadsDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> UploadList:
    owner = principal.username
    records = await run_in_threadpool(lambda: uploads.list(owner, limit=limit))
    used = await run_in_threadpool(uploads.used_bytes, owner)
    return UploadList(
        items=[_public(r) for r in records],
        used_bytes=used,
        quota_bytes=settings.upload_quota_user_bytes,
    )


@router.get(
    "/{upload_id}",
    response_model=UploadPublic,
    responses=responses(404),
    summary="An uploaded file's details",
)
async def get_upload(
    uploads: UploadsDep, upload_id: UploadId, principal: PrincipalDep
) -> UploadPublic:
    return _public(await run_in_threadpool(_record, uploads, upload_id, principal))


@router.get(
    "/{upload_id}/content",
    response_class=FileResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        **responses(404),
    },
    summary="Download an uploaded file (streamed)",
)
async def get_upload_content(
    settings: SettingsDep, uploads: UploadsDep, upload_id: UploadId, principal: PrincipalDep
) -> FileResponse:
    record = await run_in_threadpool(_record, uploads, upload_id, principal)
    path = await run_in_threadpool(_file, settings, record)
    # sent in chunks from disk; an attachment, so a browser never renders a user's file
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=record.filename,
        headers={"X-Content-Type-Options": "nosniff"},
    )


@router.delete(
    "/{upload_id}",
    status_code=204,
    response_class=Response,
    responses=responses(404),
    summary="Delete an upload: its file and its record (its bytes leave the quota)",
)
async def delete_upload(
    settings: SettingsDep,
    uploads: UploadsDep,
    upload_id: UploadId,
    principal: PrincipalDep,
    request: Request,
) -> Response:
    record = await run_in_threadpool(_record, uploads, upload_id, principal)
    if not principal.may_manage(record.owner):
        raise ApiError(403, "only its owner or an admin may delete an upload", code="forbidden")
    # The record first: should the unlink fail, what is left is an unlisted file, never a
    # listed upload without its file.
    await run_in_threadpool(uploads.delete, record.id)
    await run_in_threadpool((settings.upload_dir / record.id).unlink, missing_ok=True)
    detail = {"filename": record.filename, "owner": record.owner, "size": record.size}
    await run_in_threadpool(audit, request, "upload.delete", record.id, detail)
    return Response(status_code=204)
