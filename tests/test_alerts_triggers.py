"""Migration 032's set-based triggers on alerts and alert_events write what the per-row
triggers of 012, 018/022/023/027 wrote: the same sequence of alert writes (the engine's bulk
and one-by-one paths, people resolving, acknowledging and reopening, a ledger-style INSERT)
is run with 032's triggers and then, in the same transaction (the same now()), with the old
ones put back from their migration files, and every column of alerts, alert_events and
notify_inbox is compared."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from urbanwatch.queries import alerts as q

SQL = Path(__file__).parent.parent / "urbanwatch" / "sql"
# The engine's bulk write before 032 (urbanwatch/queries/alerts.py at branch int): arrays,
# two statements, the defaults left to the row trigger.
OLD_INSERT_ALERTS = """INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity,
                       opened_at, last_fired_at, title, detail, parent_id, suppressed)
                   SELECT r, s, d, k, di, sev, o, l, t, j::jsonb, NULL, false
                   FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                               %s::text[], %s::timestamptz[], %s::timestamptz[], %s::text[],
                               %s::text[]) WITH ORDINALITY
                        AS x (r, s, d, k, di, sev, o, l, t, j, n)
                   ORDER BY n
                   RETURNING id, rule_id, subject"""
OLD_INSERT_EVENTS = """INSERT INTO alert_events (alert_id, event, actor, severity, detail)
                   SELECT a, 'opened', %s, sev, j::jsonb
                   FROM unnest(%s::bigint[], %s::text[], %s::text[]) WITH ORDINALITY
                        AS x (a, sev, j, n)
                   ORDER BY n"""
SEVERITIES = ("info", "warning", "alarm", "critical")
DEVICES = tuple(f"perf2-dev-{i}" for i in range(6))
GROUPS = ("perf2-c0", "perf2-dma1")  # group subjects (a circuit, a DMA)
DISTRICTS = ("wenfeng", "beiguan")
RULES = ("PERF2_A", "PERF2_B")
# Half the steps' times are before now, half after: both branches of GREATEST(opened_at, now())
T0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=90)


def old_insert_new(conn: psycopg.Connection, run: Sequence[q.Change]) -> None:
    """`_insert_new` as it was before 032."""
    if not run:
        return
    details = [json.dumps({**c.detail, "at": c.at.isoformat()}) for c in run]
    columns = [
        [c.rule_id for c in run], [c.subject for c in run], [c.device_id for c in run],
        [c.kind for c in run], [c.district for c in run], [c.severity for c in run],
        [c.started for c in run], [c.at for c in run], [c.title for c in run], details,
    ]  # fmt: skip
    ids = {(r, s): i for i, r, s in conn.execute(OLD_INSERT_ALERTS, columns).fetchall()}
    events = [ids[(c.rule_id, c.subject)] for c in run]
    conn.execute(OLD_INSERT_EVENTS, (q.ENGINE, events, [c.severity for c in run], details))


def statement(migration: str, pattern: str) -> str:
    """One statement of a migration file, as written there (up to its closing `;`)."""
    text = next(SQL.glob(f"{migration}_*.sql")).read_text()
    found = re.search(pattern + r".*?;$", text, re.S | re.M)
    assert found, (migration, pattern)
    return found.group(0)


def use_old_triggers(conn: psycopg.Connection) -> None:
    """The triggers as 012, 018 and 023 bound them (018's alerts_work_defaults runs 027's
    function, which 032 leaves as it is), without 032's."""
    conn.execute("DROP TRIGGER alerts_work_defaults_insert ON alerts")
    conn.execute("DROP TRIGGER alerts_work_defaults ON alerts")
    conn.execute(statement("018", r"^CREATE TRIGGER alerts_work_defaults"))
    conn.execute("DROP TRIGGER alerts_sla_restart ON alerts")
    conn.execute(statement("023", r"^CREATE TRIGGER alerts_sla_restart"))
    conn.execute("DROP TRIGGER alert_events_notify ON alert_events")
    conn.execute(statement("012", r"^CREATE OR REPLACE TRIGGER alert_events_notify"))


def triggers(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal "
        "AND tgrelid IN ('alerts'::regclass, 'alert_events'::regclass) ORDER BY 1"
    ).fetchall()


def add_devices(conn: psycopg.Connection) -> None:
    for i, device in enumerate(DEVICES):
        conn.execute(
            "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) "
            "VALUES (%s, 'streetlight', %s, 37.39, 126.95, %s)",
            (
                device,
                DISTRICTS[i % 2],
                Jsonb(
                    {"segment": f"seg{i % 2}", "circuit_id": f"perf2-c{i % 3}",
                     "dma_id": f"perf2-dma{i % 2}"}
                ),
            ),
        )  # fmt: skip


