"""Notification tables (urbanwatch/sql/012_notify.sql): routes, inbox, outbox, attempts, SLA."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from urbanwatch.routing.model import RouteFile

# --- routes ----------------------------------------------------------------------------


def replace_routes(conn: psycopg.Connection, f: RouteFile, source: str, sha256: str) -> None:
    """The whole routing replaced by `f` (in the caller's transaction)."""
    for table in ("notify_routes", "notify_crews", "notify_channels", "notify_units", "notify_sla"):
        conn.execute(f"DELETE FROM {table}")
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO notify_units (id, name, name_en) VALUES (%s, %s, %s)",
            [(k, u.name, u.name_en) for k, u in f.units.items()],
        )
        cur.executemany(
            "INSERT INTO notify_channels (name, type, config, rate_per_min) "
            "VALUES (%s, %s, %s, %s)",
            [
                (k, c.type, Jsonb(c.model_dump(exclude={"type", "rate_per_min"})), c.rate_per_min)
                for k, c in f.channels.items()
            ],
        )
        cur.executemany(
            "INSERT INTO notify_crews (name, unit, label, channels) VALUES (%s, %s, %s, %s)",
            [(k, c.unit, c.label, c.channels) for k, c in f.crews.items()],
        )
        cur.executemany(
            "INSERT INTO notify_routes (line, kind, district, min_severity, unit, crews, escalate)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (r.line, r.kind, r.district, r.min_severity, r.unit, r.crews, r.escalate)
                for r in f.routes
            ],
        )
        cur.executemany(
            "INSERT INTO notify_sla (severity, ack_s, max_level) VALUES (%s, %s, %s)",
            [(k, s.ack, s.max_level) for k, s in f.sla.items()],
        )
    conn.execute(
        "INSERT INTO notify_route_loads (source, sha256) VALUES (%s, %s)", (source, sha256)
    )


def read_routes(conn: psycopg.Connection) -> RouteFile | None:
    """The loaded routing, or None when none was ever loaded."""
    routes = conn.execute(
        "SELECT line, kind, district, min_severity, unit, crews, escalate FROM notify_routes "
        "ORDER BY id"
    ).fetchall()
    if not routes:
        return None
    cols = ("line", "kind", "district", "min_severity", "unit", "crews", "escalate")
    data: dict[str, Any] = {
        "version": 1,
        "sla": {
            s: {"ack": a, "max_level": m}
            for s, a, m in conn.execute("SELECT severity, ack_s, max_level FROM notify_sla")
        },
        "units": {
            i: {"name": n, "name_en": e}
            for i, n, e in conn.execute("SELECT id, name, name_en FROM notify_units")
        },
        "channels": {
            n: {**cfg, "type": t, "rate_per_min": r}
            for n, t, cfg, r in conn.execute(
                "SELECT name, type, config, rate_per_min FROM notify_channels"
            )
        },
        "crews": {
            n: {"unit": u, "label": lab, "channels": ch}
            for n, u, lab, ch in conn.execute(
                "SELECT name, unit, label, channels FROM notify_crews"
            )
        },
        "routes": [dict(zip(cols, r, strict=True)) for r in routes],
    }
    return RouteFile.model_validate(data)


# --- inbox -> outbox ---------------------------------------------------------------------


class InboxRow(BaseModel):
    event_id: int
    event: str
    at: datetime
    actor: str
    event_severity: str
    event_detail: dict[str, Any]
    prev_severity: str | None = None  # the alert's severity at its previous event
    alert_id: int
    rule_id: str
    subject: str
    device_id: str | None
    kind: str
    district: str | None
    unit: str | None
    severity: str
    status: str
    suppressed: bool
    title: str
    opened_at: datetime
    ack_due_at: datetime | None
    escalation_level: int


TAKE_INBOX = """SELECT i.event_id, e.event, e.at, e.actor, e.severity AS event_severity,
        e.detail AS event_detail,
        (SELECT p.severity FROM alert_events p WHERE p.alert_id = e.alert_id AND p.id < e.id
         ORDER BY p.id DESC LIMIT 1) AS prev_severity,
        a.id AS alert_id, a.rule_id, a.subject, a.device_id, a.kind,
        a.district, a.unit, a.severity, a.status, a.suppressed, a.title, a.opened_at, a.ack_due_at,
        a.escalation_level
    FROM notify_inbox i JOIN alert_events e ON e.id = i.event_id JOIN alerts a ON a.id = e.alert_id
    ORDER BY i.event_id LIMIT %s FOR UPDATE OF i SKIP LOCKED"""


