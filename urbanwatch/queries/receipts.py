"""`ingest_receipts`: deliveries ingest stored as something other than readings.

Readings are keyed by (device_id, ts), so a redelivered message adds no row. Dead letters and
status messages without their own `ts` have no such key: a broker redelivers a message whose
acknowledgement was lost (the connection dropped after the commit), and without a record the
same message would be stored twice. The redelivery carries MQTT's DUP flag and the packet id
of the first delivery on the same session; a receipt (session, packet id, digest of topic and
payload) written in the same transaction as the first delivery's rows lets ingest recognise it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import psycopg

# Longer than a session can hold an unacknowledged message (persistent_client_expiration 1d).
KEEP = timedelta(days=2)

RECORD = """INSERT INTO ingest_receipts (client_id, packet_id, digest, received_at)
            VALUES (%s, %s, %s, %s)
            ON CONFLICT (client_id, packet_id, digest)
            DO UPDATE SET received_at = excluded.received_at"""
STORED = """SELECT packet_id, digest FROM ingest_receipts
            WHERE client_id = %s
              AND (packet_id, digest) IN (SELECT * FROM unnest(%s::int[], %s::bytea[]))"""
PRUNE = "DELETE FROM ingest_receipts WHERE received_at < %s"


def already_stored(
    cur: psycopg.Cursor[Any], client_id: str, deliveries: list[tuple[int, bytes]]
) -> set[tuple[int, bytes]]:
    """Which of these (packet id, digest) deliveries of this session have a receipt."""
    if not deliveries:
        return set()
    ids, digests = zip(*deliveries, strict=True)
    rows = cur.execute(STORED, (client_id, list(ids), list(digests))).fetchall()
    return {(packet_id, bytes(digest)) for packet_id, digest in rows}


def record(
    cur: psycopg.Cursor[Any], client_id: str, deliveries: Iterable[tuple[int, bytes, datetime]]
) -> None:
    cur.executemany(RECORD, [(client_id, *d) for d in deliveries])


def prune(cur: psycopg.Cursor[Any], now: datetime) -> int:
    cur.execute(PRUNE, (now - KEEP,))
    return cur.rowcount
