"""The SLA state of an alert in the API (issue #10 "Lifecycle and work", migration 023): who was
on site and when, and each deadline (acknowledge, on site, resolve) with whether the notifier
escalated it, in GET /alerts/{id} and in the list's items."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.alerts_api_support import World, make_world, open_alert
from urbanwatch.queries import notify, sla


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def overdue(url: str, alert_id: int, *columns: str) -> None:
    """Move the named deadlines an hour into the past and let the notifier escalate them."""
    with psycopg.connect(url) as conn:
        for column in columns:
            conn.execute(
                f"UPDATE alerts SET {column} = now() - interval '1 hour' WHERE id = %s",
                (alert_id,),
            )
        notify.escalate_overdue(conn, "service:notify")
        sla.escalate_deadlines(conn, "service:notify")


def deadlines(url: str, alert_id: int) -> tuple[Any, ...]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT ack_due_at, site_due_at, resolve_due_at, site_escalated_at, "
            "resolve_escalated_at, on_site_at FROM alerts WHERE id = %s",
            (alert_id,),
        ).fetchone()


def test_detail_and_list_show_on_site_and_each_deadline(world: World) -> None:
    c, k = world.client, world.keys
    quiet = open_alert(world.url, subject="MH-1", severity="critical")
    late = open_alert(world.url, subject="MH-2", rule_id="MH_FLIP", severity="critical")
    overdue(world.url, late, "ack_due_at", "site_due_at")  # nobody acknowledged nor went
    assert c.post(f"/alerts/{late}/on-site", json={}, headers=k["crew"]).status_code == 200

    got = c.get(f"/alerts/{late}", headers=k["viewer"]).json()["alert"]
    ack_due, site_due, resolve_due, site_esc, _, on_site = deadlines(world.url, late)
    assert got["on_site_at"] is not None and got["on_site_by"].startswith("key:")
    s = got["sla"]
    assert s["ack"]["escalated"] and s["ack"]["escalated_at"] is not None
    assert s["on_site"]["escalated"] and s["on_site"]["escalated_at"] is not None
    assert s["resolve"] == {"due_at": s["resolve"]["due_at"], "escalated_at": None,
                            "escalated": False}  # fmt: skip
    assert [s[d]["due_at"] is not None for d in ("ack", "on_site", "resolve")] == [True] * 3
    assert all(v is not None for v in (ack_due, site_due, resolve_due, site_esc, on_site))
    assert got["site_escalated_at"] == s["on_site"]["escalated_at"]
    assert got["ack_due_at"] == s["ack"]["due_at"] and got["site_due_at"] == s["on_site"]["due_at"]

    page = c.get("/alerts", params={"limit": 10}, headers=k["viewer"]).json()["items"]
    items = {a["id"]: a for a in page}
    assert items[late]["sla"] == s and items[late]["on_site_by"] == got["on_site_by"]
    fresh = items[quiet]
    assert fresh["on_site_at"] is None and fresh["on_site_by"] is None
    assert {d: v["escalated"] for d, v in fresh["sla"].items()} == {
        "ack": False, "on_site": False, "resolve": False
    }  # fmt: skip
    assert fresh["sla"]["on_site"]["due_at"] is not None  # set when the alert was written


def test_a_reopened_alert_starts_a_new_round_of_deadlines(world: World) -> None:
    c, k = world.client, world.keys
    alert = open_alert(world.url, severity="critical")
    overdue(world.url, alert, "ack_due_at", "site_due_at", "resolve_due_at")
    before = c.get(f"/alerts/{alert}", headers=k["viewer"]).json()["alert"]["sla"]
    assert [before[d]["escalated"] for d in ("ack", "on_site", "resolve")] == [True] * 3
    ok = c.post(f"/alerts/{alert}/resolve", json={"note": "复位 reset"}, headers=k["crew"])
    assert ok.status_code == 200
    again = c.post(f"/alerts/{alert}/reopen", json={"note": "又倾斜 again"}, headers=k["crew"])
    assert again.status_code == 200, again.text
    with psycopg.connect(world.url) as conn:  # the notifier gives the new round its deadline
        notify.set_ack_due(conn, alert, None, True)
        conn.execute("UPDATE alerts SET ack_due_at = now() + interval '1 hour' WHERE id = %s",
                     (alert,))  # fmt: skip
    after = c.get(f"/alerts/{alert}", headers=k["viewer"]).json()["alert"]["sla"]
    assert [after[d]["escalated"] for d in ("ack", "on_site", "resolve")] == [False] * 3
