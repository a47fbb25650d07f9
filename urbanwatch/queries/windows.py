"""Maintenance mutes (migrations 018, 022) and authorised work windows (008): what the API
lists, creates and ends. The engine reads work windows (queries/alerts.py); mutes act through
the trigger of 018/022 when an alert is written, and `unmute_ended` lifts them when they end."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel


class MuteRow(BaseModel):
    id: int
    scope: str
    target: str
    starts_at: datetime
    ends_at: datetime
    reason: str
    created_by: str
    created_at: datetime


class WorkWindowRow(BaseModel):
    id: int
    device_id: str
    starts_at: datetime
    ends_at: datetime
    work_order: str | None
    created_by: str
    created_at: datetime


MUTE_COLUMNS = "id, scope, target, starts_at, ends_at, reason, created_by, created_at"
WINDOW_COLUMNS = "id, device_id, starts_at, ends_at, work_order, created_by, created_at"
SCOPE_EXISTS = {
    "device": "SELECT EXISTS (SELECT FROM devices WHERE device_id = %s)",
    "district": "SELECT EXISTS (SELECT FROM districts WHERE code = %s)",
    "segment": "SELECT EXISTS (SELECT FROM devices WHERE attrs ->> 'segment' = %s)",
    "circuit": "SELECT EXISTS (SELECT FROM devices WHERE attrs ->> 'circuit_id' = %s)",
    "dma": "SELECT EXISTS (SELECT FROM devices WHERE attrs ->> 'dma_id' = %s)",
}


def target_exists(conn: psycopg.Connection, scope: str, target: str) -> bool:
    row = conn.execute(SCOPE_EXISTS[scope], (target,)).fetchone()  # type: ignore[call-overload]
    return bool(row and row[0])


def list_mutes(conn: psycopg.Connection, current_at: datetime | None) -> list[MuteRow]:
    """Every mute, or those in force at `current_at`."""
    with conn.cursor(row_factory=class_row(MuteRow)) as cur:
        return cur.execute(
            f"SELECT {MUTE_COLUMNS} FROM alert_mutes WHERE %s::timestamptz IS NULL "  # type: ignore[arg-type]
            "OR (starts_at <= %s AND ends_at > %s) ORDER BY starts_at, id",
            (current_at, current_at, current_at),
        ).fetchall()


def add_mute(
    conn: psycopg.Connection,
    scope: str,
    target: str,
    starts_at: datetime,
    ends_at: datetime,
    reason: str,
    actor: str,
) -> MuteRow:
    with conn.cursor(row_factory=class_row(MuteRow)) as cur:
        row = cur.execute(
            "INSERT INTO alert_mutes (scope, target, starts_at, ends_at, reason, created_by) "  # type: ignore[arg-type]
            f"VALUES (%s, %s, %s, %s, %s, %s) RETURNING {MUTE_COLUMNS}",
            (scope, target, starts_at, ends_at, reason, actor),
        ).fetchone()
    assert row is not None
    return row


def delete_mute(conn: psycopg.Connection, mute_id: int) -> MuteRow | None:
    with conn.cursor(row_factory=class_row(MuteRow)) as cur:
        return cur.execute(
            f"DELETE FROM alert_mutes WHERE id = %s RETURNING {MUTE_COLUMNS}",  # type: ignore[arg-type]
            (mute_id,),
        ).fetchone()


def unmute_ended(conn: psycopg.Connection, actor: str) -> int:
    """Un-suppress the unresolved alerts whose mute ended (or was deleted) and that no other
    mute covers now, each with one 'unsuppressed' event by `actor` (migration 022,
    `alert_unmute_ended`); in the caller's transaction. Returns how many."""
    row = conn.execute("SELECT alert_unmute_ended(%s)", (actor,)).fetchone()
    return int(row[0]) if row else 0


def list_work_windows(
    conn: psycopg.Connection, device_id: str | None, current_at: datetime | None
) -> list[WorkWindowRow]:
    with conn.cursor(row_factory=class_row(WorkWindowRow)) as cur:
        return cur.execute(
            f"SELECT {WINDOW_COLUMNS} FROM work_windows "  # type: ignore[arg-type]
            "WHERE (%s::text IS NULL OR device_id = %s) AND (%s::timestamptz IS NULL "
            "OR (starts_at <= %s AND ends_at > %s)) ORDER BY starts_at, id",
            (device_id, device_id, current_at, current_at, current_at),
        ).fetchall()


def add_work_window(
    conn: psycopg.Connection,
    device_id: str,
    starts_at: datetime,
    ends_at: datetime,
    work_order: str | None,
    actor: str,
) -> WorkWindowRow:
    with conn.cursor(row_factory=class_row(WorkWindowRow)) as cur:
        row = cur.execute(
            "INSERT INTO work_windows (device_id, starts_at, ends_at, work_order, created_by) "  # type: ignore[arg-type]
            f"VALUES (%s, %s, %s, %s, %s) RETURNING {WINDOW_COLUMNS}",
            (device_id, starts_at, ends_at, work_order, actor),
        ).fetchone()
    assert row is not None
    return row


def delete_work_window(conn: psycopg.Connection, window_id: int) -> WorkWindowRow | None:
    with conn.cursor(row_factory=class_row(WorkWindowRow)) as cur:
        return cur.execute(
            f"DELETE FROM work_windows WHERE id = %s RETURNING {WINDOW_COLUMNS}",  # type: ignore[arg-type]
            (window_id,),
        ).fetchone()
