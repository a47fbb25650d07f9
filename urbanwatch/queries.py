"""Queries shared by the services: one SQL constant beside one small typed function each."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from urbanwatch.models import (
    KINDS,
    DeviceCreate,
    DevicePublic,
    DeviceUpdate,
    DistrictPublic,
)

# The rollups each kind has: per device and hour, and per district and hour.
ROLLUP_VIEWS = ("{kind}_hourly", "{kind}_district_hourly")

DEVICE_COLUMNS = (
    "device_id, kind, district, lat, lon, status, installed_at, commissioned_at, attrs, "
    "created_at, updated_at"
)


def get_storage(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT value FROM urbanwatch_meta WHERE key = 'storage'").fetchone()
    return row[0] if row else "plain"


def list_districts(conn: psycopg.Connection) -> list[DistrictPublic]:
    with conn.cursor(row_factory=class_row(DistrictPublic)) as cur:
        return cur.execute(
            "SELECT code, name_zh, name_en, district_class FROM districts ORDER BY code"
        ).fetchall()


def device_kinds(conn: psycopg.Connection, device_ids: list[str] | None = None) -> dict[str, str]:
    """device_id -> kind, for all devices or for the given ids."""
    if device_ids is None:
        rows = conn.execute("SELECT device_id, kind FROM devices")
    else:
        rows = conn.execute(
            "SELECT device_id, kind FROM devices WHERE device_id = ANY(%s)", (device_ids,)
        )
    return dict(rows.fetchall())  # type: ignore[arg-type]


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
    with conn.cursor(row_factory=class_row(DevicePublic)) as cur:
        return cur.execute(
            f"""INSERT INTO devices (device_id, kind, district, lat, lon, status, installed_at,
                                     commissioned_at, attrs)
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
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
                Jsonb(device.attrs),
            ),
        ).fetchone()


def update_device(
    conn: psycopg.Connection, device_id: str, changes: DeviceUpdate, attrs: dict[str, Any] | None
) -> DevicePublic | None:
    """Apply the given fields; `attrs`, when given, replaces the stored attributes whole
    (the caller merges and validates them)."""
    fields = changes.model_dump(exclude_unset=True, exclude={"attrs"}, mode="json")
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


def count_readings(conn: psycopg.Connection, kind: str) -> int:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(f"{kind}_readings"))
    ).fetchone()
    return row[0] if row else 0


def dead_letter_counts(conn: psycopg.Connection) -> dict[str, int]:
    rows = conn.execute("SELECT reason_code, count(*) FROM dead_letters GROUP BY 1 ORDER BY 1")
    return dict(rows.fetchall())  # type: ignore[arg-type]


def refresh_rollups(
    conn: psycopg.Connection, start: datetime | None = None, end: datetime | None = None
) -> str:
    """Bring the `<kind>_hourly` rollups up to date. On TimescaleDB this refreshes the
    continuous aggregates over [start, end) (all time when omitted), which a backfill of
    old data needs since the policy only looks 4 days back. Needs an autocommit connection."""
    if get_storage(conn) == "timescale":
        for kind in KINDS:
            for view in ROLLUP_VIEWS:
                _refresh_cagg(conn, view.format(kind=kind), start, end)
        return "refreshed continuous aggregates"
    row = conn.execute("SELECT urbanwatch_refresh_rollups()").fetchone()
    return f"materialized {row[0] if row else 0} hourly rows"


# A policy run of the same aggregate holds its refresh lock for a moment; wait it out.
CAGG_LOCK_RETRIES = 60
CAGG_LOCK_WAIT_S = 0.5


def _refresh_cagg(
    conn: psycopg.Connection, view: str, start: datetime | None, end: datetime | None
) -> None:
    for attempt in range(CAGG_LOCK_RETRIES):
        try:
            conn.execute(
                "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)",
                (view, start, end),
            )
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == CAGG_LOCK_RETRIES - 1:
                raise
            time.sleep(CAGG_LOCK_WAIT_S)


def settle_after_bulk_load(conn: psycopg.Connection) -> None:
    """VACUUM ANALYZE the readings tables after a bulk load (a backfill): fresh statistics,
    and on plain storage the BRIN ranges get summarized — an unsummarized range matches every
    time-range query, which turned a 3 ms rollup query into 270 ms. Needs autocommit."""
    for kind in KINDS:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(f"{kind}_readings")))
    conn.execute("ANALYZE devices")  # imported with the fleet; rollup joins plan on its stats