def take_inbox(conn: psycopg.Connection, limit: int) -> list[InboxRow]:
    """Events not yet routed, locked until the caller's transaction ends."""
    with conn.cursor(row_factory=class_row(InboxRow)) as cur:
        return cur.execute(TAKE_INBOX, (limit,)).fetchall()


def delete_inbox(conn: psycopg.Connection, event_ids: list[int]) -> None:
    conn.execute("DELETE FROM notify_inbox WHERE event_id = ANY(%s)", (event_ids,))


class OutboxInsert(BaseModel):
    event_id: int
    alert_id: int
    channel: str
    crews: list[str]
    idempotency_key: str
    message: dict[str, Any]
    status: str = "pending"
    last_error: str | None = None


def insert_outbox(conn: psycopg.Connection, rows: list[OutboxInsert]) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO notify_outbox (event_id, alert_id, channel, crews, idempotency_key, "
            "message, status, last_error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT (idempotency_key) DO NOTHING",
            [
                (
                    r.event_id,
                    r.alert_id,
                    r.channel,
                    r.crews,
                    r.idempotency_key,
                    Jsonb(r.message),
                    r.status,
                    r.last_error,
                )
                for r in rows
            ],
        )


def set_ack_due(
    conn: psycopg.Connection, alert_id: int, due: datetime | None, reset_level: bool
) -> None:
    conn.execute(
        "UPDATE alerts SET ack_due_at = %s, escalation_level = CASE WHEN %s THEN 0 "
        "ELSE escalation_level END WHERE id = %s",
        (due, reset_level, alert_id),
    )


# --- escalation ---------------------------------------------------------------------------

ESCALATE = """WITH due AS (
        SELECT a.id FROM alerts a JOIN notify_sla s ON s.severity = a.severity
        WHERE a.status = 'open' AND NOT a.suppressed AND a.ack_due_at IS NOT NULL
          AND s.ack_s IS NOT NULL AND a.escalation_level < s.max_level
          AND a.ack_due_at + a.escalation_level * s.ack_s * interval '1 second' <= now()
        ORDER BY a.ack_due_at LIMIT %(limit)s FOR UPDATE OF a SKIP LOCKED)
    UPDATE alerts a SET escalation_level = a.escalation_level + 1
    FROM due WHERE a.id = due.id
    RETURNING a.id, a.severity, a.escalation_level, a.ack_due_at"""
INSERT_ESCALATED = """INSERT INTO alert_events (alert_id, event, actor, severity, detail)
    VALUES (%s, 'escalated', %s, %s, %s)"""


def insert_escalated(
    conn: psycopg.Connection,
    actor: str,
    reason: str,
    due_key: str,
    rows: Sequence[tuple[int, str, int, datetime]],
) -> None:
    """The 'escalated' event of each alert an ESCALATE statement returned (id, severity, new
    level, deadline): detail {"reason", "level", `due_key`: the deadline}. The acknowledge
    escalation here and the on-site and resolve ones (queries/sla.py) write them alike."""
    with conn.cursor() as cur:
        cur.executemany(
            INSERT_ESCALATED,
            [
                (i, actor, sev, Jsonb({"reason": reason, "level": lvl, due_key: due.isoformat()}))
                for i, sev, lvl, due in rows
            ],
        )


def escalate_overdue(conn: psycopg.Connection, actor: str, limit: int = 500) -> int:
    """Raise the level of every open alert past its acknowledge deadline (the deadline plus
    one SLA period per level already reached) and write its 'escalated' event; the trigger
    queues that event for delivery. In the caller's transaction."""
    rows = conn.execute(ESCALATE, {"limit": limit}).fetchall()
    insert_escalated(conn, actor, "ack_overdue", "ack_due_at", rows)
    return len(rows)


# --- delivery ----------------------------------------------------------------------------


class OutboxRow(BaseModel):
    id: int
    alert_id: int
    channel: str
    idempotency_key: str
    message: dict[str, Any]
    attempts: int
    created_at: datetime
    suppressed: bool


def channels_due(conn: psycopg.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT DISTINCT channel FROM notify_outbox WHERE status = 'pending' "
        "AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())"
    ).fetchall()
    return [r[0] for r in rows]


CLAIM = """WITH due AS (
        SELECT o.id FROM notify_outbox o
        WHERE o.channel = %(channel)s AND o.status = 'pending' AND o.next_attempt_at <= now()
          AND (o.lease_until IS NULL OR o.lease_until < now())
        ORDER BY o.id LIMIT %(limit)s FOR UPDATE SKIP LOCKED)
    UPDATE notify_outbox o
    SET lease_until = now() + %(lease_s)s * interval '1 second'
    FROM due, alerts a WHERE o.id = due.id AND a.id = o.alert_id
    RETURNING o.id, o.alert_id, o.channel, o.idempotency_key, o.message, o.attempts,
        o.created_at, a.suppressed"""


