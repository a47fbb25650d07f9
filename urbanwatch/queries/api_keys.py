"""API keys for integrators (urbanwatch/sql/009_identity.sql): only their hash is stored."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import class_row

from urbanwatch.identity.models import ApiKeyPublic

KEY_COLUMNS = "id, name, role, unit, expires_at, created_at, created_by, revoked_at, last_used_at"


def insert_key(
    conn: psycopg.Connection,
    key_id: str,
    secret_hash: bytes,
    *,
    name: str,
    role: str,
    unit: str | None,
    expires_at: datetime | None,
    created_by: str,
) -> ApiKeyPublic:
    with conn.cursor(row_factory=class_row(ApiKeyPublic)) as cur:
        row = cur.execute(
            f"""INSERT INTO api_keys (id, secret_hash, name, role, unit, expires_at, created_by)
                VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {KEY_COLUMNS}""",
            (key_id, secret_hash, name, role, unit, expires_at, created_by),
        ).fetchone()
    assert row is not None
    return row


def get_key(conn: psycopg.Connection, key_id: str) -> ApiKeyPublic | None:
    with conn.cursor(row_factory=class_row(ApiKeyPublic)) as cur:
        return cur.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = %s", (key_id,)
        ).fetchone()


def get_key_hash(conn: psycopg.Connection, key_id: str) -> bytes | None:
    row = conn.execute("SELECT secret_hash FROM api_keys WHERE id = %s", (key_id,)).fetchone()
    return bytes(row[0]) if row else None


def list_keys(conn: psycopg.Connection, *, include_revoked: bool = True) -> list[ApiKeyPublic]:
    where = "" if include_revoked else "WHERE revoked_at IS NULL "
    with conn.cursor(row_factory=class_row(ApiKeyPublic)) as cur:
        return cur.execute(
            f"SELECT {KEY_COLUMNS} FROM api_keys {where}ORDER BY created_at, id"
        ).fetchall()


def revoke_key(conn: psycopg.Connection, key_id: str) -> ApiKeyPublic | None:
    """The key after revoking it (unchanged when it already was), or None if unknown."""
    with conn.cursor(row_factory=class_row(ApiKeyPublic)) as cur:
        return cur.execute(
            f"""UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %s
                RETURNING {KEY_COLUMNS}""",
            (key_id,),
        ).fetchone()


def touch_key(conn: psycopg.Connection, key_id: str) -> None:
    """Note the key's use, at most once a minute (a read-heavy integrator writes little)."""
    conn.execute(
        """UPDATE api_keys SET last_used_at = now() WHERE id = %s
           AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')""",
        (key_id,),
    )
