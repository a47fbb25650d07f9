"""`apply_changes` (a batch's alert changes, the plain opens set-based) against the real
database: for any batch, the alerts and events it leaves are those of `apply_change` called
change by change (urbanwatch/queries/alerts.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from urbanwatch.queries.alerts import Change, apply_change, apply_changes

T0 = datetime(2026, 12, 1, 8, tzinfo=UTC)
RULES = ("PERF_A", "PERF_B")
SUBJECTS = tuple(f"perf-dev-{i}" for i in range(6))

ALERTS = """SELECT id, rule_id, subject, device_id, kind, district, severity, status, active,
                   opened_at, last_fired_at, cleared_at, resolved_at, resolved_by, flap_count,
                   suppressed, title, detail
            FROM alerts ORDER BY id"""
EVENTS = "SELECT alert_id, event, actor, severity, detail FROM alert_events ORDER BY id"


def change(rule: str, subject: str, action: str, minute: int, auto: bool, sev: str) -> Change:
    at = T0 + timedelta(minutes=minute)
    return Change(
        action=action,
        rule_id=rule,
        subject=subject,
        kind="manhole",
        severity=sev,
        title="测试 perf test",
        at=at,
        started=at - timedelta(seconds=30),
        device_id=subject,
        district="wenfeng",
        auto_resolve=auto,
        detail={"value": minute, "note": "perf"},
    )


changes = st.builds(
    change,
    st.sampled_from(RULES),
    st.sampled_from(SUBJECTS),
    st.sampled_from(("open", "open", "clear")),
    st.integers(0, 180),
    st.booleans(),
    st.sampled_from(("warning", "alarm")),
)


def snapshot(conn: psycopg.Connection) -> tuple[list[Any], list[Any]]:
    """Alerts and events by content: ids (sequence values) replaced by the alert's rank."""
    rows = conn.execute(ALERTS).fetchall()
    rank = {r[0]: i for i, r in enumerate(rows)}
    events = [(rank[e[0]], *e[1:]) for e in conn.execute(EVENTS).fetchall()]
    return [r[1:] for r in rows], events


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(before=st.lists(changes, max_size=8), batch=st.lists(changes, max_size=30))
def test_a_batch_writes_what_change_by_change_writes(
    database_url: str, before: list[Change], batch: list[Change]
) -> None:
    batch.sort(key=lambda c: c.at)
    results = []
    for bulk in (False, True):
        with psycopg.connect(database_url) as conn:
            for c in before:
                apply_change(conn, c, 3600)
            if bulk:
                apply_changes(conn, batch, 3600, bulk_min=1)
            else:
                for c in batch:
                    apply_change(conn, c, 3600)
            results.append(snapshot(conn))
            conn.rollback()
    assert results[0] == results[1]


def test_a_burst_of_new_alerts_is_written_set_based(conn: psycopg.Connection) -> None:
    burst = [change("PERF_A", f"perf-mh-{i:04d}", "open", 1, True, "warning") for i in range(500)]
    with conn.transaction():
        apply_changes(conn, burst, 3600)
    rows = conn.execute(
        "SELECT a.subject, e.event, e.detail->>'at' FROM alerts a "
        "JOIN alert_events e ON e.alert_id = a.id ORDER BY a.id"
    ).fetchall()
    assert rows == [(c.subject, "opened", c.at.isoformat()) for c in burst]
    # the same keys again: one open alert each already, nothing new (as change by change)
    with conn.transaction():
        apply_changes(conn, burst, 3600)
    assert conn.execute("SELECT count(*) FROM alert_events").fetchone() == (500,)
