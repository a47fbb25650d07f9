"""SLA escalation on the on-site and resolve deadlines (migration 023, urbanwatch/queries/sla.py,
docs/notifications.md "On-site and resolve deadlines"), with real PostgreSQL and a real
loopback HTTP receiver: each deadline escalates exactly once, to the route's next level, and
is delivered once per channel, across a notifier restart too; an alert on site or resolved
before its deadline never escalates; POST /alerts/{id}/on-site records the on-site state."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alerts.notify.messages import Notice, markdown_single
from alerts.notify.notifier import Notifier
from tests import test_alerts_notify
from tests.alerts_api_support import World, make_world
from tests.alerts_api_support import open_alert as engine_open
from tests.test_alerts_notify import (
    ENV,
    Capture,
    add_event,
    install_routes,
    open_alert,
    route_text,
    run_until,
    settings_for,
)
from urbanwatch.queries import sla

capture = test_alerts_notify.capture  # the notify tests' loopback HTTP receiver, as a fixture here


NO_ACK = "{ack: null, max_level: 0}"  # the acknowledge escalation out of the way


def escalations(conn: psycopg.Connection, alert_id: int) -> list[tuple[str, str]]:
    rows = conn.execute(
        "SELECT detail->>'reason', detail->>'level' FROM alert_events "
        "WHERE alert_id = %s AND event = 'escalated' ORDER BY id",
        (alert_id,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def deadlines_passed(conn: psycopg.Connection, alert_id: int, *, site: bool, resolve: bool) -> None:
    """Move the alert's deadlines an hour into the past (as if it had been open that long)."""
    conn.execute(
        "UPDATE alerts SET site_due_at = CASE WHEN %s THEN now() - interval '1 hour' "
        "ELSE site_due_at END, resolve_due_at = CASE WHEN %s THEN now() - interval '1 hour' "
        "ELSE resolve_due_at END WHERE id = %s",
        (site, resolve, alert_id),
    )


def sent(capture: Capture, alert_id: int, event: str = "escalated") -> list[dict[str, Any]]:
    return [
        r
        for r in capture.requests
        if r["json"]["alert"]["id"] == alert_id and r["json"]["event"]["type"] == event
    ]


def two_channels(capture: Capture) -> str:
    return route_text(
        {
            "hook": {"type": "webhook", "url": capture.url("/crew")},
            "esc": {"type": "webhook", "url": capture.url("/duty")},
        },
        sla=NO_ACK,
    )


def test_each_deadline_escalates_once_to_the_next_level(conn, database_url, capture):
    install_routes(conn, two_channels(capture))
    notifier = Notifier(settings_for(database_url), env=ENV)
    late = open_alert(conn, severity="critical")
    run_until(notifier, lambda: len(capture.requests) == 1, what="the opened notice")

    # The on-site deadline passes with nobody on site: level 1, the crew reminded and the
    # duty room (the route's first escalation crew) told, once each.
    deadlines_passed(conn, late, site=True, resolve=False)
    run_until(notifier, lambda: len(sent(capture, late)) == 2, what="the on-site escalation")
    for _ in range(5):
        notifier.step()
    assert escalations(conn, late) == [("site_overdue", "1")]
    site = sent(capture, late)
    assert sorted(r["path"] for r in site) == ["/crew", "/duty"]
    assert {r["json"]["route"]["level"] for r in site} == {1}
    assert {r["json"]["event"]["detail"]["reason"] for r in site} == {"site_overdue"}
    text = markdown_single(Notice.model_validate(site[0]["json"]))[1]
    assert "升级级别 escalation level: 1(未按时到场 nobody on site)" in text

    # The resolve deadline passes too: the next level, once; nothing else is sent.
    deadlines_passed(conn, late, site=True, resolve=True)
    run_until(notifier, lambda: len(sent(capture, late)) == 4, what="the resolve escalation")
    for _ in range(5):
        notifier.step()
    assert escalations(conn, late) == [("site_overdue", "1"), ("resolve_overdue", "2")]
    text = markdown_single(Notice.model_validate(sent(capture, late)[-1]["json"]))[1]
    assert "(未按时解决 not resolved)" in text
    assert len(capture.requests) == 5  # opened + 2 escalations × 2 channels
    keys = [r["json"]["idempotency_key"] for r in capture.requests]
    assert len(set(keys)) == len(keys)
    level = conn.execute("SELECT escalation_level FROM alerts WHERE id = %s", (late,)).fetchone()
    assert level == (2,)


