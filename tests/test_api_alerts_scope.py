"""A crew reads only its own unit's alerts (docs/api-alerts.md "Who sees and works what"):
the list, one alert with its history, readings and children, incidents and the live stream,
through the real app and database. Another unit's alert is a 404 like a missing one, for
reading and for working it. Viewers, operators and admins keep reading every alert."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.alerts_api_support import World, make_world, open_alert
from tests.identity_support import make_key
from tests.test_api_alerts_stream import Stream, served  # noqa: F401  (fixture)
from urbanwatch.identity.roles import Role
from urbanwatch.routing.load import default_text, parse_route_file

ROUTES = parse_route_file(default_text())


def aliases(unit: str | None) -> set[str]:
    """A unit's id and names, from the shipped route file (what migration 022 reads)."""
    if unit is None or unit not in ROUTES.units:
        return set() if unit is None else {unit}
    u = ROUTES.units[unit]
    return {unit, u.name} | ({u.name_en} if u.name_en else set())


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def ids(world: World, who: str | dict[str, str], path: str = "/alerts", **params) -> list[int]:
    headers = world.keys[who] if isinstance(who, str) else who
    got = world.client.get(path, params=params, headers=headers)
    assert got.status_code == 200, got.text
    body = got.json()
    return [a["id"] for a in (body["items"] if isinstance(body, dict) else body)]


def test_crews_read_only_their_units_alerts(world: World):
    c, k = world.client, world.keys
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    with psycopg.connect(world.url) as conn:
        conn.execute(
            "INSERT INTO manhole_readings (ts, device_id, received_at, tilt_deg) "
            "VALUES (%s, 'MH-1', %s, 12.5)",
            (t0, t0),
        )
    tilt = open_alert(world.url, at=t0)  # manhole: routed to cgj (市城市管理局)
    water = open_alert(world.url, "WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan",
                       at=t0 + timedelta(minutes=1))  # fmt: skip  # shuiwu

    assert ids(world, "crew") == [tilt]
    assert ids(world, "water_crew") == [water]
    for everyone in ("viewer", "operator", "admin"):
        assert ids(world, everyone) == [water, tilt]
    assert c.get("/alerts", headers=k["crew"]).json()["total"] == 1
    # Filters narrow within the scope, never widen it.
    assert ids(world, "crew", unit="shuiwu") == []
    assert ids(world, "water_crew", kind="manhole") == []

    own = c.get(f"/alerts/{tilt}", headers=k["crew"])
    assert own.status_code == 200
    assert [e["event"] for e in own.json()["events"]] == ["opened"]
    assert [r["tilt_deg"] for r in own.json()["readings"]] == [12.5]
    missing = c.get("/alerts/999999", headers=k["water_crew"])
    hidden = c.get(f"/alerts/{tilt}", headers=k["water_crew"])
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["detail"] == f"alert_id: no alert {tilt}"  # same words as a missing one
    for action, body in [("acknowledge", {}), ("note", {"note": "x"}),
                         ("resolve", {"note": "x"}), ("assign", {"crew": "water-leak"})]:  # fmt: skip
        got = c.post(f"/alerts/{tilt}/{action}", json=body, headers=k["water_crew"])
        assert got.status_code == 404, (action, got.text)
    assert c.get(f"/alerts/{tilt}", headers=k["viewer"]).status_code == 200

    # A crew keyed by the unit's id reads the same as one keyed by its name.
    by_id = {"X-API-Key": make_key(world.url, Role.crew, unit="cgj")}
    assert ids(world, by_id) == [tilt]
    by_english = {"X-API-Key": make_key(world.url, Role.crew, unit="Anyang Water Group")}
    assert ids(world, by_english) == [water]


def test_an_alert_assigned_to_a_crew_of_the_unit_is_the_units_too(world: World):
    c, k = world.client, world.keys
    water = open_alert(world.url, "WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan")
    assert c.get(f"/alerts/{water}", headers=k["crew"]).status_code == 404
    assigned = c.post(f"/alerts/{water}/assign", json={"crew": "cgj-duty"}, headers=k["operator"])
    assert assigned.status_code == 200, assigned.text
    assert ids(world, "crew") == [water]  # assigned to a crew of cgj
    assert ids(world, "water_crew") == [water]  # and still routed to shuiwu
    ack = c.post(f"/alerts/{water}/acknowledge", json={}, headers=k["crew"])
    assert ack.status_code == 200, ack.text


