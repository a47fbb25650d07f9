"""The alert API end to end through the real app and database (docs/api-alerts.md): list and
filter, one alert with its history and readings, the lifecycle with the crew's unit rule,
SLA deadlines, incidents, mutes honoured when the engine writes, and work windows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.alerts_api_support import World, make_world, open_alert, row
from urbanwatch.queries.alerts import Change, apply_change, work_window_covers


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def test_list_filters_and_pages(world: World):
    c, k = world.client, world.keys
    t0 = datetime(2026, 11, 30, 8, tzinfo=UTC)
    tilt = open_alert(world.url, at=t0)
    flip = open_alert(world.url, "MH_FLIP", "MH-2", district="linzhou", severity="critical",
                      at=t0 + timedelta(minutes=1))  # fmt: skip
    water = open_alert(world.url, "WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan",
                       at=t0 + timedelta(minutes=2))  # fmt: skip

    page = c.get("/alerts", headers=k["viewer"]).json()
    assert page["total"] == 3
    assert [a["id"] for a in page["items"]] == [water, flip, tilt]  # newest first
    assert {a["unit"] for a in page["items"]} == {"cgj", "shuiwu"}  # routed by notify's tables

    def ids(**params):
        got = c.get("/alerts", params=params, headers=k["viewer"])
        assert got.status_code == 200, got.text
        return [a["id"] for a in got.json()["items"]]

    assert ids(kind="manhole") == [flip, tilt]
    assert ids(severity="critical") == [flip]
    assert ids(district="beiguan") == [water]
    assert ids(unit="shuiwu") == [water]
    assert ids(rule_id="MH_TILT") == [tilt]
    assert ids(status="open", active=True) == [water, flip, tilt]
    assert ids(since=(t0 + timedelta(seconds=30)).isoformat()) == [water, flip]
    assert ids(until=(t0 + timedelta(seconds=30)).isoformat()) == [tilt]
    assert ids(limit=1, offset=1) == [flip]
    bad = c.get("/alerts", params={"severity": "huge"}, headers=k["viewer"])
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "severity"]
    assert c.get("/alerts").status_code == 401


def test_one_alert_with_history_and_readings(world: World):
    c, k = world.client, world.keys
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    with psycopg.connect(world.url) as conn:
        for minutes in (-120, -50, -5, 10):  # -120 is outside the hour before
            at = t0 + timedelta(minutes=minutes)
            conn.execute(
                "INSERT INTO manhole_readings (ts, device_id, received_at, tilt_deg) "
                "VALUES (%s, 'MH-1', %s, %s)",
                (at, at, float(minutes)),
            )
    alert_id = open_alert(world.url, at=t0)
    got = c.get(f"/alerts/{alert_id}", headers=k["viewer"])
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["alert"]["rule_id"] == "MH_TILT"
    assert [e["event"] for e in body["events"]] == ["opened"]
    assert body["events"][0]["actor"] == "engine"
    assert [r["tilt_deg"] for r in body["readings"]] == [-50.0, -5.0, 10.0]
    assert c.get("/alerts/999999", headers=k["viewer"]).status_code == 404
    assert c.get("/alerts/abc", headers=k["viewer"]).json()["detail"][0]["loc"] == [
        "path",
        "alert_id",
    ]


def test_lifecycle_with_the_crew_rule_events_and_audit(world: World):
    c, k = world.client, world.keys
    alert_id = open_alert(world.url)  # a manhole: routed to 市城市管理局 (cgj)

    def post(who, action, body):
        return c.post(f"/alerts/{alert_id}/{action}", json=body, headers=k[who])

    assert post("viewer", "acknowledge", {}).status_code == 403
    other = post("water_crew", "acknowledge", {})  # another unit's: as if it did not exist
    assert other.status_code == 404 and other.json()["detail"] == f"alert_id: no alert {alert_id}"
    ack = post("crew", "acknowledge", {"note": "收到 on it"})
    assert ack.status_code == 200, ack.text
    assert ack.json()["alert"]["status"] == "acknowledged"
    assert ack.json()["alert"]["acknowledged_by"].startswith("key:")
    assert post("crew", "acknowledge", {}).status_code == 409

    unknown = post("crew", "assign", {"crew": "nobody"})
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "crew"]
    empty = post("crew", "assign", {})
    assert empty.status_code == 422
    assigned = post("crew", "assign", {"crew": "cgj-manhole", "person": "wang"})
    assert assigned.status_code == 200, assigned.text
    listed = c.get("/alerts", params={"crew": "cgj-manhole"}, headers=k["viewer"]).json()
    assert [a["id"] for a in listed["items"]] == [alert_id]
    assert c.get("/alerts", params={"assignee": "wang"}, headers=k["viewer"]).json()["total"] == 1

    assert post("crew", "note", {"note": "到场 on site"}).status_code == 200
    no_note = post("crew", "resolve", {})
    assert no_note.status_code == 422 and no_note.json()["detail"][0]["loc"] == ["body", "note"]
    resolved = post("crew", "resolve", {"note": "已复位 cover reset"})
    assert resolved.status_code == 200
    assert resolved.json()["alert"]["status"] == "resolved"
    assert resolved.json()["alert"]["active"] is False
    assert post("crew", "resolve", {"note": "again"}).status_code == 409

    reopened = post("operator", "reopen", {"note": "又倾斜 tilted again"})
    assert reopened.status_code == 200
    assert reopened.json()["alert"]["status"] == "open"
    assert reopened.json()["alert"]["flap_count"] == 1

    history = c.get(f"/alerts/{alert_id}", headers=k["viewer"]).json()["events"]
    assert [e["event"] for e in history] == [
        "opened", "acknowledged", "assigned", "commented", "resolved", "reopened",
    ]  # fmt: skip
    assert history[4]["detail"] == {"note": "已复位 cover reset"}
    assert all(e["actor"].startswith("key:") for e in history[1:])
    audited = row(
        world.url,
        "SELECT count(*) FROM audit_log WHERE resource = 'alert' AND resource_id = %s",
        str(alert_id),
    )
    assert audited[0] == 5


def test_reopen_refused_while_the_fault_has_a_newer_alert(world: World):
    c, k = world.client, world.keys
    first = open_alert(world.url)
    c.post(f"/alerts/{first}/resolve", json={"note": "fixed"}, headers=k["operator"])
    with psycopg.connect(world.url) as conn:  # beyond the engine's reopen window
        conn.execute("UPDATE alerts SET resolved_at = now() - interval '1 day' WHERE id = %s",
                     (first,))  # fmt: skip
    second = open_alert(world.url)
    assert second != first
    got = c.post(f"/alerts/{first}/reopen", json={"note": "x"}, headers=k["operator"])
    assert got.status_code == 409 and str(second) in got.json()["detail"]


def test_sla_deadlines_on_the_alert(world: World):
    soon = datetime.now(UTC) + timedelta(hours=1)  # opened_at ahead of the clock: counted from it
    critical = open_alert(world.url, "MH_FLIP", at=soon, severity="critical")
    info = open_alert(world.url, "MH_WEAK_SIGNAL", at=soon, severity="info")
    got = world.client.get(f"/alerts/{critical}", headers=world.keys["viewer"]).json()["alert"]
    assert datetime.fromisoformat(got["site_due_at"]) == soon + timedelta(minutes=30)
    assert datetime.fromisoformat(got["resolve_due_at"]) == soon + timedelta(hours=2)
    # written a day after it opened (late data, a replay): counted from when it was written
    before = datetime.now(UTC)
    late = open_alert(world.url, "MH_TILT", at=before - timedelta(days=1), severity="critical")
    after = datetime.now(UTC)
    got = world.client.get(f"/alerts/{late}", headers=world.keys["viewer"]).json()["alert"]
    assert before + timedelta(minutes=30) <= datetime.fromisoformat(got["site_due_at"])
    assert datetime.fromisoformat(got["site_due_at"]) <= after + timedelta(minutes=30)
    assert "ack_due_at" in got  # set by the notifier when it routes the alert
    quiet = world.client.get(f"/alerts/{info}", headers=world.keys["viewer"]).json()["alert"]
    assert quiet["site_due_at"] is None and quiet["resolve_due_at"] is None


def test_incidents_list_groups_with_children(world: World):
    one = open_alert(world.url, "SL_SUPPLY_LOSS", "SL-1", "streetlight")
    open_alert(world.url, "SL_SUPPLY_LOSS", "SL-2", "streetlight")
    group = open_alert(world.url, "SL_CIRCUIT_SUPPLY_LOSS", "C-1", "streetlight",
                       device=False, children=(("SL_SUPPLY_LOSS", "SL-1"),
                                               ("SL_SUPPLY_LOSS", "SL-2")))  # fmt: skip
    world.client.post(f"/alerts/{one}/resolve", json={"note": "ok"}, headers=world.keys["admin"])
    got = world.client.get("/incidents", headers=world.keys["viewer"])
    assert got.status_code == 200, got.text
    assert [(i["id"], i["children"], i["children_open"]) for i in got.json()] == [(group, 2, 1)]
    detail = world.client.get(f"/alerts/{group}", headers=world.keys["viewer"]).json()
    assert len(detail["children"]) == 2


@pytest.mark.parametrize(
    ("scope", "target", "rule", "subject", "kind", "device"),
    [
        ("device", "MH-1", "MH_TILT", "MH-1", "manhole", True),
        ("segment", "SEG-1", "MH_TILT", "MH-1", "manhole", True),
        ("circuit", "C-1", "SL_SUPPLY_LOSS", "SL-1", "streetlight", True),
        ("circuit", "C-1", "SL_CIRCUIT_SUPPLY_LOSS", "C-1", "streetlight", False),
        ("dma", "DMA-01", "WS_LOW_PRESSURE", "WM-1", "watermeter", True),
        ("district", "wenfeng", "SL_LAMP_OUT", "SL-2", "streetlight", True),
    ],
)
def test_mutes_are_honoured_when_the_engine_writes(world, scope, target, rule, subject, kind,
                                                   device):  # fmt: skip
    c, k = world.client, world.keys
    now = datetime.now(UTC)
    body = {"scope": scope, "target": target, "reason": "检修 maintenance",
            "starts_at": (now - timedelta(minutes=5)).isoformat(),
            "ends_at": (now + timedelta(hours=2)).isoformat()}  # fmt: skip
    assert c.post("/windows/mutes", json=body, headers=k["crew"]).status_code == 403
    made = c.post("/windows/mutes", json=body, headers=k["operator"])
    assert made.status_code == 201, made.text
    district = {"WM-1": "beiguan"}.get(subject, "wenfeng")
    muted = open_alert(world.url, rule, subject, kind, district, device=device)
    other = open_alert(world.url, "MH_FLIP", "MH-2", "manhole", "linzhou")
    got = c.get(f"/alerts/{muted}", headers=k["viewer"]).json()["alert"]
    assert got["suppressed"] is True and got["detail"]["muted_by"] == made.json()["id"]
    assert c.get(f"/alerts/{other}", headers=k["viewer"]).json()["alert"]["suppressed"] is False
    current = c.get("/windows/mutes", params={"current": True}, headers=k["viewer"]).json()
    assert [m["id"] for m in current] == [made.json()["id"]]
    gone = c.delete(f"/windows/mutes/{made.json()['id']}", headers=k["operator"])
    assert gone.status_code == 200
    assert c.get("/windows/mutes", headers=k["viewer"]).json() == []


def test_a_mute_that_ended_does_not_quiet_a_returning_fault(world: World):
    now = datetime.now(UTC)
    c, k = world.client, world.keys
    body = {"scope": "device", "target": "MH-1", "reason": "检修",
            "starts_at": (now - timedelta(hours=3)).isoformat(),
            "ends_at": (now - timedelta(hours=1)).isoformat()}  # fmt: skip
    assert c.post("/windows/mutes", json=body, headers=k["operator"]).status_code == 201
    alert_id = open_alert(world.url)
    assert c.get(f"/alerts/{alert_id}", headers=k["viewer"]).json()["alert"]["suppressed"] is False
    unknown = c.post("/windows/mutes", json={**body, "target": "MH-404"}, headers=k["operator"])
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "target"]


def test_mute_quiets_a_reopened_alert(world: World):
    """The engine reopens a resolved alert when its fault returns: under a mute it reopens
    suppressed."""
    c, k = world.client, world.keys
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    alert_id = open_alert(world.url, at=t0)
    clear = Change("clear", "MH_TILT", "MH-1", "manhole", "alarm", "测试 t", t0, t0, "MH-1",
                   "wenfeng")  # fmt: skip
    with psycopg.connect(world.url) as conn:
        apply_change(conn, clear, 3600)
    body = {"scope": "device", "target": "MH-1", "reason": "检修",
            "starts_at": t0.isoformat(), "ends_at": (t0 + timedelta(hours=1)).isoformat()}  # fmt: skip
    assert c.post("/windows/mutes", json=body, headers=k["operator"]).status_code == 201
    again = open_alert(world.url, at=t0 + timedelta(minutes=5))
    assert again == alert_id
    got = c.get(f"/alerts/{alert_id}", headers=k["viewer"]).json()["alert"]
    assert (got["status"], got["flap_count"], got["suppressed"]) == ("open", 1, True)


def test_work_windows_on_covers(world: World):
    c, k = world.client, world.keys
    now = datetime.now(UTC)
    body = {"device_id": "MH-1", "work_order": "WO-7",
            "starts_at": (now - timedelta(minutes=1)).isoformat(),
            "ends_at": (now + timedelta(hours=1)).isoformat()}  # fmt: skip
    made = c.post("/windows/work", json=body, headers=k["operator"])
    assert made.status_code == 201, made.text
    with psycopg.connect(world.url) as conn:  # what the engine reads for MH_OPEN
        assert work_window_covers(conn, "MH-1", now)
        assert not work_window_covers(conn, "MH-2", now)
    lamp = c.post("/windows/work", json={**body, "device_id": "SL-1"}, headers=k["operator"])
    assert lamp.status_code == 422 and lamp.json()["detail"][0]["loc"] == ["body", "device_id"]
    backwards = c.post("/windows/work", json={**body, "ends_at": body["starts_at"],
                       "starts_at": body["ends_at"]}, headers=k["operator"])  # fmt: skip
    assert backwards.status_code == 422 and "ends_at" in backwards.text
    listed = c.get("/windows/work", params={"device_id": "MH-1"}, headers=k["viewer"]).json()
    assert [w["work_order"] for w in listed] == ["WO-7"]
    assert c.delete(f"/windows/work/{made.json()['id']}", headers=k["operator"]).status_code == 200
    with psycopg.connect(world.url) as conn:
        assert not work_window_covers(conn, "MH-1", now)