def test_on_site_or_resolved_before_the_deadline_never_escalates(conn, database_url, capture):
    install_routes(conn, two_channels(capture))
    notifier = Notifier(settings_for(database_url), env=ENV)
    on_site = open_alert(conn)
    resolved = open_alert(conn)
    acked = open_alert(conn)  # acknowledged, but nobody went: the on-site deadline still counts
    run_until(notifier, lambda: len(capture.requests) == 3, what="the opened notices")
    with conn.transaction():
        assert sla.mark_on_site(conn, on_site, "user:wang") is not None
        add_event(conn, on_site, "on_site")
    with conn.transaction():
        conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = now(), active = false "
            "WHERE id = %s",
            (resolved,),
        )
        add_event(conn, resolved, "resolved")
    with conn.transaction():
        conn.execute("UPDATE alerts SET status = 'acknowledged' WHERE id = %s", (acked,))
        add_event(conn, acked, "acknowledged")
    for alert in (on_site, resolved, acked):
        deadlines_passed(conn, alert, site=True, resolve=False)
    run_until(notifier, lambda: len(sent(capture, acked)) == 2, what="the acked alert's escalation")
    for _ in range(5):
        notifier.step()
    assert escalations(conn, on_site) == []
    assert escalations(conn, resolved) == []
    assert escalations(conn, acked) == [("site_overdue", "1")]
    # On site stops the on-site deadline only: unresolved past its resolve deadline, it escalates.
    deadlines_passed(conn, on_site, site=True, resolve=True)
    deadlines_passed(conn, resolved, site=True, resolve=True)
    run_until(notifier, lambda: len(sent(capture, on_site)) == 2, what="the resolve escalation")
    for _ in range(5):
        notifier.step()
    assert escalations(conn, on_site) == [("resolve_overdue", "1")]
    assert escalations(conn, resolved) == []
    assert len(sent(capture, on_site, "on_site")) == 1  # the on-site event reached the crew once


def test_escalated_once_across_a_notifier_restart(conn, database_url, capture):
    install_routes(conn, two_channels(capture))
    first = Notifier(settings_for(database_url), env=ENV)
    alert = open_alert(conn, severity="critical")
    run_until(first, lambda: len(capture.requests) == 1, what="the opened notice")
    deadlines_passed(conn, alert, site=True, resolve=False)
    # The first notifier escalates (committed) and stops before routing or delivering it.
    assert first.escalate(first.conn.get()) == 1
    first.conn.get().close()
    assert sent(capture, alert) == []

    second = Notifier(settings_for(database_url), env=ENV)
    run_until(second, lambda: len(sent(capture, alert)) == 2, what="delivery after the restart")
    third = Notifier(settings_for(database_url), env=ENV)  # and another restart
    for _ in range(5):
        third.step()
        second.step()
    assert escalations(conn, alert) == [("site_overdue", "1")]
    assert sorted(r["path"] for r in sent(capture, alert)) == ["/crew", "/duty"]
    assert len(capture.requests) == 3


def test_reopened_alert_restarts_its_deadlines(conn):
    alert = open_alert(conn, severity="critical")
    deadlines_passed(conn, alert, site=True, resolve=True)
    assert sla.escalate_deadlines(conn, "service:notify") == 2
    assert sla.mark_on_site(conn, alert, "user:wang") is not None
    assert sla.mark_on_site(conn, alert, "user:li") is None  # recorded once
    conn.execute("UPDATE alerts SET status = 'resolved' WHERE id = %s", (alert,))
    conn.execute("UPDATE alerts SET status = 'open' WHERE id = %s", (alert,))
    row = conn.execute(
        "SELECT site_due_at - now(), resolve_due_at - now(), on_site_at, site_escalated_at, "
        "resolve_escalated_at FROM alerts WHERE id = %s",
        (alert,),
    ).fetchone()
    assert row is not None
    site_left, resolve_left, *rest = row
    assert site_left.total_seconds() == pytest.approx(1800, abs=5)  # critical: 30 min
    assert resolve_left.total_seconds() == pytest.approx(7200, abs=5)  # critical: 2 h
    assert rest == [None, None, None]
    assert sla.escalate_deadlines(conn, "service:notify") == 0
    conn.commit()


# --- the escalation rule as a property, driven to the database ---------------------------

