"""Property tests of every identity body, driven through the app into the database: any
sign-in form, any account and any key body ends in a stored row or a 4xx naming the field,
never a 5xx, never lost, never a secret in the answer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api.app import create_app
from tests.identity_support import api_settings, make_key
from urbanwatch.identity.roles import ORDER

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
USER_FIELDS = {"username", "password", "role", "unit", "display_name"}
KEY_FIELDS = {"name", "role", "unit", "expires_at"}

text = st.text(max_size=80)
any_json = st.one_of(
    st.none(), st.booleans(), st.integers(), text, st.lists(st.integers(), max_size=2)
)
good_users = {
    "username": st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True),
    "password": st.text(min_size=12, max_size=40),
    "role": st.sampled_from([r.value for r in ORDER]),
    "unit": st.sampled_from(["城管局", "住建局", "水务局", "区城管执法局"]),
    "display_name": st.sampled_from(["李伟", "Wang Fang", "张 三"]),
}
good_keys = {
    "name": st.sampled_from(["城市大屏", "GIS sync", "水务局 SCADA"]),
    "role": good_users["role"],
    "unit": good_users["unit"],
    "expires_at": st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.timezones()
    ).map(lambda d: d.isoformat()),
}


def body_of(good: dict[str, st.SearchStrategy[Any]], required: set[str]) -> st.SearchStrategy:
    """A good body (optional fields or not), then perhaps one field replaced by any value,
    one dropped, or an unknown one added."""
    base = st.fixed_dictionaries(
        {k: good[k] for k in required},
        optional={k: v for k, v in good.items() if k not in required},
    )

    def mutate(body: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
        keys = sorted(body) or ["extra"]
        return st.one_of(
            st.just(body),
            st.tuples(st.sampled_from(keys), any_json).map(lambda kv: body | {kv[0]: kv[1]}),
            st.sampled_from(keys).map(lambda k: {f: v for f, v in body.items() if f != k}),
            any_json.map(lambda v: body | {"extra": v}),
        )

    return base.flatmap(mutate)


@pytest.fixture
def world(database_url: str) -> Iterator[tuple[TestClient, str, str]]:
    settings_ = api_settings(
        database_url, login_max_failures_per_account=10_000, login_max_failures_per_client=10_000
    )
    with TestClient(create_app(settings_)) as client:
        yield client, database_url, make_key(database_url, "admin")


def names_a_field(response, fields: set[str]) -> bool:
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return any(detail.startswith(f"{f}:") or f in detail for f in fields)
    for error in detail:
        loc = [str(part) for part in error["loc"]]
        if set(loc[1:]) & (fields | {"extra"}) or any(
            error["msg"].startswith(f"Value error, {f}:") for f in fields
        ):
            continue
        if loc == ["body"] and error["type"] in ("model_attributes_type", "dict_type", "missing"):
            continue  # the body itself is not an object: the field is the body
        return False
    return True


def count(database_url: str, query: str) -> int:
    with psycopg.connect(database_url) as conn:
        return int(conn.execute(query).fetchone()[0])


@SETTINGS
@given(body=body_of(good_users, {"username", "password", "role"}))
def test_any_user_body_is_stored_or_refused_naming_the_field(world, body):
    client, url, key = world
    before = count(url, "SELECT count(*) FROM users")
    got = client.post("/users", json=body, headers={"X-API-Key": key})
    event(f"status {got.status_code}")
    assert got.status_code in (201, 409, 422), got.text
    password = body.get("password")
    if isinstance(password, str) and len(password) >= 4:
        assert password not in got.text
    after = count(url, "SELECT count(*) FROM users")
    if got.status_code == 201:
        assert after == before + 1
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT role, unit FROM users WHERE username = %s", (body["username"],)
            ).fetchone()
            logged = conn.execute(
                "SELECT count(*) FROM audit_log WHERE resource = 'user' AND resource_id = %s",
                (body["username"],),
            ).fetchone()[0]
        assert row == (body["role"], body.get("unit")) and logged == 1
    else:
        assert after == before
        assert names_a_field(got, USER_FIELDS), got.text


@SETTINGS
@given(body=body_of(good_keys, {"name", "role"}))
def test_any_key_body_makes_a_working_key_or_is_refused_naming_the_field(world, body):
    client, url, key = world
    before = count(url, "SELECT count(*) FROM api_keys")
    got = client.post("/keys", json=body, headers={"X-API-Key": key})
    event(f"status {got.status_code}")
    assert got.status_code in (201, 422), got.text
    after = count(url, "SELECT count(*) FROM api_keys")
    if got.status_code == 201:
        created = got.json()
        assert after == before + 1 and created["role"] == body["role"]
        me = client.get("/auth/me", headers={"X-API-Key": created["key"]})
        expired = created["expires_at"] is not None and me.status_code == 401
        assert me.status_code == 200 or expired, me.text
        if me.status_code == 200:
            assert (me.json()["actor"], me.json()["role"]) == (f"key:{created['id']}", body["role"])
    else:
        assert after == before
        assert names_a_field(got, KEY_FIELDS), got.text


REAL = ("root.admin", "the real passphrase!")


@SETTINGS
@given(
    form=st.fixed_dictionaries(
        {},
        optional={
            "username": st.one_of(st.just(REAL[0]), good_users["username"], text),
            "password": st.one_of(st.just(REAL[1]), text),
            "grant_type": st.one_of(st.just("password"), text),
        },
    )
)
def test_any_sign_in_form_is_answered_and_every_failure_counted(world, form):
    client, url, key = world
    if count(url, "SELECT count(*) FROM users") == 0:
        client.post(
            "/users",
            json={"username": REAL[0], "password": REAL[1], "role": "admin"},
            headers={"X-API-Key": key},
        )
    failures = count(url, "SELECT count(*) FROM login_failures")
    got = client.post("/auth/token", data=form)
    event(f"status {got.status_code}")
    assert got.status_code in (200, 401, 422), got.text
    now = count(url, "SELECT count(*) FROM login_failures")
    right = (form.get("username"), form.get("password")) == REAL
    if right and form.get("grant_type", "password") == "password":
        assert got.status_code == 200, got.text
    if got.status_code == 200:
        assert right and got.json()["token_type"] == "bearer"
        mine = f"SELECT count(*) FROM login_failures WHERE username = '{REAL[0]}'"
        assert count(url, mine) == 0  # a success clears the account's failures
    elif got.status_code == 401:
        assert not right and now == failures + 1  # every failure counted, none lost
        assert got.headers["www-authenticate"] == "Bearer"
    else:
        assert now == failures
        assert names_a_field(got, {"username", "password", "grant_type"}), got.text
    if isinstance(form.get("password"), str) and len(form["password"]) >= 4:
        assert form["password"] not in got.text
