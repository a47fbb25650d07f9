"""`device_credentials` (urbanwatch/sql/010_device_credentials.sql): broker accounts with
their Mosquitto password hashes; urbanwatch/credentials/ is the only writer."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel


class Target(BaseModel):
    """A device, gateway or service that an account is (or would be) for."""

    principal: str
    principal_id: str
    kind: str | None = None


class CredentialRow(BaseModel):
    username: str
    principal: str
    principal_id: str
    password_hash: str | None
    issued_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None
    kind: str | None = None  # a device's kind, from the registry (None once deleted)


SELECT_DEVICES = """SELECT 'device' AS principal, device_id AS principal_id, kind FROM devices
    WHERE (%(ids)s::text[] IS NULL OR device_id = ANY(%(ids)s))
      AND (%(kind)s::text IS NULL OR kind = %(kind)s)
      AND (%(district)s::text IS NULL OR district = %(district)s)
      AND (%(gateway)s::text IS NULL OR gateway_id = %(gateway)s)
    ORDER BY device_id"""

SELECT_GATEWAYS = """SELECT 'gateway' AS principal, gateway_id AS principal_id FROM gateways
    WHERE (%(gateway)s::text IS NULL OR gateway_id = %(gateway)s) ORDER BY gateway_id"""

SELECT_CREDENTIALS = """SELECT c.username, c.principal, c.principal_id, c.password_hash,
        c.issued_at, c.rotated_at, c.revoked_at, d.kind
    FROM device_credentials c
    LEFT JOIN devices d ON c.principal = 'device' AND d.device_id = c.principal_id
    WHERE (%(ids)s::text[] IS NULL OR c.principal || ' ' || c.principal_id = ANY(%(ids)s))
      AND (NOT %(active)s OR c.revoked_at IS NULL)
    ORDER BY c.username"""

UPSERT_ACTIVE = """INSERT INTO device_credentials (username, principal, principal_id, password_hash)
    VALUES (%(username)s, %(principal)s, %(principal_id)s, %(hash)s)
    ON CONFLICT (principal, principal_id) DO UPDATE SET password_hash = EXCLUDED.password_hash,
        username = EXCLUDED.username,
        issued_at = CASE WHEN device_credentials.revoked_at IS NULL
                         THEN device_credentials.issued_at ELSE now() END,
        rotated_at = CASE WHEN device_credentials.revoked_at IS NULL THEN now() END,
        revoked_at = NULL"""

REVOKE = """UPDATE device_credentials SET password_hash = NULL, revoked_at = now()
    WHERE username = %s AND revoked_at IS NULL"""


def select_devices(
    conn: psycopg.Connection,
    *,
    ids: list[str] | None = None,
    kind: str | None = None,
    district: str | None = None,
    gateway: str | None = None,
) -> list[Target]:
    params = {"ids": ids, "kind": kind, "district": district, "gateway": gateway}
    with conn.cursor(row_factory=class_row(Target)) as cur:
        return cur.execute(SELECT_DEVICES, params).fetchall()


def select_gateways(conn: psycopg.Connection, gateway: str | None = None) -> list[Target]:
    with conn.cursor(row_factory=class_row(Target)) as cur:
        return cur.execute(SELECT_GATEWAYS, {"gateway": gateway}).fetchall()


def key(principal: str, principal_id: str) -> str:
    """What `list_credentials` selects by: an account is one per (principal, id)."""
    return f"{principal} {principal_id}"


def list_credentials(
    conn: psycopg.Connection, keys: list[str] | None = None, *, active: bool = False
) -> list[CredentialRow]:
    """Accounts (all, or those of `keys` made by `key`), with each device's current kind."""
    with conn.cursor(row_factory=class_row(CredentialRow)) as cur:
        return cur.execute(SELECT_CREDENTIALS, {"ids": keys, "active": active}).fetchall()


def store_hash(conn: psycopg.Connection, username: str, target: Target, password_hash: str) -> None:
    """Give the account this hash: a new or revoked account is issued, an active one rotated."""
    conn.execute(
        UPSERT_ACTIVE,
        {
            "username": username,
            "principal": target.principal,
            "principal_id": target.principal_id,
            "hash": password_hash,
        },
    )


def revoke(conn: psycopg.Connection, username: str) -> bool:
    """Revoke an active account; False when there was none."""
    return conn.execute(REVOKE, (username,)).rowcount == 1
