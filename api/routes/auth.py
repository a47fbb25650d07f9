"""Sign-in for people (OAuth2 password flow): POST /auth/token, /auth/refresh, /auth/logout,
GET /auth/me."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Form, HTTPException, Request, status
from pydantic import BaseModel, Field

from api.auth import Principal, client_address, public, require
from api.deps import Conn, field_error
from urbanwatch.identity import sessions
from urbanwatch.identity.models import RefreshRequest, TokenPair
from urbanwatch.identity.ratelimit import Limit
from urbanwatch.identity.roles import Role
from urbanwatch.settings import Settings
from urbanwatch.storable import NO_NUL_NONEMPTY

router = APIRouter(prefix="/auth", tags=["auth"])


class Me(BaseModel):
    actor: str
    role: Role
    unit: str | None
    client: str


class LogoutRequest(BaseModel):
    refresh_token: str | None = Field(
        None, max_length=200, repr=False, description="none: sign out of every session"
    )


def policy(settings: Settings) -> sessions.SessionPolicy:
    assert settings.api_secret_key is not None  # create_app refuses to start without it
    window = timedelta(seconds=settings.login_failure_window_s)
    return sessions.SessionPolicy(
        secret=settings.api_secret_key.get_secret_value(),
        access_ttl=timedelta(seconds=settings.api_access_token_ttl_s),
        refresh_ttl=timedelta(seconds=settings.api_refresh_token_ttl_s),
        per_account=Limit(settings.login_max_failures_per_account, window),
        per_client=Limit(settings.login_max_failures_per_client, window),
    )


def _refused(message: str) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=message, headers={"WWW-Authenticate": "Bearer"}
    )


@router.post("/token", response_model=TokenPair, dependencies=[public()])
def sign_in(
    request: Request,
    conn: Conn,
    username: Annotated[str, Form(min_length=1, max_length=64, pattern=NO_NUL_NONEMPTY)],
    password: Annotated[str, Form(min_length=1, max_length=1024, pattern=NO_NUL_NONEMPTY)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenPair:
    """OAuth2 password flow (form fields `username`, `password`): an access token (Bearer,
    `expires_in` seconds) and a refresh token for POST /auth/refresh. Failed attempts are
    limited per account and per client address: 429 with Retry-After."""
    try:
        return sessions.sign_in(
            conn, username, password, client_address(request), policy(request.app.state.settings)
        )
    except sessions.TooManyAttempts as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"username: {exc}",
            headers={"Retry-After": str(exc.retry_after_s)},
        ) from None
    except sessions.SignInRefused as exc:
        conn.commit()  # keep the failure counted (the error rolls back the rest)
        raise _refused(f"username/password: {exc}") from None


@router.post("/refresh", response_model=TokenPair, dependencies=[public()])
def refresh(request: Request, conn: Conn, body: RefreshRequest) -> TokenPair:
    """A new token pair for a refresh token, which is then spent (each works once)."""
    try:
        return sessions.refresh(
            conn, body.refresh_token, client_address(request), policy(request.app.state.settings)
        )
    except sessions.SignInRefused as exc:
        conn.commit()  # a replayed token's revocations stand
        raise _refused(f"refresh_token: {exc}") from None


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(
    conn: Conn,
    principal: Annotated[Principal, require(Role.viewer)],
    body: Annotated[LogoutRequest | None, Body()] = None,
) -> None:
    """Revoke the given refresh token, or every one of the account's. For people only."""
    if principal.user_id is None:
        raise field_error(422, ["header", "Authorization"], "API keys have no session")
    token = body.refresh_token if body else None
    sessions.sign_out(conn, principal.audit_actor(), token, principal.user_id)


@router.get("/me", response_model=Me)
def me(principal: Annotated[Principal, require(Role.viewer)]) -> Me:
    """Who the credential sent belongs to, its role and unit."""
    return Me(
        actor=principal.actor, role=principal.role, unit=principal.unit, client=principal.client
    )
