from __future__ import annotations

from typing import Annotated

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import ValidationError

from api.auth import Principal, require
from api.deps import Conn, field_error
from urbanwatch import audit
from urbanwatch.identity.roles import Role
from urbanwatch.models import (
    ATTRS_MODELS,
    DeviceCreate,
    DevicePublic,
    DevicesPublic,
    DeviceStatus,
    DeviceUpdate,
    Kind,
)
from urbanwatch.queries import devices as queries

router = APIRouter(prefix="/devices", tags=["devices"])
Viewer = Annotated[Principal, require(Role.viewer)]
Operator = Annotated[Principal, require(Role.operator)]


def _not_found(device_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, detail=f"device {device_id!r} not found")


def _unknown_district(district: str) -> HTTPException:
    return field_error(422, ["body", "district"], f"unknown district {district!r}")


@router.get("", response_model=DevicesPublic)
def list_devices(
    request: Request,
    conn: Conn,
    principal: Viewer,
    kind: Kind | None = None,
    district: str | None = None,
    device_status: Annotated[DeviceStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> DevicesPublic:
    """Devices in id order, filtered by kind, district and lifecycle status; `count` is the
    number of all matches, for paging with `limit` and `offset`."""
    page, total = queries.list_devices(
        conn,
        kind=kind.value if kind else None,
        district=district,
        status=device_status.value if device_status else None,
        limit=limit,
        offset=offset,
    )
    return DevicesPublic(data=page, count=total, limit=limit, offset=offset)


@router.get("/{device_id}", response_model=DevicePublic)
def get_device(device_id: str, conn: Conn, principal: Viewer) -> DevicePublic:
    device = queries.get_device(conn, device_id)
    if device is None:
        raise _not_found(device_id)
    return device


@router.post("", response_model=DevicePublic, status_code=status.HTTP_201_CREATED)
def create_device(body: DeviceCreate, conn: Conn, principal: Operator) -> DevicePublic:
    """Register a device. 409 if the id exists (use PATCH to change it)."""
    try:
        created = queries.create_device(conn, body)
    except psycopg.errors.ForeignKeyViolation:
        raise _unknown_district(body.district) from None
    if created is None:
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"device {body.device_id!r} exists")
    audit.record(
        conn,
        principal.audit_actor(),
        "create",
        "device",
        created.device_id,
        after=created.model_dump(mode="json"),
    )
    return created


@router.patch("/{device_id}", response_model=DevicePublic)
def update_device(
    device_id: str, body: DeviceUpdate, conn: Conn, principal: Operator
) -> DevicePublic:
    """Change some fields. `attrs` keys are merged into the stored ones (a null value removes
    a key) and checked against the device kind's attributes."""
    current = queries.get_device(conn, device_id)
    if current is None:
        raise _not_found(device_id)
    attrs = None
    if body.attrs is not None:
        merged = {**current.attrs, **body.attrs}
        merged = {k: v for k, v in merged.items() if v is not None}
        try:
            checked = ATTRS_MODELS[current.kind].model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            raise field_error(
                422, ["body", "attrs", *map(str, first["loc"])], first["msg"]
            ) from None
        attrs = checked.model_dump(mode="json", exclude_none=True)
    try:
        updated = queries.update_device(conn, device_id, body, attrs)
    except psycopg.errors.ForeignKeyViolation:
        raise _unknown_district(str(body.district)) from None
    if updated is None:
        raise _not_found(device_id)
    audit.record(
        conn,
        principal.audit_actor(),
        "update",
        "device",
        device_id,
        before=current.model_dump(mode="json"),
        after=updated.model_dump(mode="json"),
    )
    return updated
