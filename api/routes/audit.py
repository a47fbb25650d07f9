"""The audit log (admin): who changed what, when, from where; newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from api.auth import Principal, require
from api.deps import Conn
from urbanwatch.identity.roles import Role
from urbanwatch.queries import audit as queries
from urbanwatch.storable import NO_NUL

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditPage(BaseModel):
    data: list[queries.AuditEntry]
    count: int
    limit: int
    offset: int


@router.get("", response_model=AuditPage)
def list_audit(
    conn: Conn,
    principal: Annotated[Principal, require(Role.admin)],
    actor: Annotated[
        str | None,
        Query(pattern=NO_NUL, max_length=200, description="user:<name>, key:<id>, cli:…"),
    ] = None,
    resource: Annotated[str | None, Query(pattern=NO_NUL, max_length=100)] = None,
    resource_id: Annotated[str | None, Query(pattern=NO_NUL, max_length=200)] = None,
    action: Annotated[str | None, Query(pattern=NO_NUL, max_length=100)] = None,
    since: Annotated[datetime | None, Query(description="from this time (inclusive)")] = None,
    until: Annotated[datetime | None, Query(description="before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AuditPage:
    """Entries filtered by actor, resource (and id), action and time; `count` is the number of
    all matches, for paging with `limit` and `offset`."""
    page, total = queries.list_entries(
        conn,
        actor=actor,
        resource=resource,
        resource_id=resource_id,
        action=action,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return AuditPage(data=page, count=total, limit=limit, offset=offset)
