"""Alerts as people work them (migrations 008, 011, 012, 018; docs/api-alerts.md): list and
read alerts with their history and readings, and the transitions people make, each with its
alert_events row in the caller's transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field, computed_field

from urbanwatch.kinds import KINDS

READINGS_AROUND = timedelta(hours=1)  # readings shown before the alert opened and after it ended
MAX_READINGS = 500
STREAM_BATCH = 500  # events a live-stream poll reads at most
EFFECTIVE_UNIT = "coalesce(a.unit, alert_route_unit(a.kind, a.district, a.severity))"
# An alert a scoped reader may see: routed or assigned to a unit that goes by the reader's
# unit (022: crew_scope_units, the inverse of alert_unit_aliases). Both subqueries are
# uncorrelated: run once per query, not per alert. Takes the reader's unit twice; never NULL.
IN_SCOPE = """coalesce({unit} IN (SELECT unnest(crew_scope_units(%s)))
    OR a.assigned_crew IN (SELECT c.name FROM notify_crews c
                           WHERE c.unit = ANY(crew_scope_units(%s))), false)"""


@dataclass(frozen=True)
class Scope:
    """What a crew reads: the alerts routed or assigned to `unit` (an id or a name of the
    unit; None: nothing). Readers with no Scope see every alert."""

    unit: str | None


# When the acknowledge deadline last escalated: the notifier marks it by an 'escalated' event
# only (queries/notify.py), the on-site and resolve deadlines by their columns (migration 023).
ACK_ESCALATED = """(SELECT max(e.at) FROM alert_events e WHERE e.alert_id = a.id
    AND e.event = 'escalated' AND e.detail ->> 'reason' = 'ack_overdue'
    AND e.at >= a.ack_due_at)"""
COLUMNS = f"""a.id, a.rule_id, a.subject, a.device_id, a.kind, a.district,
    {EFFECTIVE_UNIT} AS unit,
    a.severity, a.status, a.active, a.opened_at, a.updated_at, a.cleared_at,
    a.acknowledged_at, a.acknowledged_by, a.resolved_at, a.resolved_by, a.parent_id,
    a.suppressed, a.title, a.detail, a.flap_count, a.last_fired_at, a.ack_due_at,
    a.escalation_level, a.site_due_at, a.resolve_due_at, a.assigned_crew, a.assignee,
    a.assigned_at, a.on_site_at, a.on_site_by, {ACK_ESCALATED} AS ack_escalated_at,
    a.site_escalated_at, a.resolve_escalated_at"""


# The list filtered by unit: the route of each distinct (kind, district, severity) once, not
# alert_route_unit() per alert (a crew's first page of 50,000 alerts: 1.2 s -> 0.18 s here).
ROUTED_BASE = f"""WITH routed AS (
        SELECT k.kind, k.district, k.severity,
               alert_route_unit(k.kind, nullif(k.district, ''), k.severity) AS unit
        FROM (SELECT DISTINCT kind, coalesce(district, '') AS district, severity
              FROM alerts) k)
    SELECT {COLUMNS.replace(EFFECTIVE_UNIT, "coalesce(a.unit, r.unit)")}
    FROM alerts a LEFT JOIN routed r ON r.kind = a.kind
        AND r.district = coalesce(a.district, '') AND r.severity = a.severity"""


class SlaDeadline(BaseModel):
    """One SLA deadline of an alert: when it is due and whether the notifier escalated it
    (for the acknowledge deadline: when it last did; it repeats each SLA period)."""

    due_at: datetime | None
    escalated_at: datetime | None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def escalated(self) -> bool:
        return self.escalated_at is not None


class AlertRow(BaseModel):
    id: int
    rule_id: str
    subject: str
    device_id: str | None
    kind: str
    district: str | None
    unit: str | None
    severity: str
    status: str
    active: bool
    opened_at: datetime
    updated_at: datetime
    cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    parent_id: int | None
    suppressed: bool
    title: str
    detail: dict[str, Any]
    flap_count: int
    last_fired_at: datetime | None
    ack_due_at: datetime | None
    escalation_level: int
    site_due_at: datetime | None
    resolve_due_at: datetime | None
    assigned_crew: str | None
    assignee: str | None
    assigned_at: datetime | None
    on_site_at: datetime | None = None
    on_site_by: str | None = None
    ack_escalated_at: datetime | None = None
    site_escalated_at: datetime | None = None
    resolve_escalated_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def sla(self) -> dict[str, SlaDeadline]:
        """The three SLA deadlines, each with whether (and when) it escalated."""
        return {
            "ack": SlaDeadline(due_at=self.ack_due_at, escalated_at=self.ack_escalated_at),
            "on_site": SlaDeadline(due_at=self.site_due_at, escalated_at=self.site_escalated_at),
            "resolve": SlaDeadline(
                due_at=self.resolve_due_at, escalated_at=self.resolve_escalated_at
            ),
        }


class EventRow(BaseModel):
    id: int
    alert_id: int
    at: datetime
    event: str
    actor: str
    severity: str
    detail: dict[str, Any]


class StreamEvent(EventRow):
    """An event as the live stream reads it: `visible` to the stream's reader (not sent)."""

    visible: bool = Field(True, exclude=True)