def test_incidents_and_children_within_the_scope(world: World):
    c, k = world.client, world.keys
    lamp = open_alert(world.url, "SL_SUPPLY_LOSS", "SL-1", "streetlight")
    group = open_alert(world.url, "SL_CIRCUIT_SUPPLY_LOSS", "C-1", "streetlight", device=False,
                       children=(("SL_SUPPLY_LOSS", "SL-1"),))  # fmt: skip
    unit = c.get(f"/alerts/{group}", headers=k["viewer"]).json()["alert"]["unit"]
    own, other = ("crew", "water_crew") if unit == "cgj" else ("water_crew", "crew")
    assert ids(world, own, "/incidents") == [group]
    assert ids(world, other, "/incidents") == []
    assert ids(world, "viewer", "/incidents") == [group]
    detail = c.get(f"/alerts/{group}", headers=k[own]).json()
    assert [a["id"] for a in detail["children"]] == [lamp]


def test_a_crews_stream_carries_only_its_units_events(served):  # noqa: F811
    port, url = served
    key = make_key(url, Role.crew, unit="安阳水务集团公司")
    stream = Stream(port, key, last_id="0")
    assert stream.response.status == 200
    open_alert(url)  # cgj
    w1 = open_alert(url, "WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan")
    open_alert(url, "MH_FLIP", "MH-2", district="linzhou", severity="critical")  # cgj
    w2 = open_alert(url, "WS_HIGH_PRESSURE", "WM-1", "watermeter", "beiguan")
    first = stream.events(1)  # ids in order: a cgj event before it would come first
    assert json.loads(first[0]["data"])["alert_id"] == w1
    stream.close()

    again = Stream(port, key, last_id=first[0]["id"])  # resumes past the other unit's events
    resumed = again.events(1)
    assert json.loads(resumed[0]["data"])["alert_id"] == w2
    open_alert(url, "SL_LAMP_OUT", "SL-1", "streetlight")  # cgj, live
    w3 = open_alert(url, "WS_LOW_PRESSURE", "WM-9", "watermeter", "beiguan", device=False)
    live = again.events(1)
    assert json.loads(live[0]["data"])["alert_id"] == w3
    again.close()


ALIASES = sorted(set().union(*(aliases(u) for u in ROUTES.units)))
UNITS = st.one_of(
    st.sampled_from(ALIASES),
    st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=12),
)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def test_any_crew_unit_sees_exactly_its_alerts(world: World):
    """Any crew unit (a unit's id or name, or any other text) and any assignment: the list
    and each alert by id show exactly the alerts whose routed or assigned unit goes by it."""
    c, k = world.client, world.keys
    made = [
        open_alert(world.url),
        open_alert(world.url, "WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan"),
        open_alert(world.url, "SL_LAMP_OUT", "SL-2", "streetlight"),
        open_alert(world.url, "WL_LEVEL", "WL-1", "waterlog", "beiguan", device=False),
    ]
    routed = {a["id"]: a["unit"] for a in c.get("/alerts", headers=k["viewer"]).json()["items"]}
    crews = [None, *sorted(ROUTES.crews)]

    @SETTINGS
    @given(unit=UNITS, assigned=st.lists(st.sampled_from(crews), min_size=4, max_size=4))
    def check(unit: str, assigned: list[str | None]) -> None:
        with psycopg.connect(world.url) as conn:
            for alert_id, crew in zip(made, assigned, strict=True):
                conn.execute("UPDATE alerts SET assigned_crew = %s WHERE id = %s", (crew, alert_id))
        headers = {"X-API-Key": make_key(world.url, Role.crew, unit=unit)}
        expected = set()
        for alert_id, crew in zip(made, assigned, strict=True):
            names = aliases(routed[alert_id])
            if crew is not None:
                names |= aliases(ROUTES.crews[crew].unit)
            if unit in names:
                expected.add(alert_id)
        assert set(ids(world, headers)) == expected
        for alert_id in made:
            got = c.get(f"/alerts/{alert_id}", headers=headers)
            assert got.status_code == (200 if alert_id in expected else 404), got.text

    check()
