"""Accounts (admin): list, create, change role/unit/disabled, reset a password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from api.auth import Principal, require
from api.deps import Conn, field_error
from urbanwatch.identity import accounts
from urbanwatch.identity.errors import IdentityError
from urbanwatch.identity.models import (
    USERNAME_PATTERN,
    PasswordReset,
    UserCreate,
    UserPublic,
    UserUpdate,
)
from urbanwatch.identity.roles import Role
from urbanwatch.queries import users as queries

router = APIRouter(prefix="/users", tags=["users"])
Admin = Annotated[Principal, require(Role.admin)]
UsernamePath = Annotated[str, Path(pattern=USERNAME_PATTERN)]


def as_http(exc: IdentityError, where: str) -> HTTPException:
    return field_error(exc.status, [where, exc.field], exc.message)


@router.get("", response_model=list[UserPublic])
def list_users(conn: Conn, principal: Admin) -> list[UserPublic]:
    return [u.public() for u in queries.list_users(conn)]


@router.post("", response_model=UserPublic, status_code=status.HTTP_201_CREATED)
def create_user(conn: Conn, principal: Admin, body: UserCreate) -> UserPublic:
    """A person's account; `unit` is required for crew (the unit whose alerts they work)."""
    try:
        return accounts.create_user(conn, principal.audit_actor(), body)
    except IdentityError as exc:
        raise as_http(exc, "body") from None


@router.patch("/{username}", response_model=UserPublic)
def update_user(
    conn: Conn, principal: Admin, username: UsernamePath, body: UserUpdate
) -> UserPublic:
    """Change role, unit, display name or `disabled` (disabling signs the account out)."""
    try:
        return accounts.update_user(conn, principal.audit_actor(), username, body)
    except IdentityError as exc:
        raise as_http(exc, "path" if exc.field == "username" else "body") from None


@router.post("/{username}/password", status_code=status.HTTP_204_NO_CONTENT)
def reset_password(
    conn: Conn, principal: Admin, username: UsernamePath, body: PasswordReset
) -> None:
    """Set a new password; the account's refresh tokens are revoked."""
    try:
        accounts.reset_password(
            conn, principal.audit_actor(), username, body.password.get_secret_value()
        )
    except IdentityError as exc:
        raise as_http(exc, "path") from None
