"""`ingest_minutes` (migration 029): ingest's counts per arrival minute, kind and worker.

Ingest adds a batch's counts in the batch's own transaction (ingest/store.py), so the rows
hold exactly what was committed. The live board's ingest rate and lag panels read them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

# Kept for the live board's ranges (six hours of raw detail; rollups beyond) with room to
# look back at an incident: two weeks.
KEEP = timedelta(days=14)

_ROW = "(%s, %s, %s, %s, %s, %s, %s::integer[], %s)"
_UPSERT = """INSERT INTO ingest_minutes AS m
    (minute, kind, worker, readings, late, dead_letters, lag_hist, lag_max)
VALUES {rows}
ON CONFLICT (minute, kind, worker) DO UPDATE SET
    readings = m.readings + excluded.readings,
    late = m.late + excluded.late,
    dead_letters = m.dead_letters + excluded.dead_letters,
    lag_hist = ARRAY(SELECT a + b FROM unnest(m.lag_hist, excluded.lag_hist)
                     WITH ORDINALITY AS h (a, b, i) ORDER BY i),
    lag_max = greatest(m.lag_max, excluded.lag_max),
    updated_at = now()"""
PRUNE = "DELETE FROM ingest_minutes WHERE minute < %s"


def add(
    cur: psycopg.Cursor[Any],
    worker: str,
    minutes: Sequence[tuple[datetime, str, int, int, int, list[int], float | None]],
) -> None:
    """One statement adding (minute, kind, readings, late, dead_letters, lag_hist, lag_max)
    rows to this worker's counts. Each (minute, kind) must appear once; sorted, so two
    transactions touching the same rows take their locks in the same order."""
    if not minutes:
        return
    ordered = sorted(minutes, key=lambda r: (r[0], r[1]))
    statement = _UPSERT.format(rows=", ".join([_ROW] * len(ordered)))
    params: list[Any] = []
    for minute, kind, readings, late, dead, hist, lag_max in ordered:
        params += [minute, kind, worker, readings, late, dead, hist, lag_max]
    cur.execute(statement.encode(), params)


def prune(cur: psycopg.Cursor[Any], now: datetime) -> int:
    cur.execute(PRUNE, (now - KEEP,))
    return cur.rowcount