CASE = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["open", "acknowledged", "resolved"]),
        "suppressed": st.booleans(),
        "site_due_min": st.one_of(st.none(), st.integers(-300, 300)),  # from now; None: none
        "resolve_due_min": st.one_of(st.none(), st.integers(-300, 300)),
        "on_site_min": st.one_of(st.none(), st.integers(-400, 0)),
        "level": st.integers(0, 3),
    }
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(cases=st.lists(CASE, min_size=1, max_size=6))
def test_escalation_property(conn, cases):
    """Whatever the alerts' states and deadlines, two rounds escalate exactly the deadlines
    that passed on an unresolved, unsuppressed alert (on site: not the on-site one), once
    each, in deadline order, raising the level by one per escalation."""
    ids = []
    for c in cases:
        alert = open_alert(conn, suppressed=c["suppressed"])
        conn.execute(
            "UPDATE alerts SET status = %s, escalation_level = %s, "
            "site_due_at = now() + %s * interval '1 minute', "
            "resolve_due_at = now() + %s * interval '1 minute', "
            "on_site_at = now() + %s * interval '1 minute' WHERE id = %s",
            (
                c["status"],
                c["level"],
                c["site_due_min"],
                c["resolve_due_min"],
                c["on_site_min"],
                alert,
            ),
        )
        ids.append(alert)
    conn.commit()
    first = sla.escalate_deadlines(conn, "service:notify")
    conn.commit()
    assert sla.escalate_deadlines(conn, "service:notify") == 0  # nothing changed: nothing again
    conn.commit()
    total = 0
    for alert, c in zip(ids, cases, strict=True):
        live = c["status"] != "resolved" and not c["suppressed"]
        site_due, resolve_due = c["site_due_min"], c["resolve_due_min"]
        site = live and c["on_site_min"] is None and site_due is not None and site_due <= 0
        resolve = live and resolve_due is not None and resolve_due <= 0
        want = []
        level = c["level"]
        for reason, due in (("site_overdue", site), ("resolve_overdue", resolve)):
            if due:
                level += 1
                want.append((reason, str(level)))
        assert escalations(conn, alert) == want, c
        got = conn.execute("SELECT escalation_level FROM alerts WHERE id = %s", (alert,))
        assert got.fetchone() == (level,)
        total += len(want)
    assert first >= total  # earlier examples' alerts were escalated in their own example


# --- POST /alerts/{id}/on-site ---------------------------------------------------------------


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def test_on_site_endpoint(world: World):
    c, k = world.client, world.keys
    alert = engine_open(world.url, severity="critical")

    def post(who: str, body: dict[str, Any], alert_id: int = alert) -> Any:
        return c.post(f"/alerts/{alert_id}/on-site", json=body, headers=k[who])

    assert c.post(f"/alerts/{alert}/on-site", json={}).status_code == 401
    assert post("viewer", {}).status_code == 403
    assert post("water_crew", {}).status_code == 404  # another unit's alert: not told it exists
    assert post("crew", {}, alert_id=999999).status_code == 404
    bad = post("crew", {"note": ""})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "note"]
    done = post("crew", {"note": "已到场 arrived"})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["alert"]["status"] == "acknowledged"  # arriving acknowledges an open alert
    assert body["acknowledged_event_id"] is not None
    assert body["on_site_by"].startswith("key:")
    again = post("operator", {})
    assert again.status_code == 409 and "already on site" in again.json()["detail"]
    got = c.get(f"/alerts/{alert}", headers=k["viewer"]).json()
    assert [e["event"] for e in got["events"]] == ["opened", "acknowledged", "on_site"]
    assert got["events"][-1]["detail"] == {"note": "已到场 arrived"}
    with psycopg.connect(world.url) as conn:
        deadlines_passed(conn, alert, site=True, resolve=False)
        assert sla.escalate_deadlines(conn, "service:notify") == 0  # on site: no escalation
        audit = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'alert.on_site'"
        ).fetchone()
    assert audit == (1,)

    resolved = engine_open(world.url, rule_id="MH_FLIP", severity="critical")
    ok = c.post(f"/alerts/{resolved}/resolve", json={"note": "复位 reset"}, headers=k["crew"])
    assert ok.status_code == 200
    late = post("crew", {}, alert_id=resolved)
    assert late.status_code == 409 and "resolved" in late.json()["detail"]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.one_of(
        st.none(),
        st.dictionaries(
            st.sampled_from(["note", "x", ""]),
            st.one_of(st.none(), st.integers(), st.text(max_size=40), st.just("\x00")),
            max_size=2,
        ),
    )
)
def test_on_site_any_body_stored_or_refused(world: World, body: Any):
    """Any body: stored (the note reads back as sent in the event) or a 422 naming the field;
    never a 5xx."""
    alert = engine_open(world.url, subject=f"MH-{uuid.uuid4().hex[:8]}", device=False)
    got = world.client.post(f"/alerts/{alert}/on-site", json=body, headers=world.keys["crew"])
    assert got.status_code in (200, 422), got.text
    with psycopg.connect(world.url) as conn:
        row = conn.execute(
            "SELECT on_site_at IS NOT NULL, (SELECT detail FROM alert_events WHERE alert_id = %s "
            "AND event = 'on_site') FROM alerts WHERE id = %s",
            (alert, alert),
        ).fetchone()
    assert row is not None
    if got.status_code == 422:
        assert all(e["loc"][0] == "body" for e in got.json()["detail"])
        assert row == (False, None)
        return
    note = (body or {}).get("note")
    assert row == (True, {"note": note} if note else {})


