"""People and keys end to end through the app against a real database: sign-in, refresh
rotation and replay, sign-out, rate limits, accounts, keys, the audit log; no secret in an
answer, an error body or the audit log."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from api.app import create_app
from tests.identity_support import api_settings
from urbanwatch import audit
from urbanwatch.identity import accounts
from urbanwatch.identity.models import UserCreate
from urbanwatch.identity.roles import Role

ADMIN_PW = "correct horse battery staple"
CREW_PW = "crew password 0001"


def add_user(database_url: str, name: str, role: Role, password: str, unit: str | None = None):
    body = UserCreate(username=name, password=SecretStr(password), role=role, unit=unit)
    with psycopg.connect(database_url) as conn:
        return accounts.create_user(conn, audit.Actor("test:setup"), body)


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    add_user(database_url, "root.admin", Role.admin, ADMIN_PW)
    settings = api_settings(database_url, login_max_failures_per_account=3)
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def sign_in(client: TestClient, name: str, password: str) -> dict:
    got = client.post("/auth/token", data={"username": name, "password": password})
    assert got.status_code == 200, got.text
    return got.json()


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def audit_of(client: TestClient, headers: dict, **filters: str) -> list[dict]:
    got = client.get("/audit", params=filters, headers=headers)
    assert got.status_code == 200, got.text
    return got.json()["data"]


def test_sign_in_me_refresh_rotation_and_replay(client):
    tokens = sign_in(client, "root.admin", ADMIN_PW)
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    me = client.get("/auth/me", headers=bearer(tokens)).json()
    assert (me["actor"], me["role"], me["unit"]) == ("user:root.admin", "admin", None)

    second = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert second.status_code == 200
    fresh = second.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert client.get("/auth/me", headers=bearer(fresh)).status_code == 200
    # The spent token presented again: a copy is in someone's hands; every session ends.
    replay = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401 and "already used" in replay.json()["detail"]
    # ... including the session that refreshed properly.
    spent = client.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert spent.status_code == 401
    actions = [e["action"] for e in audit_of(client, bearer(fresh), resource="session")]
    assert actions == ["refresh_reuse", "refresh_reuse", "login"]


def test_logout_revokes_the_refresh_token(client):
    tokens = sign_in(client, "root.admin", ADMIN_PW)
    out = client.post(
        "/auth/logout", json={"refresh_token": tokens["refresh_token"]}, headers=bearer(tokens)
    )
    assert out.status_code == 204
    got = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert got.status_code == 401


def test_wrong_passwords_are_limited_per_account_with_retry_after(client, database_url):
    for _ in range(3):
        got = client.post("/auth/token", data={"username": "root.admin", "password": "wrong" * 3})
        assert got.status_code == 401 and got.headers["www-authenticate"] == "Bearer"
    limited = client.post("/auth/token", data={"username": "root.admin", "password": ADMIN_PW})
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 900
    assert "username" in limited.json()["detail"]
    with psycopg.connect(database_url) as conn:
        count = conn.execute("SELECT count(*) FROM login_failures").fetchone()[0]
        failed = conn.execute(
            "SELECT count(*) FROM audit_log WHERE action = 'login_failed'"
        ).fetchone()[0]
    assert (count, failed) == (3, 3)  # kept although each attempt answered with an error


def test_the_limit_holds_per_client_address_across_accounts(database_url):
    settings = api_settings(database_url, login_max_failures_per_client=4)
    with TestClient(create_app(settings)) as client:
        for i in range(4):
            got = client.post("/auth/token", data={"username": f"guess{i}", "password": "x"})
            assert got.status_code == 401
        got = client.post("/auth/token", data={"username": "another", "password": "x"})
    assert got.status_code == 429 and int(got.headers["retry-after"]) > 0


def test_a_second_app_sees_the_same_failures(client, database_url):
    """Two API workers (two apps, two pools) share the count through the database."""
    for _ in range(2):
        client.post("/auth/token", data={"username": "root.admin", "password": "bad password"})
    with TestClient(
        create_app(api_settings(database_url, login_max_failures_per_account=3))
    ) as other:
        other.post("/auth/token", data={"username": "root.admin", "password": "bad password"})
        assert (
            other.post(
                "/auth/token", data={"username": "root.admin", "password": ADMIN_PW}
            ).status_code
            == 429
        )


def test_accounts_roles_units_disable_and_reset(client):
    admin = bearer(sign_in(client, "root.admin", ADMIN_PW))
    created = client.post(
        "/users",
        json={"username": "li.wei", "password": CREW_PW, "role": "crew", "unit": "水务局"},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    assert "password" not in created.text and CREW_PW not in created.text
    crew = sign_in(client, "li.wei", CREW_PW)
    me = client.get("/auth/me", headers=bearer(crew)).json()
    assert (me["role"], me["unit"]) == ("crew", "水务局")
    assert client.get("/devices", headers=bearer(crew)).status_code == 200
    assert client.get("/users", headers=bearer(crew)).status_code == 403

    promoted = client.patch("/users/li.wei", json={"role": "operator"}, headers=admin)
    assert promoted.json()["role"] == "operator" and promoted.json()["unit"] == "水务局"
    # The role is read on each request: the old access token now carries operator rights.
    assert client.get("/auth/me", headers=bearer(crew)).json()["role"] == "operator"

    client.patch("/users/li.wei", json={"disabled": True}, headers=admin)
    assert client.get("/auth/me", headers=bearer(crew)).status_code == 401
    assert (
        client.post("/auth/refresh", json={"refresh_token": crew["refresh_token"]}).status_code
        == 401
    )
    refused = client.post("/auth/token", data={"username": "li.wei", "password": CREW_PW})
    assert refused.status_code == 401

    client.patch("/users/li.wei", json={"disabled": False}, headers=admin)
    new_pw = "a brand new passphrase"
    assert (
        client.post("/users/li.wei/password", json={"password": new_pw}, headers=admin).status_code
        == 204
    )
    assert (
        client.post("/auth/token", data={"username": "li.wei", "password": CREW_PW}).status_code
        == 401
    )
    sign_in(client, "li.wei", new_pw)

    entries = audit_of(client, admin, resource="user", resource_id="li.wei")
    assert [e["action"] for e in entries] == [
        "reset_password",
        "update",
        "update",
        "update",
        "create",
    ]
    assert entries[-2]["before"]["role"] == "crew" and entries[-2]["after"]["role"] == "operator"
    assert all(e["actor"] == "user:root.admin" and e["source"] == "testclient" for e in entries)
    assert CREW_PW not in json.dumps(entries) and new_pw not in json.dumps(entries)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"role": "crew", "unit": None}, 422, "unit"),
        ({"role": "viewer"}, 409, "role"),
        ({"disabled": True}, 409, "disabled"),
        ({"role": "boss"}, 422, "role"),
    ],
)
def test_account_changes_refused_name_the_field(client, body, code, field):
    admin = bearer(sign_in(client, "root.admin", ADMIN_PW))
    got = client.patch("/users/root.admin", json=body, headers=admin)
    assert got.status_code == code, got.text
    assert any(field == d["loc"][-1] for d in got.json()["detail"]), got.text


def test_errors_never_echo_a_password(client):
    admin = bearer(sign_in(client, "root.admin", ADMIN_PW))
    secret = "short-pw"
    got = client.post(
        "/users", json={"username": "x1", "password": secret, "role": "viewer"}, headers=admin
    )
    assert got.status_code == 422
    assert secret not in got.text and got.json()["detail"][0]["loc"] == ["body", "password"]
    long = "p" * 2000
    got = client.post("/auth/token", data={"username": "root.admin", "password": long})
    assert got.status_code == 422 and long not in got.text


def test_keys_created_once_listed_without_secret_revoked_and_expired(client, database_url):
    admin = bearer(sign_in(client, "root.admin", ADMIN_PW))
    created = client.post(
        "/keys", json={"name": "城市大屏 dashboard", "role": "viewer"}, headers=admin
    )
    assert created.status_code == 201
    key, key_id = created.json()["key"], created.json()["id"]
    assert key.startswith(f"uwk_{key_id}_")
    listed = client.get("/keys", headers=admin)
    assert key_id in listed.text and key not in listed.text
    assert client.get("/devices", headers={"X-API-Key": key}).status_code == 200
    assert client.post("/devices", json={}, headers={"X-API-Key": key}).status_code == 403
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert client.get("/devices", headers={"X-API-Key": tampered}).status_code == 401

    assert client.delete(f"/keys/{key_id}", headers=admin).json()["revoked_at"] is not None
    refused = client.get("/devices", headers={"X-API-Key": key})
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]

    past = client.post(
        "/keys",
        json={"name": "old", "role": "admin", "expires_at": "2020-01-01T00:00:00+08:00"},
        headers=admin,
    ).json()
    assert client.get("/devices", headers={"X-API-Key": past["key"]}).status_code == 401
    with psycopg.connect(database_url) as conn:
        stored = conn.execute(
            "SELECT secret_hash FROM api_keys WHERE id = %s", (key_id,)
        ).fetchone()[0]
        logged = conn.execute(
            "SELECT before, after FROM audit_log WHERE resource = 'api_key'"
        ).fetchall()
    assert key.encode() not in bytes(stored) and len(bytes(stored)) == 32
    assert key not in json.dumps(logged) and past["key"] not in json.dumps(logged)


def test_device_writes_are_audited_with_the_key_and_address(client):
    admin = bearer(sign_in(client, "root.admin", ADMIN_PW))
    operator = client.post(
        "/keys", json={"name": "registry sync", "role": "operator"}, headers=admin
    ).json()
    lamp = {
        "device_id": "sl-9",
        "kind": "streetlight",
        "district": "wenfeng",
        "lat": 36.1,
        "lon": 114.35,
        "attrs": {"lamp_type": "HPS", "rated_power_w": 250, "circuit_id": "C1"},
    }
    headers = {"X-API-Key": operator["key"]}
    assert client.post("/devices", json=lamp, headers=headers).status_code == 201
    assert (
        client.patch("/devices/sl-9", json={"status": "maintenance"}, headers=headers).status_code
        == 200
    )
    entries = audit_of(client, admin, actor=f"key:{operator['id']}")
    assert [(e["action"], e["resource"], e["resource_id"]) for e in entries] == [
        ("update", "device", "sl-9"),
        ("create", "device", "sl-9"),
    ]
    assert (
        entries[0]["before"]["status"] == "active"
        and entries[0]["after"]["status"] == "maintenance"
    )
    assert entries[0]["actor_role"] == "operator" and entries[0]["source"] == "testclient"


def test_audit_filters_and_pages(client):
    admin = bearer(sign_in(client, "root.admin", ADMIN_PW))
    for i in range(5):
        client.post("/keys", json={"name": f"k{i}", "role": "viewer"}, headers=admin)
    page = client.get(
        "/audit",
        params={"action": "create", "resource": "api_key", "limit": 2, "offset": 1},
        headers=admin,
    ).json()
    assert page["count"] == 5 and [e["after"]["name"] for e in page["data"]] == ["k3", "k2"]
    future = client.get("/audit", params={"since": "2999-01-01T00:00:00Z"}, headers=admin).json()
    assert future["count"] == 0
    bad = client.get("/audit", params={"since": "yesterday"}, headers=admin)
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "since"]


def test_the_application_role_may_run_sign_in_and_account_changes(database_url):
    """The services log in as members of urbanwatch_app (docs/security.md): migration 009
    grants it what sign-in and the account operations need."""
    from urbanwatch.identity import sessions
    from urbanwatch.identity.models import UserUpdate

    add_user(database_url, "root.admin", Role.admin, ADMIN_PW)
    policy = sessions_policy()
    with psycopg.connect(database_url) as conn:
        conn.execute("SET ROLE urbanwatch_app")
        pair = sessions.sign_in(conn, "root.admin", ADMIN_PW, "10.0.0.1", policy)
        sessions.refresh(conn, pair.refresh_token, "10.0.0.1", policy)
        with pytest.raises(sessions.SignInRefused):
            sessions.sign_in(conn, "root.admin", "wrong password!", "10.0.0.1", policy)
        actor = audit.Actor("user:root.admin", "admin", "10.0.0.1")
        add = UserCreate(username="x.viewer", password=SecretStr(CREW_PW), role=Role.viewer)
        accounts.create_user(conn, actor, add)
        accounts.update_user(conn, actor, "x.viewer", UserUpdate(disabled=True))


def sessions_policy():
    from api.routes.auth import policy

    return policy(api_settings("postgresql:///unused"))
