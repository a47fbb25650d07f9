"""A maintenance mute that ends un-suppresses what it quieted (migration 022,
`alert_unmute_ended`; docs/api-alerts.md "Maintenance windows"), on real PostgreSQL: the
notifier's loop when ends_at passes, DELETE /windows/mutes/{id} when it is ended early. Each
alert still unresolved gets exactly one 'unsuppressed' event and the notifier delivers it once
(to the reference webhook receiver); one still covered by another mute stays quiet."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from alerts.notify.notifier import Notifier
from tests.alerts_api_support import World, make_world, open_alert, row
from tests.test_alerts_notify import (  # noqa: F401  (receiver: fixture)
    ENV,
    install_routes,
    logged_keys,
    receiver,
    route_text,
    run_until,
    settings_for,
)
from tests.test_alerts_notify import open_alert as engine_alert
from urbanwatch.queries.windows import unmute_ended


def add_mute(conn: psycopg.Connection, scope: str, target: str, hours: float = 1) -> int:
    got = conn.execute(
        "INSERT INTO alert_mutes (scope, target, starts_at, ends_at, reason, created_by) "
        "VALUES (%s, %s, now() - interval '10 minutes', now() + %s * interval '1 hour', "
        "'检修 maintenance', 'test') RETURNING id",
        (scope, target, hours),
    ).fetchone()
    assert got is not None
    return int(got[0])


def end_mute(conn: psycopg.Connection, mute_id: int) -> None:
    """Its ends_at passes: the mute's end moved to a moment ago."""
    conn.execute(
        "UPDATE alert_mutes SET ends_at = now() - interval '1 second' WHERE id = %s", (mute_id,)
    )


def events(conn: psycopg.Connection, alert_id: int) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1]))
        for r in conn.execute(
            "SELECT event, actor FROM alert_events WHERE alert_id = %s ORDER BY id", (alert_id,)
        )
    ]


def state(conn: psycopg.Connection, alert_id: int) -> tuple[bool, int | None]:
    got = conn.execute("SELECT suppressed, muted_by FROM alerts WHERE id = %s", (alert_id,))
    found = got.fetchone()
    assert found is not None
    return bool(found[0]), found[1]


@pytest.mark.parametrize("routed_before_end", [True, False])
def test_mute_ends_the_notifier_delivers_the_alert_once(
    conn,
    database_url,
    receiver,  # noqa: F811  (the fixture imported above)
    tmp_path: Path,
    routed_before_end: bool,
):
    """`routed_before_end` False: the mute ends before the notifier has routed the alert's
    'opened' event; the crew still hears of it once, by 'unsuppressed'."""
    install_routes(
        conn,
        route_text({"hook": {"type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET"}}),
    )
    conn.commit()
    notifier = Notifier(settings_for(database_url), env=ENV)
    log = tmp_path / "hooks.jsonl"
    mute = add_mute(conn, "device", "MH-9")
    conn.commit()
    alert = engine_alert(conn, subject="MH-9", severity="critical")
    conn.commit()
    assert state(conn, alert) == (True, mute)
    if routed_before_end:
        run_until(
            notifier,
            lambda: conn.execute("SELECT count(*) FROM notify_inbox").fetchone()[0] == 0,
            what="the opened event routed",
        )
        assert logged_keys(log) == []  # suppressed: nothing sent
        assert unmute_ended(conn, "test") == 0  # the mute is still in force
        conn.commit()
    end_mute(conn, mute)
    conn.commit()

    run_until(notifier, lambda: len(logged_keys(log)) == 1, what="the unsuppressed delivery")
    for _ in range(5):
        notifier.step()
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["payload"]["alert"]["id"], e["payload"]["event"]["type"]) for e in entries] == [
        (alert, "unsuppressed")
    ]
    assert entries[0]["payload"]["alert"]["ack_due_at"] is not None  # its clock starts now
    assert receiver.state.duplicates == 0
    assert events(conn, alert) == [("opened", "engine"), ("unsuppressed", "service:notify")]
    assert state(conn, alert) == (False, None)
    assert unmute_ended(conn, "test") == 0  # once
    conn.commit()