def add_mute(conn: psycopg.Connection, mute: tuple[str, str, int, int]) -> None:
    scope, target, start, minutes = mute
    conn.execute(
        "INSERT INTO alert_mutes (scope, target, starts_at, ends_at, reason, created_by) "
        "VALUES (%s, %s, %s, %s, '检修 maintenance', 'user:perf2')",
        (scope, target, T0 + timedelta(minutes=start), T0 + timedelta(minutes=start + minutes)),
    )


def make_change(
    rule: str, subject: str, action: str, minute: int, auto: bool, severity: str
) -> q.Change:
    at = T0 + timedelta(minutes=minute)
    device = subject if subject in DEVICES else None
    return q.Change(
        action=action,
        rule_id=rule,
        subject=subject,
        kind="streetlight",
        severity=severity,
        title="测试 perf2 test",
        at=at,
        started=at - timedelta(seconds=45),
        device_id=device,
        district=DISTRICTS[len(subject) % 2],
        auto_resolve=auto,
        detail={"minute": minute},
    )


def by_person(conn: psycopg.Connection, op: str, rule: str, subject: str) -> None:
    """What people do through the API: resolve, acknowledge, reopen (the newest resolved)."""
    key = (rule, subject)
    if op == "resolve":
        conn.execute(
            "UPDATE alerts SET status = 'resolved', active = false, resolved_at = now(), "
            "resolved_by = 'user:perf2', updated_at = now() "
            "WHERE rule_id = %s AND subject = %s AND status <> 'resolved'",
            key,
        )
    elif op == "acknowledge":
        conn.execute(
            "UPDATE alerts SET status = 'acknowledged', acknowledged_at = now(), "
            "acknowledged_by = 'user:perf2' WHERE rule_id = %s AND subject = %s "
            "AND status = 'open'",
            key,
        )
    elif op == "reopen":
        conn.execute(
            "UPDATE alerts SET status = 'open', resolved_at = NULL, resolved_by = NULL, "
            "updated_at = now() WHERE id = (SELECT max(id) FROM alerts WHERE rule_id = %s "
            "AND subject = %s AND status = 'resolved') AND NOT EXISTS (SELECT FROM alerts "
            "WHERE rule_id = %s AND subject = %s AND status <> 'resolved')",
            (*key, *key),
        )
    else:  # a ledger-style INSERT with its own deadlines and flags (the trigger replaces them)
        conn.execute(
            "INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity, "
            "opened_at, title, suppressed, site_due_at, muted_by) VALUES (%s, %s, %s, "
            "'streetlight', 'wenfeng', 'alarm', %s, 't', %s, %s, 42) "
            "ON CONFLICT (rule_id, subject) WHERE status <> 'resolved' DO NOTHING",
            (rule, subject, subject, T0, op == "insert_suppressed", T0),
        )


Step = tuple[str, Any]


def run(conn: psycopg.Connection, steps: list[Step], old: bool) -> tuple[list[Any], ...]:
    conn.execute(
        "SELECT setval('alerts_id_seq', 1, false), setval('alert_events_id_seq', 1, false)"
    )
    saved = q._insert_new
    if old:
        q._insert_new = old_insert_new  # type: ignore[assignment]
    try:
        for kind, arg in steps:
            if kind == "batch":
                q.apply_changes(conn, arg, 3600, bulk_min=1)
            elif kind == "single":
                q.apply_change(conn, arg, 3600)
            else:
                by_person(conn, kind, *arg)
    finally:
        q._insert_new = saved  # type: ignore[assignment]
    with conn.cursor(row_factory=dict_row) as cur:
        out = tuple(
            cur.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("alerts", "alert_events", "notify_inbox")
        )
    conn.execute("DELETE FROM notify_inbox")
    conn.execute("DELETE FROM alert_events")
    conn.execute("UPDATE alerts SET parent_id = NULL")
    conn.execute("DELETE FROM alerts")
    return out


def both(conn: psycopg.Connection, mutes: list[Any], steps: list[Step]) -> tuple[Any, Any]:
    """(with 032's triggers, with the old ones), in one rolled-back transaction."""
    with conn.transaction(force_rollback=True):
        add_devices(conn)
        for mute in mutes:
            add_mute(conn, mute)
        new_triggers = triggers(conn)
        new = run(conn, steps, old=False)
        use_old_triggers(conn)
        assert triggers(conn) != new_triggers
        old = run(conn, steps, old=True)
    return new, old