# --- the deadlines of migration 027 are those of 022 and 023 ------------------------------

SQL = Path(__file__).parent.parent / "urbanwatch" / "sql"
SEVERITIES = ("info", "warning", "alarm", "critical")


def trigger_function(migration: str, name: str) -> str:
    """The CREATE OR REPLACE FUNCTION `name` statement of a migration file, as written there."""
    text = next(SQL.glob(f"{migration}_*.sql")).read_text()
    found = re.search(rf"^CREATE OR REPLACE FUNCTION {name}\(\).*?^\$\$;$", text, re.S | re.M)
    assert found, (migration, name)
    return found.group(0)


def written_and_reopened(
    conn: psycopg.Connection, tag: str, alerts: list[tuple[str, int, str]]
) -> list[tuple[Any, ...]]:
    """Each alert (severity, opened this many seconds from now, severity when reopened)
    written, then resolved and reopened: its deadlines after each."""
    out = []
    for i, (severity, opened_s, reopened_as) in enumerate(alerts):
        (alert_id,) = conn.execute(
            "INSERT INTO alerts (rule_id, subject, kind, severity, opened_at, title) "
            "VALUES ('MH_TILT', %s, 'manhole', %s, now() + %s * interval '1 second', 't') "
            "RETURNING id",
            (f"{tag}-{i}", severity, opened_s),
        ).fetchone()
        due = "SELECT site_due_at, resolve_due_at FROM alerts WHERE id = %s"
        written = conn.execute(due, (alert_id,)).fetchone()
        conn.execute("UPDATE alerts SET status = 'resolved' WHERE id = %s", (alert_id,))
        conn.execute(
            "UPDATE alerts SET status = 'open', severity = %s WHERE id = %s",
            (reopened_as, alert_id),
        )
        out.append((written, conn.execute(due, (alert_id,)).fetchone()))
    return out


DAY_S = 86_400
period = st.none() | st.integers(1, 2**31 - 1)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    sla_rows=st.fixed_dictionaries({s: st.tuples(period, period) for s in SEVERITIES}),
    missing=st.sets(st.sampled_from(SEVERITIES), max_size=1),
    alerts=st.lists(
        st.tuples(
            st.sampled_from(SEVERITIES),
            st.integers(-800 * DAY_S, 30 * DAY_S),
            st.sampled_from(SEVERITIES),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_sla_deadlines_of_027_are_those_of_022_and_023(conn, sla_rows, missing, alerts):
    """Migrations 027 and 032 compute both triggers' deadlines (alert_sla_deadlines(),
    alert_work_defaults()); for every severity, any SLA periods (none, or a severity with no
    row) and any opening time, past or future, an alert written and reopened gets the
    deadlines 022's and 023's functions gave.
    Both run in one transaction (the same now()), rolled back."""
    with conn.transaction(force_rollback=True):
        for severity, (site_s, resolve_s) in sla_rows.items():
            conn.execute(
                "UPDATE alert_sla SET site_s = %s, resolve_s = %s WHERE severity = %s",
                (site_s, resolve_s, severity),
            )
        conn.execute("DELETE FROM alert_sla WHERE severity = ANY(%s)", (list(missing),))
        now = written_and_reopened(conn, "now", alerts)
        conn.execute(trigger_function("022", "alerts_work_defaults"))
        conn.execute(trigger_function("023", "alerts_sla_restart"))
        # 032 sets an INSERT's defaults in a statement trigger: back to 018's row trigger
        conn.execute("DROP TRIGGER alerts_work_defaults_insert ON alerts")
        conn.execute(
            "CREATE OR REPLACE TRIGGER alerts_work_defaults BEFORE INSERT OR UPDATE ON alerts "
            "FOR EACH ROW EXECUTE FUNCTION alerts_work_defaults()"
        )
        before = written_and_reopened(conn, "before", alerts)
    assert now == before