def test_mute_with_a_passed_end_no_longer_covers_a_new_alert(conn, database_url):
    """After the sweep, an alert of the same device opens loud, and one that was resolved
    while muted is left alone."""
    mute = add_mute(conn, "device", "MH-7")
    conn.commit()
    resolved = engine_alert(conn, subject="MH-7")
    conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = 'x' "
        "WHERE id = %s",
        (resolved,),
    )
    conn.commit()
    end_mute(conn, mute)
    assert unmute_ended(conn, "test") == 0  # resolved: nothing to tell
    conn.commit()
    assert [e for e, _ in events(conn, resolved)] == ["opened"]
    loud = engine_alert(conn, subject="MH-7")
    conn.commit()
    assert state(conn, loud) == (False, None)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def mute_body(scope: str, target: str) -> dict[str, str]:
    now = datetime.now(UTC)
    return {
        "scope": scope,
        "target": target,
        "reason": "检修 maintenance",
        "starts_at": (now - timedelta(minutes=10)).isoformat(),
        "ends_at": (now + timedelta(hours=2)).isoformat(),
    }


def test_deleting_a_mute_early_unsuppresses_once(world: World):
    c, k = world.client, world.keys
    made = c.post("/windows/mutes", json=mute_body("device", "MH-1"), headers=k["operator"])
    assert made.status_code == 201, made.text
    mute = made.json()["id"]
    alert = open_alert(world.url)  # written by the engine's path: suppressed by the trigger
    other = open_alert(world.url, "MH_FLIP", "MH-2", district="linzhou")  # never muted
    before = c.get(f"/alerts/{alert}", headers=k["viewer"]).json()["alert"]
    assert before["suppressed"] is True and before["detail"]["muted_by"] == mute

    gone = c.delete(f"/windows/mutes/{mute}", headers=k["operator"])
    assert gone.status_code == 200, gone.text
    after = c.get(f"/alerts/{alert}", headers=k["viewer"]).json()
    assert after["alert"]["suppressed"] is False and "muted_by" not in after["alert"]["detail"]
    assert [e["event"] for e in after["events"]] == ["opened", "unsuppressed"]
    assert after["events"][1]["actor"].startswith("key:")
    assert after["events"][1]["detail"] == {"mute_id": mute}
    audited = row(
        world.url,
        "SELECT detail FROM audit_log WHERE resource = 'alert_mute' AND action = 'delete'",
    )
    assert audited[0] == {"unsuppressed": 1}
    with psycopg.connect(world.url) as conn:
        assert unmute_ended(conn, "test") == 0  # once: nothing left to lift
        assert [e for e, _ in events(conn, alert)] == ["opened", "unsuppressed"]
        assert [e for e, _ in events(conn, other)] == ["opened"]


def test_overlapping_mutes_keep_it_quiet_until_the_last_ends(world: World):
    c, k = world.client, world.keys
    device = c.post("/windows/mutes", json=mute_body("device", "MH-1"), headers=k["operator"])
    district = c.post("/windows/mutes", json=mute_body("district", "wenfeng"),
                      headers=k["operator"])  # fmt: skip
    assert (device.status_code, district.status_code) == (201, 201)
    alert = open_alert(world.url)
    with psycopg.connect(world.url) as conn:
        assert state(conn, alert) == (True, device.json()["id"])

    assert c.delete(f"/windows/mutes/{device.json()['id']}", headers=k["operator"]).is_success
    with psycopg.connect(world.url) as conn:
        assert state(conn, alert) == (True, district.json()["id"])  # the other one covers it
        assert [e for e, _ in events(conn, alert)] == ["opened"]
        end_mute(conn, district.json()["id"])  # and then its end passes too
        assert unmute_ended(conn, "service:notify") == 1
        assert unmute_ended(conn, "service:notify") == 0
        assert state(conn, alert) == (False, None)
        assert events(conn, alert) == [("opened", "engine"), ("unsuppressed", "service:notify")]


def test_a_child_quieted_by_its_parent_stays_quiet(world: World):
    """Suppression by a parent (circuit alert) is the parent's: a mute's end leaves it."""
    c, k = world.client, world.keys
    made = c.post("/windows/mutes", json=mute_body("device", "SL-1"), headers=k["operator"])
    lamp = open_alert(world.url, "SL_SUPPLY_LOSS", "SL-1", "streetlight")
    with psycopg.connect(world.url) as conn:
        assert state(conn, lamp) == (True, made.json()["id"])
        conn.execute("UPDATE alerts SET parent_id = %s WHERE id = %s",
                     (open_alert(world.url, "SL_CIRCUIT_SUPPLY_LOSS", "C-1", "streetlight",
                                 device=False), lamp))  # fmt: skip
    assert c.delete(f"/windows/mutes/{made.json()['id']}", headers=k["operator"]).is_success
    with psycopg.connect(world.url) as conn:
        assert state(conn, lamp) == (True, None)
        assert [e for e, _ in events(conn, lamp)] == ["opened"]