class AlertFilter(BaseModel):
    status: str | None = None
    active: bool | None = None
    kind: str | None = None
    district: str | None = None
    severity: str | None = None
    unit: str | None = None
    crew: str | None = None
    assignee: str | None = None
    rule_id: str | None = None
    parent_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    visible_to: Scope | None = None


def list_alerts(
    conn: psycopg.Connection, f: AlertFilter, limit: int, offset: int
) -> tuple[int, list[AlertRow]]:
    """(total matching, one page newest first)."""
    where, params = _where(f)
    base = f"SELECT {COLUMNS} FROM alerts a"
    if f.unit is not None or f.visible_to is not None:  # filtered on the effective unit
        base = ROUTED_BASE
    inner = f"SELECT * FROM ({base}) a WHERE {where}"
    total_row = conn.execute(f"SELECT count(*) FROM ({inner}) t", params).fetchone()  # type: ignore[arg-type]
    with conn.cursor(row_factory=class_row(AlertRow)) as cur:
        cur.execute(
            f"{inner} ORDER BY a.opened_at DESC, a.id DESC LIMIT %s OFFSET %s",  # type: ignore[arg-type]
            [*params, limit, offset],
        )
        rows = cur.fetchall()
    return (int(total_row[0]) if total_row else 0), rows


def _where(f: AlertFilter) -> tuple[str, list[Any]]:
    """Each filter is a fixed clause with a bound parameter (no text from the caller)."""
    clauses, params = ["true"], []
    equal = {
        "status": "a.status",
        "active": "a.active",
        "kind": "a.kind",
        "district": "a.district",
        "severity": "a.severity",
        "unit": "a.unit",
        "crew": "a.assigned_crew",
        "assignee": "a.assignee",
        "rule_id": "a.rule_id",
        "parent_id": "a.parent_id",
    }
    for key, column in equal.items():
        value = getattr(f, key)
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if f.since is not None:
        clauses.append("a.opened_at >= %s")
        params.append(f.since)
    if f.until is not None:
        clauses.append("a.opened_at < %s")
        params.append(f.until)
    if f.visible_to is not None:  # a.unit is the effective unit here (list_alerts' inner query)
        clauses.append(IN_SCOPE.format(unit="a.unit"))
        params += [f.visible_to.unit, f.visible_to.unit]
    return " AND ".join(clauses), params


def get_alert(conn: psycopg.Connection, alert_id: int, lock: bool = False) -> AlertRow | None:
    query = f"SELECT {COLUMNS} FROM alerts a WHERE a.id = %s" + (" FOR UPDATE" if lock else "")
    with conn.cursor(row_factory=class_row(AlertRow)) as cur:
        return cur.execute(query, (alert_id,)).fetchone()  # type: ignore[arg-type]


def alert_events(conn: psycopg.Connection, alert_id: int) -> list[EventRow]:
    with conn.cursor(row_factory=class_row(EventRow)) as cur:
        return cur.execute(
            "SELECT id, alert_id, at, event, actor, severity, detail FROM alert_events "
            "WHERE alert_id = %s ORDER BY id",
            (alert_id,),
        ).fetchall()


def events_after(
    conn: psycopg.Connection,
    after_id: int,
    limit: int = STREAM_BATCH,
    visible_to: Scope | None = None,
) -> list[StreamEvent]:
    """Events with an id above `after_id`, oldest first (the live stream's poll), each marked
    `visible` when its alert is in `visible_to` now (every one without a scope). All are
    returned, so the stream's cursor sees consecutive ids and holds back only real gaps."""
    visible = "true" if visible_to is None else IN_SCOPE.format(unit=EFFECTIVE_UNIT)
    params: list[Any] = [] if visible_to is None else [visible_to.unit] * 2
    with conn.cursor(row_factory=class_row(StreamEvent)) as cur:
        return cur.execute(
            "SELECT e.id, e.alert_id, e.at, e.event, e.actor, e.severity, e.detail, "  # type: ignore[arg-type]
            f"{visible} AS visible FROM alert_events e JOIN alerts a ON a.id = e.alert_id "
            "WHERE e.id > %s ORDER BY e.id LIMIT %s",
            [*params, after_id, limit],
        ).fetchall()


