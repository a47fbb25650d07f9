"""SLA escalation on the on-site and resolve deadlines (migrations 018 and 023,
docs/notifications.md), and the on-site state people record.

Each deadline escalates at most once per round of work: the UPDATE that raises the alert's
level also marks the deadline escalated, and the 'escalated' event is written in the same
transaction (the caller's), so a notifier restarted, or a second one running, cannot repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from urbanwatch.queries.notify import insert_escalated


@dataclass(frozen=True)
class Deadline:
    reason: str  # the event detail's "reason"
    due: str  # the alert's deadline column
    mark: str  # the column set when it escalated
    pending: str  # what still has to be true for it to escalate, besides being unresolved


# On site first: when the notifier was away past both, the levels go up in deadline order.
DEADLINES = (
    Deadline("site_overdue", "site_due_at", "site_escalated_at", "a.on_site_at IS NULL"),
    Deadline("resolve_overdue", "resolve_due_at", "resolve_escalated_at", "true"),
)

ESCALATE = """WITH due AS (
        SELECT a.id FROM alerts a
        WHERE a.status <> 'resolved' AND NOT a.suppressed AND a.{mark} IS NULL
          AND a.{due} IS NOT NULL AND a.{due} <= now() AND {pending}
        ORDER BY a.{due} LIMIT %(limit)s FOR UPDATE OF a SKIP LOCKED)
    UPDATE alerts a SET escalation_level = a.escalation_level + 1, {mark} = now()
    FROM due WHERE a.id = due.id
    RETURNING a.id, a.severity, a.escalation_level, a.{due}"""


def escalate_deadlines(conn: psycopg.Connection, actor: str, limit: int = 500) -> int:
    """Escalate every unresolved, unsuppressed alert past its on-site deadline with nobody
    recorded on site, or past its resolve deadline, once per deadline: the level goes up by
    one and an 'escalated' event (detail reason, level, the deadline) is written, which the
    trigger of 012 queues for delivery. In the caller's transaction; returns the count."""
    n = 0
    for d in DEADLINES:
        query = sql.SQL(ESCALATE).format(
            mark=sql.Identifier(d.mark), due=sql.Identifier(d.due), pending=sql.SQL(d.pending)
        )
        rows = conn.execute(query, {"limit": limit}).fetchall()
        insert_escalated(conn, actor, d.reason, d.due, rows)
        n += len(rows)
    return n


def mark_on_site(conn: psycopg.Connection, alert_id: int, actor: str) -> datetime | None:
    """Record that a person is on site (the first time only); returns when, or None when it
    was already recorded (nothing changes then)."""
    row = conn.execute(
        "UPDATE alerts SET on_site_at = now(), on_site_by = %s, updated_at = now() "
        "WHERE id = %s AND on_site_at IS NULL RETURNING on_site_at",
        (actor, alert_id),
    ).fetchone()
    return None if row is None else row[0]


def on_site(conn: psycopg.Connection, alert_id: int) -> tuple[datetime | None, str | None]:
    """When and by whom the alert was marked on site (None, None: not yet)."""
    row = conn.execute(
        "SELECT on_site_at, on_site_by FROM alerts WHERE id = %s", (alert_id,)
    ).fetchone()
    return (None, None) if row is None else (row[0], row[1])
