"""The worker's database side: batched writes (device kinds: ingest/kinds.py).

Readings go in with binary COPY. A redelivered message would violate the (device_id, ts)
key, so when the direct COPY hits a duplicate the batch is rewritten through a staging
table with ON CONFLICT DO NOTHING: the common case pays nothing for deduplication.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ingest.parse import DeadLetter, Parsed, Row, StatusEvent
from urbanwatch import db
from urbanwatch.queries import get_storage
from urbanwatch.readings import COPY_LAYOUT, copy_readings

logger = logging.getLogger(__name__)

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

    def __init__(self, url: str):
        self._db = db.LazyConnection(url, name="urbanwatch-ingest")

    def connection(self) -> psycopg.Connection:
        return self._db.get()

    def reset(self) -> None:
        """Drop the connection after an error; the next call reconnects."""
        self._db.reset()

    close = reset

    def storage(self) -> str:
        conn = self.connection()
        storage = get_storage(conn)
        conn.commit()
        return storage

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
        values = [row.values for row in rows]
        try:
            with (
                conn.transaction(),
                conn.cursor() as cur,
            ):  # a savepoint: a duplicate undoes only this
                copy_readings(cur, kind, values)
            return len(rows)
        except psycopg.errors.UniqueViolation:
            pass
        table, stage = sql.Identifier(f"{kind}_readings"), sql.Identifier(f"stage_{kind}")
        names = COPY_LAYOUT[kind].names
        with conn.cursor() as cur:
            cur.execute(
                sql.SQL(
                    "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) "
                    "ON COMMIT DELETE ROWS"
                ).format(stage, table)
            )
            copy_readings(cur, kind, values, table=f"stage_{kind}")
            cur.execute(
                sql.SQL("INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING").format(
                    table, names, names, stage
                )
            )
            added = cur.rowcount
            cur.execute(sql.SQL("TRUNCATE {}").format(stage))
        return added

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
