"""Credentials for tests of the API: a signing secret and API keys of each role, made
through the same account operations the API and the CLI use (tests/test_identity*.py)."""

from __future__ import annotations

import psycopg
from pydantic import SecretStr

from urbanwatch import audit
from urbanwatch.identity import accounts
from urbanwatch.identity.models import ApiKeyCreate
from urbanwatch.identity.roles import Role
from urbanwatch.settings import Settings

# Test-only: 48 bytes, as long as the docs ask for.
SECRET = "test-secret-key-for-urbanwatch-api-tests-only-48b"
CREW_UNIT = "水务局"


def api_settings(database_url: str, **values: object) -> Settings:
    return Settings(database_url=database_url, api_secret_key=SecretStr(SECRET), **values)  # type: ignore[arg-type]


def make_key(database_url: str, role: Role | str, unit: str | None = None) -> str:
    """A fresh API key with `role` (crew keys get CREW_UNIT unless told)."""
    role = Role(role)
    if role is Role.crew and unit is None:
        unit = CREW_UNIT
    body = ApiKeyCreate(name=f"test {role.value}", role=role, unit=unit)
    with psycopg.connect(database_url) as conn:
        created = accounts.create_key(conn, audit.Actor("test:setup"), body)
    return created.key.get_secret_value()
