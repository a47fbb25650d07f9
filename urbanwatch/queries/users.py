"""Accounts, their refresh tokens and failed sign-ins (urbanwatch/sql/009_identity.sql)."""

from __future__ import annotations

from datetime import datetime

import psycopg
from psycopg.rows import class_row

from urbanwatch.identity.models import UserRow

USER_COLUMNS = (
    "id, username, display_name, role, unit, disabled, created_at, updated_at, password_hash"
)


def get_user(conn: psycopg.Connection, username: str, *, lock: bool = False) -> UserRow | None:
    query = f"SELECT {USER_COLUMNS} FROM users WHERE username = %s"
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(query + (" FOR UPDATE" if lock else ""), (username,)).fetchone()


def list_users(conn: psycopg.Connection) -> list[UserRow]:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(f"SELECT {USER_COLUMNS} FROM users ORDER BY username").fetchall()


def insert_user(
    conn: psycopg.Connection,
    username: str,
    password_hash: str,
    role: str,
    unit: str | None,
    display_name: str | None,
) -> UserRow | None:
    """The new row, or None when the name is taken."""
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(
            f"""INSERT INTO users (username, password_hash, role, unit, display_name)
                VALUES (%s, %s, %s, %s, %s) ON CONFLICT (username) DO NOTHING
                RETURNING {USER_COLUMNS}""",
            (username, password_hash, role, unit, display_name),
        ).fetchone()


def update_user(
    conn: psycopg.Connection,
    user_id: int,
    *,
    role: str,
    unit: str | None,
    display_name: str | None,
    disabled: bool,
) -> UserRow:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        row = cur.execute(
            f"""UPDATE users SET role = %s, unit = %s, display_name = %s, disabled = %s,
                       updated_at = now() WHERE id = %s RETURNING {USER_COLUMNS}""",
            (role, unit, display_name, disabled, user_id),
        ).fetchone()
    assert row is not None, "the caller holds the row"
    return row


def set_password_hash(conn: psycopg.Connection, user_id: int, password_hash: str) -> None:
    conn.execute(
        """UPDATE users SET password_hash = %s, password_changed_at = now(), updated_at = now()
           WHERE id = %s""",
        (password_hash, user_id),
    )


def count_active_admins(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM users WHERE role = 'admin' AND NOT disabled")
    found = row.fetchone()
    return int(found[0]) if found else 0


# --- refresh tokens ------------------------------------------------------------------


def insert_refresh_token(
    conn: psycopg.Connection, user_id: int, token_hash: bytes, expires_at: datetime, client: str
) -> None:
    conn.execute(
        """INSERT INTO refresh_tokens (user_id, token_hash, expires_at, client)
           VALUES (%s, %s, %s, %s)""",
        (user_id, token_hash, expires_at, client),
    )


def take_refresh_token(
    conn: psycopg.Connection, token_hash: bytes
) -> tuple[int, datetime, datetime | None] | None:
    """(user id, expiry, when it was revoked) of the token, locked, or None if unknown."""
    row = conn.execute(
        """SELECT user_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = %s
           FOR UPDATE""",
        (token_hash,),
    ).fetchone()
    return (int(row[0]), row[1], row[2]) if row else None


def revoke_refresh_token(conn: psycopg.Connection, token_hash: bytes) -> bool:
    cur = conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE token_hash = %s AND revoked_at IS NULL",
        (token_hash,),
    )
    return cur.rowcount > 0


def revoke_user_tokens(conn: psycopg.Connection, user_id: int) -> int:
    cur = conn.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE user_id = %s AND revoked_at IS NULL",
        (user_id,),
    )
    return cur.rowcount


def get_user_by_id(conn: psycopg.Connection, user_id: int) -> UserRow | None:
    with conn.cursor(row_factory=class_row(UserRow)) as cur:
        return cur.execute(f"SELECT {USER_COLUMNS} FROM users WHERE id = %s", (user_id,)).fetchone()


# --- failed sign-ins ------------------------------------------------------------------


def lock_login(conn: psycopg.Connection, username: str, client: str) -> None:
    """Serialize sign-ins of one account and of one client (across API workers) until the
    transaction ends, so concurrent guesses cannot all pass the limit."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('login:user:' || %s)), "
        "pg_advisory_xact_lock(hashtext('login:client:' || %s))",
        (username, client),
    )


def recent_failures(
    conn: psycopg.Connection, username: str, client: str, since: datetime
) -> tuple[list[datetime], list[datetime]]:
    """Times of failed sign-ins since `since`: of this account, and from this client."""
    by_user = conn.execute(
        "SELECT at FROM login_failures WHERE username = %s AND at >= %s", (username, since)
    ).fetchall()
    by_client = conn.execute(
        "SELECT at FROM login_failures WHERE client = %s AND at >= %s", (client, since)
    ).fetchall()
    return [r[0] for r in by_user], [r[0] for r in by_client]


def record_failure(
    conn: psycopg.Connection, username: str, client: str, prune_before: datetime
) -> None:
    conn.execute("DELETE FROM login_failures WHERE at < %s", (prune_before,))
    conn.execute(
        "INSERT INTO login_failures (username, client) VALUES (%s, %s)", (username, client)
    )


def clear_failures(conn: psycopg.Connection, username: str) -> None:
    conn.execute("DELETE FROM login_failures WHERE username = %s", (username,))


def now(conn: psycopg.Connection) -> datetime:
    """The database's clock: every API worker agrees on it."""
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]