def last_event_id(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(max(id), 0) FROM alert_events").fetchone()
    return int(row[0]) if row else 0


def readings_around(conn: psycopg.Connection, alert: AlertRow) -> list[dict[str, Any]]:
    """The device's readings from an hour before the alert opened to an hour after it ended
    (or now), newest last; none for an alert about a group."""
    if alert.device_id is None or alert.kind not in KINDS:
        return []
    end = alert.resolved_at or alert.cleared_at
    query = sql.SQL(
        "SELECT * FROM {} WHERE device_id = %s AND ts >= %s AND (%s::timestamptz IS NULL "
        "OR ts <= %s) ORDER BY ts DESC LIMIT %s"
    ).format(sql.Identifier(f"{alert.kind}_readings"))
    until = end + READINGS_AROUND if end else None
    params = (alert.device_id, alert.opened_at - READINGS_AROUND, until, until, MAX_READINGS)
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(query, params).fetchall()
    return list(reversed(rows))


def write_event(
    conn: psycopg.Connection,
    alert_id: int,
    event: str,
    actor: str,
    severity: str,
    detail: dict[str, Any],
) -> int:
    row = conn.execute(
        "INSERT INTO alert_events (alert_id, event, actor, severity, detail) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id",
        (alert_id, event, actor, severity, Jsonb(detail)),
    ).fetchone()
    assert row is not None
    return int(row[0])


ACKNOWLEDGE = """UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(),
    acknowledged_by = %s, updated_at = now() WHERE id = %s"""
ASSIGN = """UPDATE alerts SET assigned_crew = %s, assignee = %s, assigned_at = now(),
    updated_at = now() WHERE id = %s"""
RESOLVE = """UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = %s,
    active = false, cleared_at = coalesce(cleared_at, now()), updated_at = now() WHERE id = %s"""
REOPEN = """UPDATE alerts SET status = 'open', resolved_at = NULL, resolved_by = NULL,
    acknowledged_at = NULL, acknowledged_by = NULL, flap_count = flap_count + 1,
    updated_at = now() WHERE id = %s"""
UNRESOLVED_TWIN = """SELECT id FROM alerts WHERE rule_id = %s AND subject = %s
    AND status <> 'resolved' AND id <> %s"""


def acknowledge(conn: psycopg.Connection, alert_id: int, actor: str) -> None:
    conn.execute(ACKNOWLEDGE, (actor, alert_id))


def assign(conn: psycopg.Connection, alert_id: int, crew: str | None, person: str | None) -> None:
    conn.execute(ASSIGN, (crew, person, alert_id))


def resolve(conn: psycopg.Connection, alert_id: int, actor: str) -> None:
    conn.execute(RESOLVE, (actor, alert_id))


def unresolved_twin(conn: psycopg.Connection, alert: AlertRow) -> int | None:
    """Another unresolved alert with the same dedup key (then this one cannot reopen)."""
    row = conn.execute(UNRESOLVED_TWIN, (alert.rule_id, alert.subject, alert.id)).fetchone()
    return None if row is None else int(row[0])


def reopen(conn: psycopg.Connection, alert_id: int) -> None:
    conn.execute(REOPEN, (alert_id,))


def crew_exists(conn: psycopg.Connection, crew: str) -> bool:
    row = conn.execute("SELECT EXISTS (SELECT FROM notify_crews WHERE name = %s)", (crew,))
    found = row.fetchone()
    return bool(found and found[0])


def unit_aliases(conn: psycopg.Connection, alert: AlertRow) -> set[str]:
    """The ids and names of the units an alert is routed (`unit`) or assigned (its crew's
    unit) to: a crew whose unit is one of them reads and works it (migration 022)."""
    row = conn.execute(
        "SELECT alert_unit_aliases(%s, %s)", (alert.unit, alert.assigned_crew)
    ).fetchone()
    return set(row[0]) if row and row[0] else set()


class Incident(BaseModel):
    id: int
    rule_id: str
    subject: str
    kind: str
    district: str | None
    severity: str
    status: str
    title: str
    opened_at: datetime
    resolved_at: datetime | None
    detail: dict[str, Any]
    children: int
    children_open: int


def list_incidents(
    conn: psycopg.Connection,
    status: str | None,
    limit: int,
    offset: int,
    visible_to: Scope | None = None,
) -> list[Incident]:
    """Alerts that group others (a storm, a circuit, a suspected burst), with live counts;
    with a scope, only the groups in it."""
    scope = "true" if visible_to is None else IN_SCOPE.format(unit=EFFECTIVE_UNIT)
    params: list[Any] = [] if visible_to is None else [visible_to.unit] * 2
    with conn.cursor(row_factory=class_row(Incident)) as cur:
        return cur.execute(
            f"""SELECT a.id, a.rule_id, a.subject, a.kind, a.district, a.severity, a.status,
                      a.title, a.opened_at, a.resolved_at, a.detail,
                      count(c.id) AS children,
                      count(c.id) FILTER (WHERE c.status <> 'resolved') AS children_open
               FROM alerts a LEFT JOIN alerts c ON c.parent_id = a.id
               WHERE (%s::text IS NULL OR a.status = %s) AND {scope}
               GROUP BY a.id HAVING count(c.id) > 0 OR a.rule_id = 'STORM_INCIDENT'
               ORDER BY a.opened_at DESC, a.id DESC LIMIT %s OFFSET %s""",  # type: ignore[arg-type]
            [status, status, *params, limit, offset],
        ).fetchall()
