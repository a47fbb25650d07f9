"""`audit_log`: append-only record of every change (urbanwatch/audit.py writes it)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

INSERT_ENTRY = """INSERT INTO audit_log
    (actor, actor_role, source, action, resource, resource_id, before, after, detail)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"""
COLUMNS = "id, at, actor, actor_role, source, action, resource, resource_id, before, after, detail"


class AuditEntry(BaseModel):
    id: int | None = None
    at: datetime | None = None
    actor: str
    actor_role: str | None = None
    source: str | None = None
    action: str
    resource: str
    resource_id: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    detail: dict[str, Any] | None = None


def _json(value: dict[str, Any] | None) -> Jsonb | None:
    return Jsonb(value) if value is not None else None


def insert_entry(conn: psycopg.Connection, e: AuditEntry) -> None:
    conn.execute(
        INSERT_ENTRY,
        (
            e.actor,
            e.actor_role,
            e.source,
            e.action,
            e.resource,
            e.resource_id,
            _json(e.before),
            _json(e.after),
            _json(e.detail),
        ),
    )


def list_entries(
    conn: psycopg.Connection,
    *,
    actor: str | None = None,
    resource: str | None = None,
    resource_id: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """One page of entries, newest first, and how many match in all."""
    where = sql.SQL(
        "WHERE (%(actor)s::text IS NULL OR actor = %(actor)s) "
        "AND (%(resource)s::text IS NULL OR resource = %(resource)s) "
        "AND (%(resource_id)s::text IS NULL OR resource_id = %(resource_id)s) "
        "AND (%(action)s::text IS NULL OR action = %(action)s) "
        "AND (%(since)s::timestamptz IS NULL OR at >= %(since)s) "
        "AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"
    )
    params: dict[str, Any] = {
        "actor": actor,
        "resource": resource,
        "resource_id": resource_id,
        "action": action,
        "since": since,
        "until": until,
    }
    total = conn.execute(sql.SQL("SELECT count(*) FROM audit_log ") + where, params).fetchone()
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        page = cur.execute(
            sql.SQL(f"SELECT {COLUMNS} FROM audit_log ")
            + where
            + sql.SQL(" ORDER BY id DESC LIMIT %(limit)s OFFSET %(offset)s"),
            {**params, "limit": limit, "offset": offset},
        ).fetchall()
    return page, total[0] if total else 0
