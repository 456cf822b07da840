"""User accounts (admins only): create, list, change role, disable, reset a password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.api.deps import ServicesDep
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.schemas import (
    UserCreate,
    UserCreated,
    UserList,
    UserPublic,
    UserUpdate,
)
from azuraforge_platform.api.security import audit
from azuraforge_platform.store.accounts import UserExistsError, UserNotFoundError
from azuraforge_platform.store.tables import Role

__all__ = ["router"]

router = APIRouter(prefix="/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get("", response_model=UserList, summary="Every user")
async def list_users(services: ServicesDep) -> UserList:
    records = await run_in_threadpool(services.accounts.store.users)
    return UserList(items=[UserPublic.model_validate(r) for r in records])


@router.post(
    "",
    status_code=201,
    response_model=UserCreated,
    responses=responses(409, 422),
    summary="Create a user (a password is generated and returned once when none is given)",
)
async def create_user(body: UserCreate, services: ServicesDep, request: Request) -> UserCreated:
    def create() -> UserCreated:
        try:
            user, generated = services.accounts.create_user(
                body.username, role=Role(body.role), password=body.password
            )
        except UserExistsError as exc:
            raise ApiError(409, str(exc), code="exists") from None
        except ValueError as exc:
            raise ApiError(422, str(exc), fields=[("password", str(exc))]) from None
        audit(request, "user.create", target=user.username, detail={"role": user.role.value})
        return UserCreated(user=UserPublic.model_validate(user), password=generated)

    return await run_in_threadpool(create)


@router.patch(
    "/{user_id}",
    response_model=UserPublic,
    responses=responses(404, 409, 422),
    summary="Change a user's role, disable or enable it, or set its password",
)
async def update_user(
    user_id: UserId, body: UserUpdate, services: ServicesDep, request: Request
) -> UserPublic:
    accounts = services.accounts

    def update() -> UserPublic:
        try:
            user = accounts.store.user(user_id)
        except UserNotFoundError as exc:
            raise ApiError(404, str(exc)) from None
        demoted = body.role is not None and body.role != "admin"
        removes_admin = user.role is Role.admin and not user.disabled and (demoted or body.disabled)
        if removes_admin and accounts.store.count_admins() <= 1:
            raise ApiError(
                409,
                f"{user.username} is the last admin: make another admin first",
                code="last_admin",
            )
        if body.password is not None:
            try:
                accounts.set_password(user_id, body.password)
            except ValueError as exc:
                raise ApiError(422, str(exc), fields=[("password", str(exc))]) from None
        role = Role(body.role) if body.role is not None else None
        updated = accounts.update_user(user_id, role=role, disabled=body.disabled)
        changes = body.model_dump(exclude_none=True)
        if "password" in changes:
            changes["password"] = "changed"
        audit(request, "user.update", target=user.username, detail=changes)
        return UserPublic.model_validate(updated)

    return await run_in_threadpool(update)
