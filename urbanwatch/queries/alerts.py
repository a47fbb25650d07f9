"""What the alert engine writes and reads (migrations 008 and 011): alert transitions with
their alert_events in the caller's transaction, per-device rule state, last-seen times,
work windows and expected-value profiles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from urbanwatch.kinds import KINDS

ENGINE = "engine"
FIND_UNRESOLVED = """SELECT id, active FROM alerts
                     WHERE rule_id = %s AND subject = %s AND status <> 'resolved' FOR UPDATE"""
FIND_RECENT = """SELECT id FROM alerts
                 WHERE rule_id = %s AND subject = %s AND status = 'resolved' AND resolved_at >= %s
                 ORDER BY resolved_at DESC LIMIT 1 FOR UPDATE"""
INSERT_ALERT = """INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity,
                      opened_at, last_fired_at, title, detail, parent_id, suppressed)
                  VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id"""
REFIRE = """UPDATE alerts SET active = true, cleared_at = NULL, severity = %s, detail = %s,
                last_fired_at = %s, updated_at = now() WHERE id = %s"""
REOPEN = """UPDATE alerts SET status = 'open', active = true, cleared_at = NULL,
                resolved_at = NULL, resolved_by = NULL, severity = %s, detail = %s,
                last_fired_at = %s, flap_count = flap_count + 1, updated_at = now()
            WHERE id = %s"""
RESOLVE = """UPDATE alerts SET status = 'resolved', active = false, cleared_at = %s,
                 resolved_at = %s, resolved_by = 'engine', updated_at = now() WHERE id = %s"""
CLEAR = """UPDATE alerts SET active = false, cleared_at = %s, updated_at = now() WHERE id = %s"""
UPDATE_GROUP = """UPDATE alerts SET severity = %s, detail = %s, updated_at = now() WHERE id = %s"""
ATTACH = """UPDATE alerts SET parent_id = %s, suppressed = %s, updated_at = now()
            WHERE rule_id = %s AND subject = %s AND status <> 'resolved'
              AND (parent_id IS DISTINCT FROM %s OR suppressed <> %s)
            RETURNING id, severity"""
INSERT_EVENT = """INSERT INTO alert_events (alert_id, event, actor, severity, detail)
                  VALUES (%s, %s, %s, %s, %s)"""
CREATE_STAGE = """CREATE TEMP TABLE IF NOT EXISTS alert_state_stage
                  (device_id text, state jsonb) ON COMMIT DELETE ROWS"""
COPY_STAGE = "COPY alert_state_stage (device_id, state) FROM STDIN"
MERGE_STAGE = """INSERT INTO alert_device_state (device_id, state, updated_at)
                 SELECT device_id, state, now() FROM alert_state_stage
                 ON CONFLICT (device_id) DO UPDATE SET state = excluded.state,
                                                       updated_at = excluded.updated_at"""
SELECT_STATES = "SELECT device_id, state FROM alert_device_state"
COVERING_WINDOW = """SELECT EXISTS (SELECT FROM work_windows
                     WHERE device_id = %s AND starts_at <= %s AND ends_at > %s)"""
SELECT_DEVICES = """SELECT device_id, kind, district, attrs FROM devices
                    WHERE status NOT IN ('planned', 'retired')"""


@dataclass(frozen=True)
class Change:
    """One alert change: `open` / `clear` for a rule on a subject (a device or a group)."""

    action: str  # open | clear | update
    rule_id: str
    subject: str
    kind: str
    severity: str
    title: str
    at: datetime  # when it happened (reading time, or the deadline)
    started: datetime  # when the condition began (opened_at)
    device_id: str | None = None
    district: str | None = None
    auto_resolve: bool = True
    detail: dict[str, Any] = field(default_factory=dict)
    # Group alerts: the (rule_id, subject) of the alerts to put under this one.
    children: tuple[tuple[str, str], ...] = ()
    suppress_children: bool = False


def apply_change(conn: psycopg.Connection, change: Change, reopen_within_s: float) -> int | None:
    """Write one change and its event; returns the alert id, or None when nothing changed
    (the alert is already open, or there is nothing to clear)."""
    key = (change.rule_id, change.subject)
    row = conn.execute(FIND_UNRESOLVED, key).fetchone()
    detail = {**change.detail, "at": change.at.isoformat()}
    if change.action == "open":
        alert_id = _open(conn, change, row, detail, reopen_within_s)
    elif row is None:
        return None
    elif change.action == "update":
        alert_id = row[0]
        conn.execute(UPDATE_GROUP, (change.severity, Jsonb(detail), alert_id))
        _event(conn, alert_id, "updated", change.severity, detail)
    elif not row[1]:
        return None  # already cleared
    else:
        alert_id = row[0]
        if change.auto_resolve:
            conn.execute(RESOLVE, (change.at, change.at, alert_id))
            _event(conn, alert_id, "resolved", change.severity, detail)
        else:
            conn.execute(CLEAR, (change.at, alert_id))
            _event(conn, alert_id, "cleared", change.severity, detail)
    if alert_id is not None and change.children:
        _attach(conn, alert_id, change)
    return alert_id


# The set-based path of `apply_changes`: what a batch's keys hold now (one statement), and
# the new alerts with their events (another). The rows go as one JSON document: psycopg
# dumps a Python list into an array literal element by element in Python (~60 us an alert
# for the ten arrays, measured: docs/alerts.md), orjson writes the document in C. The new
# alerts get their deadlines and mutes here, from alert_work_defaults() (migration 032),
# so 032's statement trigger finds nothing to change and each alert is written once.
KEYS_NOW = """SELECT a.rule_id, a.subject, bool_or(a.status <> 'resolved'), max(a.resolved_at)
              FROM alerts a JOIN json_to_recordset(%s::json) AS k (rule_id text, subject text)
                   USING (rule_id, subject)
              GROUP BY a.rule_id, a.subject"""
INSERT_NEW = """WITH x AS MATERIALIZED (
                    SELECT * FROM json_to_recordset(%(rows)s::json) AS x (
                        n int, r text, s text, d text, k text, di text, sev text,
                        o timestamptz, l timestamptz, t text, j jsonb)),
                a AS (
                    INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity,
                        opened_at, last_fired_at, title, detail, parent_id, suppressed,
                        site_due_at, resolve_due_at, muted_by)
                    SELECT r, s, d, k, di, sev, o, l, t,
                           CASE WHEN w.muted_by IS NULL THEN j
                                ELSE j || jsonb_build_object('muted_by', w.muted_by) END,
                           NULL, w.muted_by IS NOT NULL, w.site_due_at, w.resolve_due_at,
                           w.muted_by
                    FROM x CROSS JOIN LATERAL alert_work_defaults(d, s, di, sev, o,
                                                                  coalesce(l, o)) w
                    ORDER BY n
                    RETURNING id, rule_id, subject)
            INSERT INTO alert_events (alert_id, event, actor, severity, detail)
            SELECT a.id, 'opened', %(actor)s, x.sev, x.j
            FROM a JOIN x ON x.r = a.rule_id AND x.s = a.subject
            ORDER BY x.n"""
BULK_MIN = 8  # fewer new alerts than this: the per-change statements are as quick


def apply_changes(
    conn: psycopg.Connection,
    changes: Sequence[Change],
    reopen_within_s: float,
    bulk_min: int = BULK_MIN,
) -> None:
    """Write a batch of changes in order, as `apply_change` one by one would, but with the
    plain case set-based: an `open` of a key (rule, subject) that the batch touches only
    once, with no unresolved alert and none resolved within `reopen_within_s`, and no
    children. Runs of such opens are inserted with their events in two statements; any
    other change goes through `apply_change` at its place in the order."""
    counts: dict[tuple[str, str], int] = {}
    for c in changes:
        counts[(c.rule_id, c.subject)] = counts.get((c.rule_id, c.subject), 0) + 1
    candidates = [
        c
        for c in changes
        if c.action == "open" and not c.children and counts[(c.rule_id, c.subject)] == 1
    ]
    if len(candidates) < bulk_min:
        for c in changes:
            apply_change(conn, c, reopen_within_s)
        return
    keys = orjson.dumps([{"rule_id": c.rule_id, "subject": c.subject} for c in candidates])
    now: dict[tuple[str, str], tuple[bool, datetime | None]] = {
        (r, s): (unresolved, resolved)
        for r, s, unresolved, resolved in conn.execute(KEYS_NOW, (keys.decode(),))
    }
    plain = {
        id(c) for c in candidates if _is_new(now.get((c.rule_id, c.subject)), c, reopen_within_s)
    }
    run: list[Change] = []
    for c in changes:
        if id(c) in plain:
            run.append(c)
            continue
        _insert_new(conn, run)
        run = []
        apply_change(conn, c, reopen_within_s)
    _insert_new(conn, run)


def _is_new(now: tuple[bool, datetime | None] | None, change: Change, reopen_s: float) -> bool:
    if now is None:
        return True
    unresolved, resolved = now
    since = change.at - timedelta(seconds=reopen_s)
    return not unresolved and (resolved is None or resolved < since)


def _insert_new(conn: psycopg.Connection, run: Sequence[Change]) -> None:
    """New alerts (opened) and their events, one statement for the whole run."""
    if not run:
        return
    rows = [
        {
            "n": n,
            "r": c.rule_id,
            "s": c.subject,
            "d": c.device_id,
            "k": c.kind,
            "di": c.district,
            "sev": c.severity,
            "o": c.started,
            "l": c.at,
            "t": c.title,
            "j": {**c.detail, "at": c.at.isoformat()},
        }
        for n, c in enumerate(run)
    ]
    document = orjson.dumps(rows, option=orjson.OPT_NON_STR_KEYS).decode()
    conn.execute(INSERT_NEW, {"rows": document, "actor": ENGINE})


def _open(
    conn: psycopg.Connection, change: Change, row: Any, detail: dict[str, Any], reopen_s: float
) -> int | None:
    if row is not None:
        if row[1]:
            return None  # one open alert per (rule, subject): nothing new
        conn.execute(REFIRE, (change.severity, Jsonb(detail), change.at, row[0]))
        _event(conn, row[0], "refired", change.severity, detail)
        return int(row[0])
    since = change.at - timedelta(seconds=reopen_s)
    recent = conn.execute(FIND_RECENT, (change.rule_id, change.subject, since)).fetchone()
    if recent is not None:
        conn.execute(REOPEN, (change.severity, Jsonb(detail), change.at, recent[0]))
        _event(conn, recent[0], "reopened", change.severity, detail)
        return int(recent[0])
    new = conn.execute(
        INSERT_ALERT,
        (
            change.rule_id,
            change.subject,
            change.device_id,
            change.kind,
            change.district,
            change.severity,
            change.started,
            change.at,
            change.title,
            Jsonb(detail),
            None,
            False,
        ),
    ).fetchone()
    assert new is not None
    _event(conn, new[0], "opened", change.severity, detail)
    return int(new[0])


def _attach(conn: psycopg.Connection, parent: int, change: Change) -> None:
    """Put the children under the group alert; suppressed ones are not notified."""
    flag = change.suppress_children
    for rule_id, subject in change.children:
        for child_id, severity in conn.execute(
            ATTACH, (parent, flag, rule_id, subject, parent, flag)
        ).fetchall():
            event = "suppressed" if flag else "updated"
            _event(conn, child_id, event, severity, {"parent_id": parent})


def _event(
    conn: psycopg.Connection, alert_id: int, event: str, severity: str, detail: dict[str, Any]
) -> None:
    conn.execute(INSERT_EVENT, (alert_id, event, ENGINE, severity, Jsonb(detail)))


def save_states(conn: psycopg.Connection, states: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """Upsert the states (inside the caller's transaction): COPY into a temporary table,
    then one INSERT … ON CONFLICT (a fifth of executemany's client CPU)."""
    if not states:
        return
    conn.execute(CREATE_STAGE)
    with conn.cursor() as cur, cur.copy(COPY_STAGE) as copy:
        for device_id, state in states:
            copy.write_row((device_id, orjson.dumps(state).decode()))
    conn.execute(MERGE_STAGE)


def load_states(conn: psycopg.Connection) -> dict[str, dict[str, Any]]:
    return {d: s for d, s in conn.execute(SELECT_STATES)}


def load_devices(
    conn: psycopg.Connection, ids: Sequence[str] | None = None
) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """(device_id, kind, district, attrs) of the registry's live devices (or of `ids`)."""
    if ids is None:
        return [tuple(r) for r in conn.execute(SELECT_DEVICES)]  # type: ignore[misc]
    query = SELECT_DEVICES + " AND device_id = ANY(%s)"
    return [tuple(r) for r in conn.execute(query, (list(ids),))]  # type: ignore[misc]


def last_seen(conn: psycopg.Connection, within: timedelta) -> dict[str, datetime]:
    """Each device's newest message (reading or status) received within `within`."""
    since = datetime.now(UTC) - within
    parts = [
        f"SELECT device_id, max(received_at) FROM {k}_readings WHERE received_at >= %s "
        "GROUP BY device_id"
        for k in KINDS
    ]
    parts.append(
        "SELECT device_id, max(received_at) FROM device_status WHERE received_at >= %s "
        "AND status <> 'offline' GROUP BY device_id"
    )
    seen: dict[str, datetime] = {}
    for device_id, at in conn.execute(" UNION ALL ".join(parts), [since] * len(parts)):
        if device_id not in seen or at > seen[device_id]:
            seen[device_id] = at
    return seen


def work_window_covers(conn: psycopg.Connection, device_id: str, at: datetime) -> bool:
    row = conn.execute(COVERING_WINDOW, (device_id, at, at)).fetchone()
    return bool(row and row[0])


# The slot's spread as a robust σ: 1.4826 × the median absolute deviation of its hourly means
# (= σ for normal data). A past burst in one day of the slot leaves it, as it leaves the
# median, unchanged; a standard deviation would grow past any burst and hide the next one.
MAD_TO_SIGMA = 1.4826
PROFILES = """WITH slots AS (
        SELECT device_id, extract(hour FROM bucket)::int AS h, avg_flow_m3_h AS f,
               avg_pressure_mpa AS p
        FROM watermeter_hourly WHERE bucket >= %(start)s AND bucket < %(end)s),
    medians AS (
        SELECT device_id, h, percentile_cont(0.5) WITHIN GROUP (ORDER BY f) AS mf,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY p) AS mp,
               count(f) AS nf, count(p) AS np
        FROM slots GROUP BY device_id, h)
    SELECT m.device_id, m.h, m.mf, m.mp,
           CASE WHEN m.nf >= 2 THEN %(k)s * percentile_cont(0.5)
                WITHIN GROUP (ORDER BY abs(s.f - m.mf)) END,
           CASE WHEN m.np >= 2 THEN %(k)s * percentile_cont(0.5)
                WITHIN GROUP (ORDER BY abs(s.p - m.mp)) END
    FROM medians m JOIN slots s USING (device_id, h)
    GROUP BY m.device_id, m.h, m.mf, m.mp, m.nf, m.np"""


def hourly_profiles(
    conn: psycopg.Connection, now: datetime, days: int = 7
) -> dict[tuple[str, int], dict[str, float]]:
    """(device, hour of day UTC) -> median of that hour's average flow and pressure over
    the last `days` days, from the watermeter rollups: the last fallback of WS_FLOW_ANOMALY's
    and WS_PRESSURE_DROP's expected values (queries/profiles.py); and the slot's spread
    (`flow_m3_h_sd`, `pressure_mpa_sd`: σ estimated robustly from those hourly means,
    MAD_TO_SIGMA; absent with fewer than 2 days of that hour), for the 3σ term."""
    rows = conn.execute(
        PROFILES,
        {"start": now - timedelta(days=days), "end": now - timedelta(hours=1), "k": MAD_TO_SIGMA},
    )
    out: dict[tuple[str, int], dict[str, float]] = {}
    names = ("flow_m3_h", "pressure_mpa", "flow_m3_h_sd", "pressure_mpa_sd")
    for device_id, hour, *figures in rows:
        values = {k: float(v) for k, v in zip(names, figures, strict=True) if v is not None}
        out[(device_id, hour)] = values
    return out


def unresolved(conn: psycopg.Connection, rule_ids: Iterable[str] | None = None) -> list[Any]:
    """(rule_id, subject, status, active, severity) of every unresolved alert."""
    query = (
        "SELECT rule_id, subject, status, active, severity FROM alerts WHERE status <> 'resolved'"
    )
    if rule_ids is None:
        return conn.execute(query + " ORDER BY id").fetchall()
    return conn.execute(query + " AND rule_id = ANY(%s) ORDER BY id", (list(rule_ids),)).fetchall()
