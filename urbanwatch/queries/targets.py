"""`plan_targets` and `plan_target_history` (urbanwatch/sql/013_plan_targets.sql)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

if TYPE_CHECKING:
    from urbanwatch.plan.targets import Target

FIELDS = (
    "id", "kpi", "title_zh", "title_en", "scope", "district", "comparator", "target_value",
    "unit", "deadline", "period_start", "clause_ref", "clause_zh", "lead_units",
    "partner_units", "note",
)  # fmt: skip
COLUMNS = ", ".join(FIELDS)
INSERT = (
    f"INSERT INTO plan_targets ({COLUMNS}, updated_by) "
    f"VALUES ({', '.join('%(' + f + ')s' for f in FIELDS)}, %(actor)s)"
)
UPDATE = (
    "UPDATE plan_targets SET "
    + ", ".join(f"{f} = %({f})s" for f in FIELDS if f != "id")
    + ", updated_at = now(), updated_by = %(actor)s WHERE id = %(id)s"
)


class HistoryEntry(BaseModel):
    id: int
    target_id: str
    changed_at: datetime
    changed_by: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any]


def _target(row: dict[str, Any]) -> Target:
    from urbanwatch.plan.targets import Target

    return Target.model_validate(row)


def list_targets(conn: psycopg.Connection) -> list[Target]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {COLUMNS} FROM plan_targets "
            "ORDER BY substring(id from '[0-9]+')::int NULLS LAST, id"
        ).fetchall()
    return [_target(r) for r in rows]


def get_target(conn: psycopg.Connection, target_id: str, *, lock: bool = False) -> Target | None:
    lock_sql = " FOR UPDATE" if lock else ""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            f"SELECT {COLUMNS} FROM plan_targets WHERE id = %s{lock_sql}", (target_id,)
        ).fetchone()
    return _target(row) if row else None


def insert_target(conn: psycopg.Connection, target: Target, actor: str) -> None:
    conn.execute(INSERT, target.model_dump() | {"actor": actor})


def update_target(conn: psycopg.Connection, target: Target, actor: str) -> None:
    conn.execute(UPDATE, target.model_dump() | {"actor": actor})


def insert_history(
    conn: psycopg.Connection,
    target_id: str,
    actor: str,
    action: str,
    before: dict[str, Any] | None,
    after: dict[str, Any],
) -> None:
    conn.execute(
        "INSERT INTO plan_target_history (target_id, changed_by, action, before, after) "
        "VALUES (%s, %s, %s, %s, %s)",
        (target_id, actor, action, Jsonb(before) if before is not None else None, Jsonb(after)),
    )


def list_history(conn: psycopg.Connection, target_id: str) -> list[HistoryEntry]:
    with conn.cursor(row_factory=class_row(HistoryEntry)) as cur:
        return cur.execute(
            "SELECT id, target_id, changed_at, changed_by, action, before, after "
            "FROM plan_target_history WHERE target_id = %s ORDER BY id",
            (target_id,),
        ).fetchall()
