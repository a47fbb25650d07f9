"""The audit log: who changed what, when, from where, before and after (issue #9).

Every write through the API or the CLI calls `record` in the same transaction as the change,
so a change is never stored without its entry (nor the entry without the change). The table
is append-only (urbanwatch/sql/006_audit.sql). Secrets never reach it: `before`/`after` pass
through `redact`, which drops every key that names one.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import psycopg

from urbanwatch.queries import audit as queries

# Keys whose values are secrets or their hashes; never stored in the audit log.
SECRET_KEYS = frozenset(
    {"password", "password_hash", "secret", "secret_hash", "token", "token_hash", "api_key"}
)


@dataclass(frozen=True)
class Actor:
    """Who acts: `user:<name>`, `key:<id>`, `cli:<os user>@<host>` or `service:<name>`."""

    name: str
    role: str | None = None
    source: str | None = None  # the client address for the API; "cli"; a service name

    @classmethod
    def cli(cls) -> Actor:
        """Whoever runs the `urbanwatch` command on this host."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no name for this uid (a container's arbitrary user)
            user = "unknown"
        return cls(f"cli:{user}@{socket.gethostname()}", None, "cli")

    @classmethod
    def service(cls, name: str) -> Actor:
        return cls(f"service:{name}", None, name)


def redact(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v for k, v in values.items() if k not in SECRET_KEYS}


def record(
    conn: psycopg.Connection,
    actor: Actor,
    action: str,
    resource: str,
    resource_id: str | None = None,
    *,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One entry, written on `conn` (inside the caller's transaction)."""
    queries.insert_entry(
        conn,
        queries.AuditEntry(
            actor=actor.name,
            actor_role=actor.role,
            source=actor.source,
            action=action,
            resource=resource,
            resource_id=resource_id,
            before=redact(before),
            after=redact(after),
            detail=dict(detail) if detail is not None else None,
        ),
    )
