"""Property tests of every alert API body through the app into the database (hypothesis):
acknowledge / assign / note / resolve / reopen, rule overrides and whole sets, routes, mutes
and work windows. Any body is stored (and reads back as sent) or refused with a 4xx that
names the field; never a 5xx."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from tests.alerts_api_support import World, make_world, open_alert, row

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ANY_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["", " ", "\x00", "注意 note", "x" * 2001, "2026-12-01T10:00:00+08:00"]),
)
ANY_VALUE = st.one_of(ANY_SCALAR, st.lists(ANY_SCALAR, max_size=2), st.dictionaries(
    st.text(max_size=4), ANY_SCALAR, max_size=2))  # fmt: skip


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def names_the_field(response: Any) -> bool:
    detail = response.json().get("detail")
    if isinstance(detail, str):
        return ":" in detail or response.status_code in (403, 409)
    return bool(detail) and all(len(e["loc"]) >= 2 or e["loc"] == ["body"] for e in detail)


SEEN: set[int] = set()  # statuses of the current test's examples


def checked(response: Any) -> Any:
    SEEN.add(response.status_code)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert names_the_field(response), response.text
    event(f"{response.request.method} {response.status_code}")
    return response


def last_event(url: str, alert_id: int) -> tuple[str, dict[str, Any]]:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT event, detail FROM alert_events WHERE alert_id = %s ORDER BY id DESC LIMIT 1",
            (alert_id,),
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_work_bodies(world: World):
    alert_id = open_alert(world.url)
    crews = st.one_of(ANY_VALUE, st.sampled_from(["cgj-manhole", "water-leak", "nobody"]))
    body = st.one_of(
        ANY_VALUE,
        st.fixed_dictionaries({}, optional={"note": ANY_VALUE, "crew": crews,
                                            "person": ANY_VALUE, "extra": ANY_VALUE}),
    )  # fmt: skip
    actions = st.sampled_from(["acknowledge", "assign", "note", "resolve", "reopen"])
    who = st.sampled_from(["crew", "water_crew", "operator"])

    @SETTINGS
    @example(action="note", body={"note": "到场 on site"}, who="crew")  # both outcomes, always
    @example(action="note", body={"note": ""}, who="crew")
    @example(action="resolve", body={"note": "\x00"}, who="crew")  # text cannot hold NUL
    @given(action=actions, body=body, who=who)
    def check(action: str, body: Any, who: str) -> None:
        crew = row(world.url, "SELECT assigned_crew FROM alerts WHERE id = %s", alert_id)[0]
        got = checked(world.client.post(f"/alerts/{alert_id}/{action}", json=body,
                                        headers=world.keys[who]))  # fmt: skip
        if who == "water_crew" and crew not in ("water-leak", "water-duty"):
            # another unit's alert (unless assigned to a crew of the water unit): not found
            assert got.status_code in (404, 422), got.text
        if got.status_code == 200:
            name, detail = last_event(world.url, alert_id)
            expected = {"acknowledge": "acknowledged", "assign": "assigned",
                        "note": "commented", "resolve": "resolved", "reopen": "reopened"}  # fmt: skip
            assert name == expected[action]
            if isinstance(body, dict) and body.get("note") is not None:
                assert detail["note"] == body["note"]  # stored as sent
            if action == "assign":
                assert (detail["crew"], detail["person"]) == (body.get("crew"), body.get("person"))

    SEEN.clear()
    check()
    assert SEEN & {200, 201} and any(400 <= code < 500 for code in SEEN), SEEN


def test_override_bodies(world: World):
    base = {"rule": "MH_TILT", "device": "MH-1", "params": {"tilt_deg": 15}}
    keys = ["rule", "device", "district", "kind", "params", "severity", "for_s", "count", "x"]
    override = st.one_of(
        mutated(base, keys),
        st.tuples(st.sampled_from(["tilt_deg", "hysteresis_deg", "nope"]), ANY_SCALAR).map(
            lambda kv: {**base, "params": {kv[0]: kv[1]}}
        ),
    )
    body = st.one_of(
        ANY_VALUE,
        st.fixed_dictionaries(
            {"overrides": st.lists(override, max_size=3)}, optional={"note": ANY_VALUE}
        ),
    )

    @SETTINGS
    @example(body={"overrides": [base]})
    @example(body={"overrides": [{**base, "rule": "NO_SUCH"}]})
    @given(body=body)
    def check(body: Any) -> None:
        got = checked(world.client.put("/rules/overrides", json=body,
                                       headers=world.keys["operator"]))  # fmt: skip
        if got.status_code == 200:
            stored = world.client.get("/rules/overrides", headers=world.keys["viewer"]).json()
            assert len(stored) == len(body["overrides"])
            assert [o["rule"] for o in stored] == [o["rule"] for o in body["overrides"]]

    SEEN.clear()
    check()
    assert SEEN & {200, 201} and any(400 <= code < 500 for code in SEEN), SEEN


def test_rule_set_bodies(world: World):
    base = world.client.get("/rules", headers=world.keys["viewer"]).json()["rules"]
    index = next(i for i, r in enumerate(base["rules"]) if r["id"] == "MH_TILT")
    keys = ["trigger", "for_s", "severity", "title", "params", "kind", "clear", "count", "x"]

    @SETTINGS
    @example(key="for_s", value=5, top=False)
    @example(key="trigger", value="nope >", top=False)
    @given(key=st.sampled_from(keys), value=ANY_VALUE, top=st.booleans())
    def check(key: str, value: Any, top: bool) -> None:
        body = copy.deepcopy(base)
        if top:
            body["reopen_within_s" if key == "for_s" else key] = value
        else:
            body["rules"][index][key] = value
        got = checked(world.client.put("/rules", json=body, headers=world.keys["operator"]))
        if got.status_code == 200:
            stored = world.client.get("/rules", headers=world.keys["viewer"]).json()
            assert stored["version"] == got.json()["version"]
            assert len(stored["rules"]["rules"]) == len(base["rules"])

    SEEN.clear()
    check()
    assert SEEN & {200, 201} and any(400 <= code < 500 for code in SEEN), SEEN


def test_route_bodies(world: World):
    base = world.client.get("/routes", headers=world.keys["viewer"]).json()
    paths = [
        ["version"], ["sla", "critical", "ack"], ["units", "cgj", "name"], ["crews", "x"],
        ["crews", "cgj-manhole", "unit"], ["crews", "cgj-manhole", "channels"],
        ["channels", "ops-webhook", "url"], ["channels", "duty-email", "to"],
        ["routes", 0, "unit"], ["routes", 1, "kind"], ["routes", 2, "min_severity"], ["extra"],
    ]  # fmt: skip

    @SETTINGS
    @example(path=["units", "cgj", "name"], value="城管局")
    @example(path=["sla", "critical", "ack"], value=2**40)  # an integer column
    @example(path=["sla", "critical", "ack"], value="100000d")
    @given(path=st.sampled_from(paths), value=ANY_VALUE)
    def check(path: list[Any], value: Any) -> None:
        body = copy.deepcopy(base)
        node = body
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value
        got = checked(world.client.put("/routes", json=body, headers=world.keys["operator"]))
        if got.status_code == 200:
            assert world.client.get("/routes", headers=world.keys["viewer"]).json() == got.json()

    SEEN.clear()
    check()
    assert SEEN & {200, 201} and any(400 <= code < 500 for code in SEEN), SEEN


MISSING = object()


def mutated(base: dict[str, Any], keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid body, or one with one field replaced by any value, or left out."""

    def apply(change: tuple[str, Any]) -> dict[str, Any]:
        key, value = change
        body = dict(base)
        if value is MISSING:
            body.pop(key, None)
        else:
            body[key] = value
        return body

    changes = st.tuples(st.sampled_from(keys), st.one_of(ANY_VALUE, st.just(MISSING)))
    return st.one_of(st.just(base), changes.map(apply))