def claim_due(
    conn: psycopg.Connection, channel: str, limit: int, lease_s: float
) -> list[OutboxRow]:
    """Lease up to `limit` due rows of one channel (oldest first) to this notifier."""
    with conn.cursor(row_factory=class_row(OutboxRow)) as cur:
        rows = cur.execute(
            CLAIM, {"channel": channel, "limit": limit, "lease_s": lease_s}
        ).fetchall()
    return sorted(rows, key=lambda r: r.id)


def skip_rows(conn: psycopg.Connection, ids: list[int], reason: str) -> None:
    conn.execute(
        "UPDATE notify_outbox SET status = 'skipped', lease_until = NULL, last_error = %s "
        "WHERE id = ANY(%s)",
        (reason, ids),
    )


class RecentSends(BaseModel):
    last_minute: int  # attempts started in the last 60 s
    since_last_s: float | None  # seconds since the latest attempt (None: none this hour)
    last_size: int  # events the latest attempt carried (> 1: a digest)


RECENT_SENDS = """SELECT count(*) FILTER (WHERE started_at > now() - interval '60 seconds')
        AS last_minute,
        extract(epoch FROM now() - max(started_at))::float8 AS since_last_s,
        coalesce((array_agg(cardinality(outbox_ids) ORDER BY started_at DESC))[1], 0)
        AS last_size
    FROM notify_attempts WHERE channel = %s AND started_at > now() - interval '1 hour'"""


def recent_sends(conn: psycopg.Connection, channel: str) -> RecentSends:
    with conn.cursor(row_factory=class_row(RecentSends)) as cur:
        row = cur.execute(RECENT_SENDS, (channel,)).fetchone()
    assert row is not None
    return row


def start_attempt(conn: psycopg.Connection, channel: str, ids: list[int], notifier: str) -> int:
    """Log an attempt about to leave (outcome 'sending' until it is finished)."""
    conn.execute("UPDATE notify_outbox SET attempts = attempts + 1 WHERE id = ANY(%s)", (ids,))
    row = conn.execute(
        "INSERT INTO notify_attempts (channel, outbox_ids, notifier) VALUES (%s, %s, %s) "
        "RETURNING id",
        (channel, ids, notifier),
    ).fetchone()
    assert row is not None
    return int(row[0])


def finish_ok(conn: psycopg.Connection, attempt: int, ids: list[int], code: int | None) -> None:
    conn.execute(
        "UPDATE notify_attempts SET finished_at = now(), outcome = 'ok', status_code = %s "
        "WHERE id = %s",
        (code, attempt),
    )
    conn.execute(
        "UPDATE notify_outbox SET status = 'sent', sent_at = now(), lease_until = NULL, "
        "digest_id = CASE WHEN cardinality(%s::bigint[]) > 1 THEN %s END, last_error = NULL "
        "WHERE id = ANY(%s)",
        (ids, attempt, ids),
    )


def finish_failed(
    conn: psycopg.Connection,
    attempt: int,
    ids: list[int],
    code: int | None,
    error: str,
    retry_in_s: float,
    give_up_s: float,
) -> None:
    """Log the failure; retry after `retry_in_s`, or mark dead once older than `give_up_s`."""
    conn.execute(
        "UPDATE notify_attempts SET finished_at = now(), outcome = 'failed', status_code = %s, "
        "error = %s WHERE id = %s",
        (code, error[:1000], attempt),
    )
    conn.execute(
        "UPDATE notify_outbox SET lease_until = NULL, last_error = %s, "
        "next_attempt_at = now() + %s * interval '1 second', "
        "status = CASE WHEN created_at < now() - %s * interval '1 second' THEN 'dead' "
        "ELSE 'pending' END WHERE id = ANY(%s)",
        (error[:1000], retry_in_s, give_up_s, ids),
    )


def prune(conn: psycopg.Connection, keep_days: float) -> int:
    """Drop delivered, skipped and dead outbox rows and finished attempts older than
    `keep_days` (the alert's own history stays in alert_events)."""
    cur = conn.execute(
        "DELETE FROM notify_outbox WHERE status <> 'pending' "
        "AND created_at < now() - %s * interval '1 day'",
        (keep_days,),
    )
    conn.execute(
        "DELETE FROM notify_attempts WHERE outcome <> 'sending' "
        "AND started_at < now() - %s * interval '1 day'",
        (keep_days,),
    )
    return cur.rowcount
