"""API keys for integrators (admin): create (the key is shown once), list, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, status

from api.auth import Principal, require
from api.deps import Conn, field_error
from urbanwatch.identity import accounts
from urbanwatch.identity.errors import IdentityError
from urbanwatch.identity.models import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from urbanwatch.identity.roles import Role
from urbanwatch.queries import api_keys as queries

router = APIRouter(prefix="/keys", tags=["keys"])
Admin = Annotated[Principal, require(Role.admin)]


@router.get("", response_model=list[ApiKeyPublic])
def list_keys(conn: Conn, principal: Admin, include_revoked: bool = False) -> list[ApiKeyPublic]:
    return queries.list_keys(conn, include_revoked=include_revoked)


@router.post("", response_model=ApiKeyCreated, status_code=status.HTTP_201_CREATED)
def create_key(conn: Conn, principal: Admin, body: ApiKeyCreate) -> ApiKeyCreated:
    """A new key with a role (and unit, for crew) and an optional expiry. `key` is in this
    answer only: store it in the integrator's secret store and send it as `X-API-Key`."""
    return accounts.create_key(conn, principal.audit_actor(), body)


@router.delete("/{key_id}", response_model=ApiKeyPublic)
def revoke_key(
    conn: Conn, principal: Admin, key_id: Annotated[str, Path(pattern=r"^[a-z0-9]{8,32}$")]
) -> ApiKeyPublic:
    """Revoke a key: refused from the next request on. Revoking twice changes nothing."""
    try:
        return accounts.revoke_key(conn, principal.audit_actor(), key_id)
    except IdentityError as exc:
        raise field_error(exc.status, ["path", exc.field], exc.message) from None