def times() -> st.SearchStrategy[Any]:
    aware = st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
        timezones=st.sampled_from([UTC, None]),
    ).map(lambda d: d.isoformat())  # fmt: skip
    return st.one_of(aware, ANY_SCALAR)


def test_window_bodies(world: World):
    now = datetime.now(UTC)
    period = {"starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=2)).isoformat()}
    mute = {**period, "scope": "segment", "target": "SEG-1", "reason": "检修 maintenance"}
    work = {**period, "device_id": "MH-1", "work_order": "WO-1"}
    valid = {"mutes": mute, "work": work}
    bodies = {
        "mutes": st.one_of(
            mutated(mute, ["scope", "target", "reason", "starts_at", "ends_at", "x"]),
            st.tuples(st.sampled_from(["starts_at", "ends_at"]), times()).map(
                lambda kv: {**mute, kv[0]: kv[1]}
            ),
        ),
        "work": mutated(work, ["device_id", "work_order", "starts_at", "ends_at", "x"]),
    }

    @SETTINGS
    @example(kind="mutes", data=None)  # the valid mute and a refused one, always
    @example(kind="work", data=None)
    @given(kind=st.sampled_from(["mutes", "work"]), data=st.data())
    def check(kind: str, data: st.DataObject) -> None:
        body = data.draw(bodies[kind]) if data is not None else valid[kind]
        if data is None:  # refused: a time that is none, text PostgreSQL cannot hold
            nul = {"reason": "\x00"} if kind == "mutes" else {"work_order": "\x00"}
            for bad in ({**body, "starts_at": "then"}, {**body, **nul}):
                refused = checked(world.client.post(f"/windows/{kind}", json=bad,
                                                    headers=world.keys["operator"]))  # fmt: skip
                assert refused.status_code == 422
        got = checked(world.client.post(f"/windows/{kind}", json=body,
                                        headers=world.keys["operator"]))  # fmt: skip
        if got.status_code == 201:
            made = got.json()
            listed = world.client.get(f"/windows/{kind}", headers=world.keys["viewer"]).json()
            assert made in listed
            assert datetime.fromisoformat(made["starts_at"]) == datetime.fromisoformat(
                body["starts_at"]
            )

    SEEN.clear()
    check()
    assert SEEN & {200, 201} and any(400 <= code < 500 for code in SEEN), SEEN
