"""Signing in and out (the dashboard's session cookie), who am I, and WebSocket tokens."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from azuraforge_platform.accounts import InvalidCredentialsError, RateLimitedError
from azuraforge_platform.api.deps import ServicesDep
from azuraforge_platform.api.errors import ApiError, responses
from azuraforge_platform.api.schemas import LoginRequest, LoginResponse, Me, UserPublic, WsToken
from azuraforge_platform.api.security import (
    SESSION_COOKIE,
    PrincipalDep,
    client_ip,
)

__all__ = ["public_router", "router"]

# /auth/login is the one route (with /health) that needs no credential.
public_router = APIRouter(prefix="/auth", tags=["auth"])
router = APIRouter(prefix="/auth", tags=["auth"])


@public_router.post(
    "/login",
    response_model=LoginResponse,
    responses=responses(401, 429),
    summary="Sign in with a username and password (sets the dashboard's session cookie)",
)
async def login(
    body: LoginRequest, request: Request, response: Response, services: ServicesDep
) -> LoginResponse:
    if not services.settings.auth_enabled:
        raise ApiError(400, "authentication is switched off on this server (--no-auth)")
    try:
        user, session, secret = await run_in_threadpool(
            services.accounts.login, body.username, body.password, ip=client_ip(request)
        )
    except RateLimitedError as exc:
        raise ApiError(
            429, str(exc), code="rate_limited", headers={"Retry-After": str(exc.retry_after)}
        ) from None
    except InvalidCredentialsError:
        raise ApiError(401, "wrong username or password", code="invalid_credentials") from None
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(services.settings.session_hours * 3600),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return LoginResponse(user=UserPublic.model_validate(user), expires_at=session.expires_at)


@router.post("/logout", status_code=204, response_class=Response, summary="End this login session")
async def logout(principal: PrincipalDep, services: ServicesDep) -> Response:
    if principal.auth == "session" and principal.token_id is not None:
        await run_in_threadpool(services.accounts.revoke_token, principal.token_id)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/me", response_model=Me, summary="The signed-in user and how it authenticated")
async def me(principal: PrincipalDep, services: ServicesDep) -> Me:
    if principal.auth == "none":
        return Me(
            id=0,
            username=principal.username,
            role=principal.role.value,
            disabled=False,
            created_at=services.started_at,
            last_login_at=None,
            auth="none",
        )
    user = await run_in_threadpool(services.accounts.store.user, principal.user_id)
    public = UserPublic.model_validate(user).model_dump()
    if principal.auth == "session":
        return Me(**public, auth="session")
    return Me(**public, auth="token")


@router.post(
    "/ws-token",
    response_model=WsToken,
    summary="A short-lived token for the WebSocket (sent as subprotocol azuraforge.token.<t>)",
)
async def ws_token(principal: PrincipalDep, services: ServicesDep) -> WsToken:
    token = services.accounts.ws_token(principal)
    return WsToken(token=token, expires_in=int(services.settings.ws_token_seconds))
