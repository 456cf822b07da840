"""Personal API tokens of the signed-in user: for the CLI, the Python client and scripts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.api.deps import ServicesDep
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.schemas import TokenCreate, TokenCreated, TokenList, TokenPublic
from azuraforge_platform.api.security import PrincipalDep, audit

__all__ = ["router"]

router = APIRouter(prefix="/tokens", tags=["tokens"])

TokenId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def _own(principal: PrincipalDep) -> int:
    if principal.auth == "none":
        raise ApiError(400, "authentication is switched off on this server: no tokens needed")
    return principal.user_id


@router.get("", response_model=TokenList, summary="Your API tokens (never their secrets)")
async def list_tokens(principal: PrincipalDep, services: ServicesDep) -> TokenList:
    records = await run_in_threadpool(services.accounts.store.tokens, _own(principal))
    return TokenList(items=[TokenPublic.model_validate(r) for r in records])


@router.post(
    "",
    status_code=201,
    response_model=TokenCreated,
    responses=responses(400, 422),
    summary="A new API token; its secret is in this answer only",
)
async def create_token(
    body: TokenCreate, principal: PrincipalDep, services: ServicesDep, request: Request
) -> TokenCreated:
    user_id = _own(principal)
    limit = services.settings.token_max_days
    if body.expires_in_days > limit:
        raise ApiError(
            422,
            f"a token expires after at most {limit} days",
            fields=[("expires_in_days", f"at most {limit}")],
        )

    def create() -> TokenCreated:
        user = services.accounts.store.user(user_id)
        record, secret = services.accounts.create_token(user, body.name, body.expires_in_days)
        audit(request, "token.create", target=f"token:{record.id}", detail={"name": body.name})
        return TokenCreated(**TokenPublic.model_validate(record).model_dump(), token=secret)

    return await run_in_threadpool(create)


@router.delete(
    "/{token_id}",
    status_code=204,
    response_class=Response,
    responses=responses(404),
    summary="Revoke one of your tokens (admins: anyone's)",
)
async def revoke_token(
    token_id: TokenId, principal: PrincipalDep, services: ServicesDep, request: Request
) -> Response:
    def revoke() -> None:
        record = services.accounts.store.token(token_id)
        if record is None or record.kind != "api":
            raise ApiError(404, f"no token {token_id}")
        if record.user_id != principal.user_id and not principal.is_admin:
            raise ApiError(404, f"no token {token_id}")  # others' tokens are not even listed
        services.accounts.revoke_token(token_id)
        audit(request, "token.revoke", target=f"token:{token_id}", detail={"name": record.name})

    await run_in_threadpool(revoke)
    return Response(status_code=204)
