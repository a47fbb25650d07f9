"""`dead_letters`: messages ingest could not store, byte for byte, with the reason."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import psycopg

COPY_DEAD_LETTERS = (
    "COPY dead_letters (received_at, topic, payload, element_index, device_id, reason_code, "
    "reason) FROM STDIN (FORMAT BINARY)"
)
_TYPES = ["timestamptz", "text", "bytea", "int4", "text", "text", "text"]


class DeadLetterRow(NamedTuple):
    received_at: datetime
    topic: str
    payload: bytes
    element_index: int | None
    device_id: str | None
    reason_code: str
    reason: str


def copy_dead_letters(cur: psycopg.Cursor[Any], rows: Iterable[DeadLetterRow]) -> None:
    with cur.copy(COPY_DEAD_LETTERS) as copy:
        copy.set_types(_TYPES)
        for row in rows:
            copy.write_row(row)
