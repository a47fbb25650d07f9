"""`device_status`: heartbeats, online/offline and last wills from `…/status` topics."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple

import psycopg
from psycopg.types.json import Jsonb

INSERT_STATUS = """INSERT INTO device_status (device_id, ts, status, received_at, detail)
                   VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"""


class StatusRow(NamedTuple):
    device_id: str
    ts: datetime
    status: str
    received_at: datetime
    detail: dict[str, Any] | None


def insert_status(cur: psycopg.Cursor[Any], rows: Iterable[StatusRow]) -> None:
    cur.executemany(
        INSERT_STATUS,
        [(*r[:4], Jsonb(r.detail) if r.detail else None) for r in rows],
    )
