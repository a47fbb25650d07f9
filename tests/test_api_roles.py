"""Every route in the OpenAPI document declares its role, and refuses anonymous callers
(401 with WWW-Authenticate) and every lower role (403); the declared role and those above it
get through. Generated from the spec: a new route is checked without a line added here."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import PUBLIC, ROLE_KEY, declare_roles, public, require
from tests.conftest import ADMIN_URL, _create_database, _drop_database
from tests.identity_support import api_settings, make_key
from urbanwatch.identity.roles import ORDER, Role

# Routes anyone may call, and why (tests/test_api_roles.py checks nothing else is public).
PUBLIC_ROUTES = {
    ("get", "/health"): "liveness for load balancers and compose",
    ("post", "/auth/token"): "sign-in",
    ("post", "/auth/refresh"): "a refresh token is its own credential",
}


def operations(spec: dict) -> list[tuple[str, str, str]]:
    return [
        (method, path, op.get(ROLE_KEY, ""))
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    ]


def concrete(path: str) -> str:
    """A path with every {param} filled in by a value that fits any pattern we use."""
    return re.sub(r"\{[^}]+\}", "nobody01", path)


@pytest.fixture(scope="module")
def world(template_db: str) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    """One database for the module: the checks only read, or fail before writing."""
    name = f"uw_roles_{uuid.uuid4().hex[:12]}"
    url = _create_database(ADMIN_URL, name, template=template_db)
    keys = {role: make_key(url, role) for role in ORDER}
    try:
        with TestClient(create_app(api_settings(url))) as client:
            yield client, keys
    finally:
        _drop_database(ADMIN_URL, name)


@pytest.fixture(scope="module")
def spec(world) -> dict:
    client, _ = world
    return client.get("/openapi.json").json()


def test_every_operation_declares_a_role(spec):
    ops = operations(spec)
    assert len(ops) >= 18
    valid = {PUBLIC, *(r.value for r in ORDER)}
    undeclared = [(m, p) for m, p, role in ops if role not in valid]
    assert undeclared == []
    public_ops = {(m, p) for m, p, role in ops if role == PUBLIC}
    assert public_ops == set(PUBLIC_ROUTES)


def test_every_route_refuses_anonymous_and_lower_roles(world, spec):
    client, keys = world
    checked = 0
    for method, path, declared in operations(spec):
        if declared == PUBLIC:
            continue
        needed = Role(declared)
        url = concrete(path)
        body = {} if method in ("post", "patch", "put") else None
        anonymous = client.request(method.upper(), url, json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        assert anonymous.headers["www-authenticate"].startswith("Bearer"), (method, path)
        bad = client.request(method.upper(), url, json=body, headers={"X-API-Key": "uwk_nope"})
        assert bad.status_code == 401, (method, path)
        for role in ORDER:
            got = client.request(method.upper(), url, json=body, headers={"X-API-Key": keys[role]})
            if role.allows(needed):
                assert got.status_code not in (401, 403), (method, path, role, got.text)
            else:
                assert got.status_code == 403, (method, path, role, got.text)
                assert needed.value in got.json()["detail"]
            checked += 1
    assert checked >= 4 * 15


def test_public_routes_answer_without_credentials(world):
    client, _ = world
    assert client.get("/health").status_code == 200
    assert client.post("/auth/token", data={"username": "x", "password": "y"}).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": "nope"}).status_code == 401


def test_an_app_with_a_route_that_declares_no_role_is_refused():
    app = FastAPI()
    router = APIRouter(prefix="/things")

    @router.get("")
    def list_things() -> list[str]:
        return []

    @router.get("/open", dependencies=[public()])
    def open_thing() -> str:
        return "ok"

    @router.post("", dependencies=[require(Role.operator)])
    def create_thing() -> str:
        return "ok"

    app.include_router(router)
    with pytest.raises(RuntimeError, match=r"GET /things\b") as refused:
        declare_roles(app)
    assert "/things/open" not in str(refused.value) and "POST" not in str(refused.value)


def test_the_api_refuses_to_start_without_a_signing_secret(database_url):
    from pydantic import SecretStr

    from urbanwatch.errors import UsageError
    from urbanwatch.settings import Settings

    with pytest.raises(UsageError, match="API_SECRET_KEY: unset"):
        create_app(Settings(database_url=database_url))
    with pytest.raises(UsageError, match="API_SECRET_KEY: too short"):
        create_app(Settings(database_url=database_url, api_secret_key=SecretStr("short")))
