"""Server-Sent Events of alert_events (issue #10 "Surfaces", docs/api-alerts.md).

Each event goes out as `id: <alert_events.id>`, `event: <opened|acknowledged|…>` and the row
as JSON `data`. A client that reconnects sends the last id it saw (the `Last-Event-ID` header
browsers send by themselves, or `?last_event_id=`) and gets every event after it; a new
client starts at the newest event. The stream polls alert_events by id every POLL_S. An id
can commit after a higher one (two writers): a gap in the ids is held back up to GAP_WAIT_S
for the missing ids to commit, then skipped (a rolled-back insert leaves a gap for good).
A crew's stream reads every id too (so the other units' events are not gaps) and sends only
the events of alerts in its scope (queries.alert_work.Scope), judged when they are read.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from urbanwatch.queries import alert_work as q

POLL_S = 0.5  # latency of the stream vs. one indexed query per client per poll
GAP_WAIT_S = 2.0  # longer than the engine's and API's transactions take to commit
KEEPALIVE_S = 15.0  # a comment line so proxies keep the connection open
STREAM_MAX_S = 3600.0  # then the server ends the stream; the client resumes by its last id
RETRY_MS = 2000  # the reconnect delay EventSource clients use
Row = TypeVar("Row", bound=q.EventRow)


def format_event(row: q.EventRow) -> str:
    data = json.dumps(row.model_dump(mode="json"), ensure_ascii=False, separators=(",", ":"))
    return f"id: {row.id}\nevent: {row.event}\ndata: {data}\n\n"


class Cursor:
    """The ids already sent, and when a gap above the cursor was first seen."""

    def __init__(self, last_id: int):
        self.last_id = last_id
        self.gap_since: float | None = None

    def take(self, rows: list[Row], now: float) -> list[Row]:
        """The rows that may go out now, in id order: up to the first gap, or past it once
        it has lasted GAP_WAIT_S."""
        out: list[Row] = []
        for row in rows:
            if row.id != self.last_id + 1:
                if self.gap_since is None:
                    self.gap_since = now
                if now - self.gap_since < GAP_WAIT_S:
                    break
            self.gap_since = None
            out.append(row)
            self.last_id = row.id
        return out


def _fetch(pool: ConnectionPool, after: int, scope: q.Scope | None) -> list[q.StreamEvent]:
    with pool.connection() as conn:
        return q.events_after(conn, after, visible_to=scope)


async def alert_events(
    pool: ConnectionPool,
    last_id: int,
    disconnected: Callable[[], object],
    scope: q.Scope | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> AsyncIterator[str]:
    """The stream's text: events after `last_id` (those in `scope`; all without one), until
    the client leaves or STREAM_MAX_S passes."""
    cursor = Cursor(last_id)
    started = quiet_since = clock()
    yield f"retry: {RETRY_MS}\n\n"
    while clock() - started < STREAM_MAX_S:
        if await disconnected():  # type: ignore[misc]
            return
        rows = await run_in_threadpool(_fetch, pool, cursor.last_id, scope)
        taken = cursor.take(rows, clock())
        ready = [r for r in taken if r.visible]
        for row in ready:
            yield format_event(row)
        now = clock()
        if ready:
            quiet_since = now
        elif now - quiet_since >= KEEPALIVE_S:
            quiet_since = now
            yield ": keepalive\n\n"
        if len(rows) < q.STREAM_BATCH or len(taken) < len(rows):  # else more are waiting
            await asyncio.sleep(POLL_S)
