"""The worker's database side: which kind each device is, and batched writes.

Readings go in with binary COPY. A redelivered message would violate the (device_id, ts)
key, so when the direct COPY hits a duplicate the batch is rewritten through a staging
table with ON CONFLICT DO NOTHING: the common case pays nothing for deduplication.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ingest.parse import DeadLetter, Parsed, Row, StatusEvent
from urbanwatch import db
from urbanwatch.models import KINDS, READING_MODELS, measurement_fields

logger = logging.getLogger(__name__)

_PG_TYPES = {bool: "bool", int: "int4", float: "float8", str: "text"}


def _pg_type(annotation: Any) -> str:
    args = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)]
    return _PG_TYPES.get(args[0], "text") if args else "text"


def _copy_layout(kind: str) -> tuple[sql.Composed, list[str]]:
    fields = measurement_fields(kind)
    model_fields = READING_MODELS[kind].model_fields
    columns = ["ts", "device_id", "received_at", *fields, "extra"]
    types = [
        "timestamptz",
        "text",
        "timestamptz",
        *[_pg_type(model_fields[f].annotation) for f in fields],
        "jsonb",
    ]
    names = sql.SQL(", ").join(map(sql.Identifier, columns))
    return names, types


COPY_LAYOUT = {kind: _copy_layout(kind) for kind in KINDS}
DEAD_LETTER_COPY = (
    "COPY dead_letters (received_at, topic, payload, element_index, device_id, reason_code, "
    "reason) FROM STDIN (FORMAT BINARY)"
)
DEAD_LETTER_TYPES = ["timestamptz", "text", "bytea", "int4", "text", "text", "text"]
STATUS_INSERT = """INSERT INTO device_status (device_id, ts, status, received_at, detail)
                   VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"""


@dataclass(frozen=True)
class WriteResult:
    readings: int  # rows actually added (duplicates excluded)
    duplicates: int
    dead_letters: int
    status: int


class Store:
    """Owns one connection; reconnects on demand after a failure."""

    def __init__(self, url: str, registry_ttl_s: float = 60.0):
        self.url = url
        self.registry_ttl_s = registry_ttl_s
        self._conn: psycopg.Connection | None = None
        self.kinds: dict[str, str] = {}
        self._kinds_loaded = float("-inf")
        self._misses: dict[str, float] = {}  # device id -> when it was last looked up in vain

    # --- connection ------------------------------------------------------------------

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(self.url, name="urbanwatch-ingest")
        return self._conn

    def reset(self) -> None:
        """Drop the connection after an error; the next call reconnects."""
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        self.reset()

    def storage(self) -> str:
        conn = self.connection()
        row = conn.execute("SELECT value FROM urbanwatch_meta WHERE key = 'storage'").fetchone()
        conn.commit()
        return row[0] if row else "plain"

    # --- registry cache ----------------------------------------------------------------

    def refresh_kinds(self, now: float | None = None) -> None:
        """Reload device -> kind when the cache is older than its TTL."""
        now = time.monotonic() if now is None else now
        if now - self._kinds_loaded < self.registry_ttl_s:
            return
        conn = self.connection()
        self.kinds = dict(conn.execute("SELECT device_id, kind FROM devices").fetchall())
        conn.commit()
        self._kinds_loaded = now
        self._misses.clear()

    def look_up(self, device_ids: Iterable[str], now: float | None = None) -> bool:
        """Ask the registry about ids the cache lacks (new devices since the last reload).
        Ids asked about in vain are not asked again until the TTL passes. True if any found."""
        now = time.monotonic() if now is None else now
        wanted = [
            d
            for d in set(device_ids)
            if d not in self.kinds
            and now - self._misses.get(d, float("-inf")) >= self.registry_ttl_s
        ]
        if not wanted:
            return False
        conn = self.connection()
        found: dict[str, str] = dict(
            conn.execute(
                "SELECT device_id, kind FROM devices WHERE device_id = ANY(%s)", (wanted,)
            ).fetchall()
        )
        conn.commit()
        self.kinds.update(found)
        for d in wanted:
            if d not in found:
                self._misses[d] = now
        return bool(found)

    # --- writes --------------------------------------------------------------------------

    def write(self, parsed: Parsed) -> WriteResult:
        """Commit a batch in one transaction. Raises psycopg errors; the caller retries
        (connection trouble) or isolates the bad message (anything else)."""
        conn = self.connection()
        by_kind: dict[str, list[Row]] = {}
        for row in parsed.rows:
            by_kind.setdefault(row.kind, []).append(row)
        try:
            with conn.transaction():
                added = duplicates = 0
                for kind, rows in by_kind.items():
                    n = self._copy_readings(conn, kind, rows)
                    added += n
                    duplicates += len(rows) - n
                self._copy_dead_letters(conn, parsed.dead)
                self._insert_status(conn, parsed.status)
        except psycopg.Error:
            conn.rollback()
            raise
        return WriteResult(added, duplicates, len(parsed.dead), len(parsed.status))

    def _copy_readings(self, conn: psycopg.Connection, kind: str, rows: list[Row]) -> int:
        names, types = COPY_LAYOUT[kind]
        table = sql.Identifier(f"{kind}_readings")
        try:
            with (
                conn.transaction(),
                conn.cursor() as cur,
            ):  # a savepoint: a duplicate undoes only this
                self._copy(cur, table, names, types, rows)
            return len(rows)
        except psycopg.errors.UniqueViolation:
            pass
        stage = sql.Identifier(f"stage_{kind}")
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS"
                ).format(stage, table)
            )
            self._copy(cur, stage, names, types, rows)
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                    table, names, names, stage
                )
            )
            added = cur.rowcount
            cur.execute(sql.SQL("TRUNCATE {}").format(stage))
        return added

    @staticmethod
    def _copy(
        cur: psycopg.Cursor,
        table: sql.Identifier,
        names: sql.Composed,
        types: list[str],
        rows: list[Row],
    ) -> None:
        with cur.copy(
            sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(table, names)
        ) as copy:
            copy.set_types(types)
            for row in rows:
                copy.write_row(row.values)

    @staticmethod
    def _copy_dead_letters(conn: psycopg.Connection, dead: list[DeadLetter]) -> None:
        if not dead:
            return
        with conn.cursor() as cur, cur.copy(DEAD_LETTER_COPY) as copy:
            copy.set_types(DEAD_LETTER_TYPES)
            for d in dead:
                copy.write_row(
                    (
                        d.received_at,
                        d.topic,
                        d.payload,
                        d.element_index,
                        d.device_id,
                        d.reason_code,
                        d.reason,
                    )
                )

    @staticmethod
    def _insert_status(conn: psycopg.Connection, events: list[StatusEvent]) -> None:
        if not events:
            return
        with conn.cursor() as cur:
            cur.executemany(
                STATUS_INSERT,
                [
                    (
                        e.device_id,
                        e.ts,
                        e.status,
                        e.received_at,
                        Jsonb(e.detail) if e.detail else None,
                    )
                    for e in events
                ],
            )

    def refresh_rollups(self) -> int:
        """Plain storage only: materialize complete hours (TimescaleDB has its own policy)."""
        conn = self.connection()
        row = conn.execute("SELECT urbanwatch_refresh_rollups()").fetchone()
        conn.commit()
        return int(row[0]) if row else 0
