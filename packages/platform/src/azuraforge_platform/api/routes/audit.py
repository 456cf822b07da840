"""The audit log (admins only): logins, failed logins and every destructive action."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.api.deps import ServicesDep
from azuraforge_platform.api.schemas import AuditEventPublic, AuditList

__all__ = ["router"]

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditList, summary="Audit events, newest first")
async def list_audit(
    services: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    before: Annotated[int | None, Query(ge=1, le=2**63 - 1, description="From next_before")] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
) -> AuditList:
    records = await run_in_threadpool(
        lambda: services.accounts.store.audit_events(
            limit=limit + 1, before=before, action=action, actor=actor
        )
    )
    page = records[:limit]
    return AuditList(
        items=[AuditEventPublic.model_validate(r) for r in page],
        next_before=page[-1].id if len(records) > limit else None,
    )
