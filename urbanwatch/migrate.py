"""Numbered, forward-only SQL migrations, recorded in `schema_migrations`.

`sql/NNN_name.sql` applies everywhere; `sql/timescale/NNN_name.sql` and
`sql/plain/NNN_name.sql` are the two variants of a storage-dependent step, chosen once per
database by whether the TimescaleDB extension can be loaded. The choice is stored in
`urbanwatch_meta` and kept for later runs, so one database never mixes the two.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg

from urbanwatch.queries.meta import Storage, get_storage

logger = logging.getLogger(__name__)

STORAGES: tuple[Storage, ...] = ("timescale", "plain")
_FILE_RE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every migrator of this schema.
_LOCK_KEY = 0x75726277  # "urbw"
_LOCK_POLL_S = 0.25


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    variant: Storage | None
    sql: str


@dataclass(frozen=True)
class MigrateResult:
    storage: Storage
    applied: list[Migration]
    timescale_version: str | None


def load_migrations(storage: Storage) -> list[Migration]:
    """The common files plus the files of one storage variant, in version order."""
    root = resources.files("urbanwatch") / "sql"
    found: dict[int, Migration] = {}
    for folder, variant in ((root, None), (root / storage, storage)):
        for entry in folder.iterdir():
            match = _FILE_RE.match(entry.name)
            if not match:
                continue
            version = int(match.group(1))
            if version in found:
                raise RuntimeError(f"two migrations numbered {version:03d}: {entry.name}")
            found[version] = Migration(version, match.group(2), variant, entry.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


def timescale_loadable(conn: psycopg.Connection) -> bool:
    """True when CREATE EXTENSION timescaledb would work on this server."""
    row = conn.execute(
        """SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'),
                  current_setting('shared_preload_libraries') ~ 'timescaledb'"""
    ).fetchone()
    return bool(row and row[0] and row[1])


def choose_storage(conn: psycopg.Connection, wanted: Storage | Literal["auto"]) -> Storage:
    current = get_storage(conn)
    if current is not None:
        if wanted not in ("auto", current):
            raise RuntimeError(
                f"this database already uses {current} storage; it cannot switch to {wanted}"
            )
        return current
    if wanted == "auto":
        return "timescale" if timescale_loadable(conn) else "plain"
    if wanted == "timescale" and not timescale_loadable(conn):
        raise RuntimeError(
            "TimescaleDB was asked for, but this server cannot load it (the extension must be "
            "installed and listed in shared_preload_libraries)"
        )
    return wanted


def _apply(conn: psycopg.Connection, migration: Migration, storage: str) -> None:
    """One migration in one transaction. Roles are cluster-wide, so a database migrated at the
    same moment as another on the same server (tests, two deployments) can lose the race on
    `CREATE ROLE ... IF NOT EXISTS`: the loser's transaction is rolled back and applied again
    once, when the role exists and the check skips it."""
    for attempt in range(2):
        try:
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, variant) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.variant),
                )
                conn.execute(
                    """INSERT INTO urbanwatch_meta (key, value) VALUES ('storage', %s)
                       ON CONFLICT (key) DO NOTHING""",
                    (storage,),
                )
            return
        except (psycopg.errors.UniqueViolation, psycopg.errors.DuplicateObject):
            if attempt:
                raise


def _take_lock(conn: psycopg.Connection) -> None:
    """The migration lock, polled instead of waited for inside the server: while another
    migrate runs, this one says so and sleeps, so a Ctrl-C stops a sleep at once rather than
    a query psycopg would have to cancel over a second connection."""
    said = False
    while True:
        taken = conn.execute("SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)).fetchone()
        if taken and taken[0]:
            return
        if not said:
            logger.info("another migrate is running on this database; waiting for it to finish")
            said = True
        time.sleep(_LOCK_POLL_S)


def migrate(conn: psycopg.Connection, wanted: Storage | Literal["auto"] = "auto") -> MigrateResult:
    """Apply every pending migration, each in its own transaction. Safe to re-run and to
    run from several processes at once (they queue on an advisory lock)."""
    conn.autocommit = True
    _take_lock(conn)
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    integer PRIMARY KEY,
                   name       text NOT NULL,
                   variant    text,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        storage = choose_storage(conn, wanted)
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        applied = []
        for migration in load_migrations(storage):
            if migration.version in done:
                continue
            _apply(conn, migration, storage)
            logger.info("applied migration %03d_%s", migration.version, migration.name)
            applied.append(migration)
        version = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
        return MigrateResult(storage, applied, version[0] if version else None)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
