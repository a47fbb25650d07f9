"""The worker's database side: one transaction per batch (device kinds: ingest/kinds.py).

Readings go in with binary COPY. A redelivered message would violate the (device_id, ts)
key, so when the direct COPY hits a duplicate the batch is rewritten through a staging
table with ON CONFLICT DO NOTHING: the common case pays nothing for deduplication. Dead
letters and status rows without their own ts are deduplicated by delivery receipts
(urbanwatch/queries/receipts.py). The same transaction adds the batch's per-minute counts
to `ingest_minutes` (ingest/minutes.py; one upsert per batch), so they are exactly what was
committed, across restarts and redeliveries.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg

from ingest.minutes import Minutes, add_dead_letters, add_readings
from ingest.parse import DeadLetter, Parsed, Row, StatusEvent
from urbanwatch import db
from urbanwatch.errors import RuntimeProblem
from urbanwatch.queries import dead_letters, ingest_minutes, meta, readings, receipts, status

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    readings: int = 0  # rows actually added (duplicates excluded)
    duplicates: int = 0
    dead_letters: int = 0
    status: int = 0

    def __add__(self, other: WriteResult) -> WriteResult:
        return WriteResult(
            self.readings + other.readings,
            self.duplicates + other.duplicates,
            self.dead_letters + other.dead_letters,
            self.status + other.status,
        )


@dataclass
class Receipt:
    """One delivery that produced dead letters or ts-less status events, and which ones (by
    position in the batch's Parsed), so a redelivered copy can be left out."""

    packet_id: int
    digest: bytes
    dup: bool
    received_at: datetime
    dead: range = range(0)
    status: list[int] = field(default_factory=list)


class Store:
    """Owns one connection; reconnects on demand after a failure."""

    def __init__(self, url: str, client_id: str):
        self.client_id = client_id
        self._db = db.LazyConnection(url, name="urbanwatch-ingest")

    def connection(self) -> psycopg.Connection:
        return self._db.get()

    def reset(self) -> None:
        """Drop the connection after an error; the next call reconnects."""
        self._db.reset()

    close = reset

    def storage(self) -> str:
        conn = self.connection()
        storage = meta.get_storage(conn)
        conn.commit()
        if storage is None:
            raise RuntimeProblem(
                f"{db.describe(self._db.url)} has no urbanwatch schema: run `urbanwatch migrate`"
            )
        return storage

    def write(self, parsed: Parsed, deliveries: Sequence[Receipt] = ()) -> WriteResult:
        """Commit a batch in one transaction. Raises psycopg errors; the caller retries
        (connection trouble) or isolates the bad message (anything else)."""
        conn = self.connection()
        by_kind: dict[str, list[Row]] = {}
        for row in parsed.rows:
            by_kind.setdefault(row.kind, []).append(row)
        try:
            with conn.transaction(), conn.cursor() as cur:
                dead, events = self._new_outputs(cur, parsed, deliveries)
                added = duplicates = 0
                minutes: Minutes = {}
                for kind, rows in by_kind.items():
                    n = self._write_readings(conn, kind, rows, minutes)
                    added += n
                    duplicates += len(rows) - n
                if dead:
                    dead_letters.copy_dead_letters(cur, map(_dead_letter_row, dead))
                    add_dead_letters(minutes, (d.received_at for d in dead))
                ingest_minutes.add(
                    cur, self.client_id, [(*key, *m.as_tuple()) for key, m in minutes.items()]
                )
                if events:
                    status.insert_status(cur, map(_status_row, events))
                if deliveries:
                    receipts.record(
                        cur,
                        self.client_id,
                        [(d.packet_id, d.digest, d.received_at) for d in deliveries],
                    )
        except psycopg.Error:
            conn.rollback()
            raise
        return WriteResult(added, duplicates, len(dead), len(events))

    def _new_outputs(
        self, cur: psycopg.Cursor[Any], parsed: Parsed, deliveries: Sequence[Receipt]
    ) -> tuple[list[DeadLetter], list[StatusEvent]]:
        """The dead letters and status events to write: all but those of a redelivered
        message whose first delivery was stored."""
        redelivered = [(d.packet_id, d.digest) for d in deliveries if d.dup]
        stored = receipts.already_stored(cur, self.client_id, redelivered)
        if not stored:
            return parsed.dead, parsed.status
        skip_dead: set[int] = set()
        skip_status: set[int] = set()
        for d in deliveries:
            if d.dup and (d.packet_id, d.digest) in stored:
                skip_dead.update(d.dead)
                skip_status.update(d.status)
        logger.info("%d redelivered message(s) were stored already", len(stored))
        return (
            [x for i, x in enumerate(parsed.dead) if i not in skip_dead],
            [x for i, x in enumerate(parsed.status) if i not in skip_status],
        )

    @staticmethod
    def _write_readings(
        conn: psycopg.Connection, kind: str, rows: list[Row], minutes: Minutes
    ) -> int:
        """Write the rows; count those added into `minutes`. Returns how many were added."""
        values = [row.values for row in rows]
        try:
            # a savepoint: a duplicate undoes only this
            with conn.transaction(), conn.cursor() as cur:
                readings.copy_readings(cur, kind, values)
        except psycopg.errors.UniqueViolation:
            pass
        else:
            add_readings(minutes, kind, values)
            return len(rows)
        with conn.cursor() as cur:
            added = readings.added_readings(cur, kind, values)
        add_readings(minutes, kind, added)
        return len(added)

    def prune_receipts(self, now: datetime) -> int:
        conn = self.connection()
        with conn.transaction(), conn.cursor() as cur:
            return receipts.prune(cur, now)

    def prune_minutes(self, now: datetime) -> int:
        """Delete per-minute counts older than ingest_minutes.KEEP (14 days)."""
        conn = self.connection()
        with conn.transaction(), conn.cursor() as cur:
            return ingest_minutes.prune(cur, now)


def _dead_letter_row(d: DeadLetter) -> dead_letters.DeadLetterRow:
    return dead_letters.DeadLetterRow(
        d.received_at, d.topic, d.payload, d.element_index, d.device_id, d.reason_code, d.reason
    )


def _status_row(e: StatusEvent) -> status.StatusRow:
    return status.StatusRow(e.device_id, e.ts, e.status, e.received_at, e.detail)


def total(results: Iterable[WriteResult]) -> WriteResult:
    return sum(results, WriteResult())
