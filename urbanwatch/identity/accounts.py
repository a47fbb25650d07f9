"""Account and key operations shared by the API and the CLI: each writes its audit entry in
the same transaction as the change (urbanwatch/audit.py), never with a secret in it."""

from __future__ import annotations

from typing import Any

import psycopg

from urbanwatch import audit
from urbanwatch.identity import passwords, tokens
from urbanwatch.identity.errors import IdentityError
from urbanwatch.identity.models import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyPublic,
    UserCreate,
    UserPublic,
    UserRow,
    UserUpdate,
)
from urbanwatch.identity.roles import Role
from urbanwatch.queries import api_keys as key_queries
from urbanwatch.queries import users as queries


def _snapshot(user: UserPublic | ApiKeyPublic) -> dict[str, Any]:
    return user.model_dump(mode="json", exclude={"created_at", "updated_at", "last_used_at"})


def _existing(conn: psycopg.Connection, username: str) -> UserRow:
    user = queries.get_user(conn, username, lock=True)
    if user is None:
        raise IdentityError(404, "username", f"no user {username!r}")
    return user


def create_user(conn: psycopg.Connection, actor: audit.Actor, body: UserCreate) -> UserPublic:
    hashed = passwords.hash_password(body.password.get_secret_value())
    row = queries.insert_user(conn, body.username, hashed, body.role, body.unit, body.display_name)
    if row is None:
        raise IdentityError(409, "username", f"user {body.username!r} exists")
    created = row.public()
    audit.record(conn, actor, "create", "user", body.username, after=_snapshot(created))
    return created


def update_user(
    conn: psycopg.Connection, actor: audit.Actor, username: str, body: UserUpdate
) -> UserPublic:
    """Change role, unit, display name or the disabled flag (only the fields given; an
    explicit null unit clears it). Refuses to leave no enabled admin; disabling an account
    revokes its refresh tokens."""
    user = _existing(conn, username)
    given = body.model_fields_set
    role = body.role if body.role is not None else user.role
    unit = body.unit if "unit" in given else user.unit
    name = body.display_name if "display_name" in given else user.display_name
    disabled = body.disabled if body.disabled is not None else user.disabled
    if role is Role.crew and unit is None:
        raise IdentityError(422, "unit", "a crew account needs the unit whose alerts it works")
    updated = queries.update_user(
        conn, user.id, role=role, unit=unit, display_name=name, disabled=disabled
    ).public()
    if user.role is Role.admin and not user.disabled and queries.count_active_admins(conn) == 0:
        field = "disabled" if disabled else "role"
        raise IdentityError(409, field, "this would leave no enabled admin account")
    revoked = queries.revoke_user_tokens(conn, user.id) if disabled and not user.disabled else 0
    audit.record(
        conn,
        actor,
        "update",
        "user",
        username,
        before=_snapshot(user.public()),
        after=_snapshot(updated),
        detail={"refresh_tokens_revoked": revoked} if revoked else None,
    )
    return updated


def reset_password(
    conn: psycopg.Connection, actor: audit.Actor, username: str, password: str
) -> None:
    """Set a new password and sign the account out everywhere (its refresh tokens)."""
    passwords.check_policy(password)
    user = _existing(conn, username)
    queries.set_password_hash(conn, user.id, passwords.hash_password(password))
    revoked = queries.revoke_user_tokens(conn, user.id)
    audit.record(
        conn, actor, "reset_password", "user", username, detail={"refresh_tokens_revoked": revoked}
    )


def create_key(conn: psycopg.Connection, actor: audit.Actor, body: ApiKeyCreate) -> ApiKeyCreated:
    new = tokens.new_api_key()
    row = key_queries.insert_key(
        conn,
        new.key_id,
        tokens.digest(new.key),
        name=body.name,
        role=body.role,
        unit=body.unit,
        expires_at=body.expires_at,
        created_by=actor.name,
    )
    audit.record(conn, actor, "create", "api_key", row.id, after=_snapshot(row))
    return ApiKeyCreated(**row.model_dump(), key=new.key)  # type: ignore[arg-type]


def revoke_key(conn: psycopg.Connection, actor: audit.Actor, key_id: str) -> ApiKeyPublic:
    before = key_queries.get_key(conn, key_id)
    if before is None:
        raise IdentityError(404, "key_id", f"no API key {key_id!r}")
    after = key_queries.revoke_key(conn, key_id)
    assert after is not None
    if before.revoked_at is None:
        audit.record(
            conn,
            actor,
            "revoke",
            "api_key",
            key_id,
            before=_snapshot(before),
            after=_snapshot(after),
        )
    return after
