"""Credentials for tests of the API: a signing secret and API keys of each role, made
through the same account operations the API and the CLI use (tests/test_identity*.py)."""

from __future__ import annotations

import psycopg
from pydantic import SecretStr

from urbanwatch import audit
from urbanwatch.identity import accounts, passwords
from urbanwatch.identity.models import ApiKeyCreate
from urbanwatch.identity.roles import Role
from urbanwatch.settings import Settings

# Test-only: 48 bytes, as long as the docs ask for.
SECRET = "test-secret-key-for-urbanwatch-api-tests-only-48b"
CREW_UNIT = "水务局"
# argon2id at its lowest allowed cost: still the real scheme, ~100x faster than production's.
CHEAP_HASHING = {
    "PASSWORD_HASH_MEMORY_KIB": "8192",
    "PASSWORD_HASH_TIME_COST": "1",
    "PASSWORD_HASH_PARALLELISM": "1",
}
passwords.configure(8192, 1, 1)  # for accounts made directly by tests


def api_settings(database_url: str, **values: object) -> Settings:
    cheap = {k.lower(): int(v) for k, v in CHEAP_HASHING.items()}
    return Settings(  # type: ignore[arg-type]
        database_url=database_url, api_secret_key=SecretStr(SECRET), **(cheap | values)
    )


def make_key(database_url: str, role: Role | str, unit: str | None = None) -> str:
    """A fresh API key with `role` (crew keys get CREW_UNIT unless told)."""
    role = Role(role)
    if role is Role.crew and unit is None:
        unit = CREW_UNIT
    body = ApiKeyCreate(name=f"test {role.value}", role=role, unit=unit)
    with psycopg.connect(database_url) as conn:
        created = accounts.create_key(conn, audit.Actor("test:setup"), body)
    return created.key.get_secret_value()
