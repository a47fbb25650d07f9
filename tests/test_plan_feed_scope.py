"""GET /feed (the 一网统管 feed, docs/kpis.md): a crew's feed lists the open alerts of its own
unit only, exactly those GET /alerts lists for it (docs/api-alerts.md "Who sees and works
what"); viewers, operators and admins keep every open alert. Real app and database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.alerts_api_support import World, make_world, open_alert
from tests.identity_support import make_key
from urbanwatch.identity.roles import Role
from urbanwatch.routing.load import default_text, parse_route_file

ROUTES = parse_route_file(default_text())
ALIASES = sorted(
    {n for uid, u in ROUTES.units.items() for n in (uid, u.name, u.name_en) if n is not None}
)
UNITS = st.one_of(
    st.sampled_from(ALIASES),
    st.text(st.characters(categories=["L", "N", "P"]), min_size=1, max_size=12),
)
DAY = date(2026, 6, 1)


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def feed_ids(world: World, headers: dict[str, str]) -> list[int]:
    got = world.client.get(f"/feed?as_of={DAY}", headers=headers)
    assert got.status_code == 200, got.text
    return [a["id"] for a in got.json()["open_alerts"]]


def listed_open(world: World, headers: dict[str, str]) -> list[int]:
    got = world.client.get("/alerts", params={"limit": 500}, headers=headers)
    assert got.status_code == 200, got.text
    return [a["id"] for a in got.json()["items"] if a["status"] != "resolved"]


def test_a_crews_feed_carries_only_its_units_open_alerts(world: World):
    made = [
        open_alert(world.url),
        open_alert(world.url, "WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan"),
        open_alert(world.url, "SL_LAMP_OUT", "SL-2", "streetlight"),
        open_alert(world.url, "WL_LEVEL", "WL-1", "waterlog", "beiguan", device=False),
    ]
    k = world.keys
    everyone = feed_ids(world, k["viewer"])
    assert sorted(everyone) == sorted(made)
    assert feed_ids(world, k["operator"]) == everyone
    city, water = feed_ids(world, k["crew"]), feed_ids(world, k["water_crew"])
    assert city and water and not set(city) & set(water)
    assert city == listed_open(world, k["crew"]) and water == listed_open(world, k["water_crew"])
    with psycopg.connect(world.url) as conn:  # a resolved alert leaves every feed
        conn.execute(
            "UPDATE alerts SET status = 'resolved', resolved_at = now(), resolved_by = 'test' "
            "WHERE id = %s",
            (water[0],),
        )
    assert water[0] not in feed_ids(world, k["water_crew"])
    assert water[0] not in feed_ids(world, k["viewer"])


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_any_crews_feed_is_its_alert_list(world: World, data: st.DataObject):
    """Any crew unit (an alias or any text) and any assignment of the alerts to crews: the
    feed's open alerts are exactly the open alerts GET /alerts shows that crew."""
    with psycopg.connect(world.url) as conn:
        if not conn.execute("SELECT count(*) FROM alerts").fetchone()[0]:
            for args in ((), ("WS_LOW_PRESSURE", "WM-1", "watermeter", "beiguan"),
                         ("SL_LAMP_OUT", "SL-2", "streetlight")):  # fmt: skip
                open_alert(world.url, *args)
        made = [r[0] for r in conn.execute("SELECT id FROM alerts ORDER BY id")]
        crews = [None, *sorted(ROUTES.crews)]
        for alert_id in made:
            crew = data.draw(st.sampled_from(crews))
            conn.execute("UPDATE alerts SET assigned_crew = %s WHERE id = %s", (crew, alert_id))
    headers = {"X-API-Key": make_key(world.url, Role.crew, unit=data.draw(UNITS))}
    assert feed_ids(world, headers) == listed_open(world, headers)
