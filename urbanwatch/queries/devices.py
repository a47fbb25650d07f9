"""The device registry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from urbanwatch.models import DeviceCreate, DevicePublic, DeviceUpdate

DEVICE_COLUMNS = (
    "device_id, kind, district, lat, lon, status, installed_at, commissioned_at, gateway_id, "
    "attrs, created_at, updated_at"
)
ADDRESSES = "SELECT device_id, kind, gateway_id FROM devices"
ADDRESSES_OF = "SELECT device_id, kind, gateway_id FROM devices WHERE device_id = ANY(%s)"
ENSURE_GATEWAY = "INSERT INTO gateways (gateway_id) VALUES (%s) ON CONFLICT DO NOTHING"


def device_addresses(
    conn: psycopg.Connection, device_ids: Iterable[str] | None = None
) -> list[tuple[str, str, str | None]]:
    """(device_id, kind, gateway_id) for all devices or for the given ids: what ingest
    checks a message's address against."""
    if device_ids is None:
        return conn.execute(ADDRESSES).fetchall()
    return conn.execute(ADDRESSES_OF, (list(device_ids),)).fetchall()


def ensure_gateway(conn: psycopg.Connection, gateway_id: str | None) -> None:
    if gateway_id is not None:
        conn.execute(ENSURE_GATEWAY, (gateway_id,))


def get_device(conn: psycopg.Connection, device_id: str) -> DevicePublic | None:
    with conn.cursor(row_factory=class_row(DevicePublic)) as cur:
        return cur.execute(
            f"SELECT {DEVICE_COLUMNS} FROM devices WHERE device_id = %s", (device_id,)
        ).fetchone()


def list_devices(
    conn: psycopg.Connection,
    *,
    kind: str | None = None,
    district: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[DevicePublic], int]:
    """One page of devices in id order, and how many match in all."""
    where = sql.SQL(
        "WHERE (%(kind)s::text IS NULL OR kind = %(kind)s) "
        "AND (%(district)s::text IS NULL OR district = %(district)s) "
        "AND (%(status)s::text IS NULL OR status = %(status)s)"
    )
    params: dict[str, Any] = {"kind": kind, "district": district, "status": status}
    count_row = conn.execute(sql.SQL("SELECT count(*) FROM devices ") + where, params).fetchone()
    with conn.cursor(row_factory=class_row(DevicePublic)) as cur:
        page = cur.execute(
            sql.SQL(f"SELECT {DEVICE_COLUMNS} FROM devices ")
            + where
            + sql.SQL(" ORDER BY device_id LIMIT %(limit)s OFFSET %(offset)s"),
            {**params, "limit": limit, "offset": offset},
        ).fetchall()
    return page, count_row[0] if count_row else 0


def create_device(conn: psycopg.Connection, device: DeviceCreate) -> DevicePublic | None:
    """Insert a device; None when the id is taken."""
    ensure_gateway(conn, device.gateway_id)
    with conn.cursor(row_factory=class_row(DevicePublic)) as cur:
        return cur.execute(
            f"""INSERT INTO devices (device_id, kind, district, lat, lon, status, installed_at,
                                     commissioned_at, gateway_id, attrs)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (device_id) DO NOTHING
                RETURNING {DEVICE_COLUMNS}""",
            (
                device.device_id,
                device.kind.value,
                device.district,
                device.lat,
                device.lon,
                device.status.value,
                device.installed_at,
                device.commissioned_at,
                device.gateway_id,
                Jsonb(device.attrs),
            ),
        ).fetchone()


def update_device(
    conn: psycopg.Connection, device_id: str, changes: DeviceUpdate, attrs: dict[str, Any] | None
) -> DevicePublic | None:
    """Apply the given fields; `attrs`, when given, replaces the stored attributes whole
    (the caller merges and validates them)."""
    fields = changes.model_dump(exclude_unset=True, exclude={"attrs"}, mode="json")
    ensure_gateway(conn, fields.get("gateway_id"))
    if attrs is not None:
        fields["attrs"] = Jsonb(attrs)
    assignments: list[sql.Composable] = [
        sql.SQL("{} = %s").format(sql.Identifier(k)) for k in fields
    ]
    assignments.append(sql.SQL("updated_at = now()"))
    with conn.cursor(row_factory=class_row(DevicePublic)) as cur:
        return cur.execute(
            sql.SQL("UPDATE devices SET {} WHERE device_id = %s RETURNING ").format(
                sql.SQL(", ").join(assignments)
            )
            + sql.SQL(DEVICE_COLUMNS),
            [*fields.values(), device_id],
        ).fetchone()