# Few keys, so that one key is opened, cleared, refired, resolved and reopened in a sequence.
SUBJECTS = (DEVICES[0], DEVICES[1], DEVICES[4], GROUPS[0])
changes = st.builds(
    make_change,
    st.sampled_from(RULES),
    st.sampled_from(SUBJECTS),
    st.sampled_from(("open", "open", "open", "clear", "update")),
    st.integers(0, 180),
    st.booleans(),
    st.sampled_from(SEVERITIES),
)
keys = st.tuples(st.sampled_from(RULES), st.sampled_from(SUBJECTS))
steps = st.one_of(
    st.tuples(st.just("batch"), st.lists(changes, max_size=12)),
    st.tuples(st.just("single"), changes),
    st.tuples(
        st.sampled_from(("resolve", "acknowledge", "reopen", "insert", "insert_suppressed")), keys
    ),
)
targets = {
    "device": DEVICES + GROUPS,
    "segment": ("seg0", "seg1"),
    "circuit": ("perf2-c0", "perf2-c1", "perf2-c2"),
    "dma": ("perf2-dma0", "perf2-dma1"),
    "district": DISTRICTS,
}
mutes = st.sampled_from(sorted(targets)).flatmap(
    lambda scope: st.tuples(
        st.just(scope), st.sampled_from(targets[scope]), st.integers(-30, 180),
        st.integers(1, 240),
    )
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mutes=st.lists(mutes, min_size=1, max_size=4), steps=st.lists(steps, min_size=1, max_size=10)
)
def test_set_based_triggers_write_what_the_row_triggers_wrote(
    conn: psycopg.Connection, mutes: list[Any], steps: list[Step]
) -> None:
    new, old = both(conn, mutes, steps)
    assert new == old


def test_defaults_of_a_bulk_write_with_mutes(conn: psycopg.Connection) -> None:
    """A burst of opens over every severity, some devices muted by circuit and by segment:
    deadlines per alert_sla, suppressed and muted_by by the first mute (lowest id), both
    paths alike."""
    burst = [
        make_change("PERF2_A", d, "open", 100 + i, True, SEVERITIES[i % 4])
        for i, d in enumerate(DEVICES)
    ]
    mute_list = [("circuit", "perf2-c1", 0, 240), ("segment", "seg0", 0, 240)]
    new, old = both(conn, mute_list, [("batch", burst)])
    assert new == old
    with conn.transaction(force_rollback=True):
        add_devices(conn)
        for mute in mute_list:
            add_mute(conn, mute)
        (circuit, segment) = [r[0] for r in conn.execute("SELECT id FROM alert_mutes ORDER BY id")]
        updated = "SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'alerts'"
        before = conn.execute(updated).fetchone()
        q.apply_changes(conn, burst, 3600, bulk_min=1)
        # the bulk INSERT wrote the defaults itself: the statement trigger updated no row
        assert conn.execute(updated).fetchone() == before
        rows = conn.execute(
            "SELECT a.subject, a.suppressed, a.muted_by, (a.detail->>'muted_by')::bigint, "
            "a.site_due_at - GREATEST(a.opened_at, now()), "
            "a.resolve_due_at - GREATEST(a.opened_at, now()), s.site_s, s.resolve_s "
            "FROM alerts a JOIN alert_sla s USING (severity) ORDER BY a.id"
        ).fetchall()
    # devices 0, 2, 4 are on seg0; 1 and 4 on circuit perf2-c1 (4 takes the lower id)
    expected_mute = {0: segment, 1: circuit, 2: segment, 3: None, 4: circuit, 5: None}
    for i, row in enumerate(rows):
        subject, suppressed, muted_by, detail_mute, site, resolve, site_s, resolve_s = row
        assert subject == DEVICES[i]
        assert (suppressed, muted_by, detail_mute) == (
            expected_mute[i] is not None, expected_mute[i], expected_mute[i]
        )  # fmt: skip
        assert site == (None if site_s is None else timedelta(seconds=site_s))
        assert resolve == (None if resolve_s is None else timedelta(seconds=resolve_s))


def test_a_refire_and_a_reopen_under_a_mute(conn: psycopg.Connection) -> None:
    """An alert opened unmuted, cleared, then refired inside a mute of its device, and one
    resolved and reopened by the engine inside a mute of its district: both suppressed by
    the mute from then on, both paths alike."""
    dev, other = DEVICES[0], DEVICES[1]
    sequence: list[Step] = [
        ("single", make_change("PERF2_A", dev, "open", 10, False, "alarm")),
        ("single", make_change("PERF2_A", other, "open", 10, True, "critical")),
        ("batch", [make_change("PERF2_A", dev, "clear", 20, False, "alarm"),
                   make_change("PERF2_A", other, "clear", 20, True, "critical")]),
        ("batch", [make_change("PERF2_A", dev, "open", 40, False, "warning"),
                   make_change("PERF2_A", other, "open", 40, True, "critical")]),
    ]  # fmt: skip
    mute_list = [("device", dev, 30, 60), ("district", DISTRICTS[len(other) % 2], 30, 60)]
    new, old = both(conn, mute_list, sequence)
    assert new == old
    alerts = {row["subject"]: row for row in new[0]}
    assert [alerts[s]["suppressed"] for s in (dev, other)] == [True, True]
    assert [alerts[s]["muted_by"] is not None for s in (dev, other)] == [True, True]
    events = [(e["alert_id"], e["event"]) for e in new[1]]
    assert (alerts[dev]["id"], "refired") in events
    assert (alerts[other]["id"], "reopened") in events
