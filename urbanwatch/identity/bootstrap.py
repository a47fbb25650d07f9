"""The first admin: created by `urbanwatch migrate` from URBANWATCH_ADMIN_PASSWORD when no
admin exists. There is never a default password."""

from __future__ import annotations

import psycopg
from pydantic import ValidationError

from urbanwatch import audit
from urbanwatch.errors import UsageError
from urbanwatch.identity import accounts, passwords
from urbanwatch.identity.models import UserCreate
from urbanwatch.identity.roles import Role
from urbanwatch.queries import users as queries
from urbanwatch.settings import Settings

HOW_TO = (
    "no admin account yet: create one with `urbanwatch users add NAME --role admin` "
    "(or set URBANWATCH_ADMIN_PASSWORD and run `urbanwatch migrate` again)"
)


def ensure_admin(conn: psycopg.Connection, settings: Settings, actor: audit.Actor) -> str | None:
    """A line saying what happened, or None when an admin exists already."""
    username = settings.urbanwatch_admin_username
    password = settings.urbanwatch_admin_password
    passwords.apply_settings(settings)
    if queries.count_active_admins(conn) > 0:
        return None
    if password is None:
        return HOW_TO
    try:
        body = UserCreate(username=username, password=password, role=Role.admin)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = {"password": "URBANWATCH_ADMIN_PASSWORD"}.get(
            str(first["loc"][0]) if first["loc"] else "", "URBANWATCH_ADMIN_USERNAME"
        )
        raise UsageError(f"setting {field}: {first['msg'].removeprefix('Value error, ')}") from None
    with conn.transaction():
        user = queries.get_user(conn, username, lock=True)
        if user is not None:  # an account of that name exists but is not an enabled admin
            return f"{HOW_TO}; user {username!r} exists and is not an enabled admin, left as it is"
        accounts.create_user(conn, actor, body)
    return f"created admin account {username!r} from URBANWATCH_ADMIN_PASSWORD"
