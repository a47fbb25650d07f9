"""`urbanwatch_meta`: facts about the database itself."""

from __future__ import annotations

from typing import Literal

import psycopg

Storage = Literal["timescale", "plain"]


def get_storage(conn: psycopg.Connection) -> Storage | None:
    """The storage back-end migrate chose for this database; None before the first migrate."""
    exists = conn.execute("SELECT to_regclass('urbanwatch_meta') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return None
    row = conn.execute("SELECT value FROM urbanwatch_meta WHERE key = 'storage'").fetchone()
    return row[0] if row else None  # type: ignore[no-any-return]
