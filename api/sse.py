"""Server-Sent Events of alert_events (issue #10 "Surfaces", docs/api-alerts.md).

Each event goes out as `id: <alert_events.id>`, `event: <opened|acknowledged|…>` and the row
as JSON `data`. A client that reconnects sends the last id it saw (the `Last-Event-ID` header
browsers send by themselves, or `?last_event_id=`) and gets every event after it; a new
client starts at the newest event. The stream polls alert_events by id every POLL_S. An id
can commit after a higher one (two writers): a gap in the ids is held back up to GAP_WAIT_S
for the missing ids to commit, then skipped (a rolled-back insert leaves a gap for good).
A crew's stream reads every id too (so the other units' events are not gaps) and sends only
the events of alerts in its scope (queries.alert_work.Scope), judged when they are read.

When the database goes away (a restart, a dropped connection, `pg_terminate_backend`) the
stream stays open: each failed read sends an `: error …` comment and is retried with backoff
(POLL_S doubling to RETRY_MAX_S) on a fresh connection, a read that hangs still lets
keep-alives through, and once the database answers the stream carries on from its cursor —
nothing lost, nothing sent twice.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from urbanwatch.queries import alert_work as q

POLL_S = 0.5  # latency of the stream vs. one indexed query per client per poll
GAP_WAIT_S = 2.0  # longer than the engine's and API's transactions take to commit
KEEPALIVE_S = 15.0  # a comment line so proxies keep the connection open
STREAM_MAX_S = 3600.0  # then the server ends the stream; the client resumes by its last id
RETRY_MS = 2000  # the reconnect delay EventSource clients use
RETRY_MAX_S = 2.0  # the longest wait between reads while the database is away
CHECKOUT_S = 5.0  # a read waits this long for a pooled connection (a database that is down)
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
    try:
        with pool.connection(timeout=CHECKOUT_S) as conn:
            return q.events_after(conn, after, visible_to=scope)
    except psycopg.OperationalError:
        # The pool's idle connections most likely died with this one (a server restart, a
        # terminated backend): drop them now rather than fail once per dead connection.
        pool.check()
        raise


def error_comment(exc: Exception, retry_s: float) -> str:
    """One comment line (an exception's message may hold line breaks: only its type)."""
    return (
        f": error 数据库暂不可用,{retry_s:g} 秒后重试 database unavailable "
        f"({type(exc).__name__}), retrying in {retry_s:g} s\n\n"
    )


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
    backoff = POLL_S
    yield f"retry: {RETRY_MS}\n\n"
    while clock() - started < STREAM_MAX_S:
        if await disconnected():  # type: ignore[misc]
            return
        fetch = asyncio.ensure_future(run_in_threadpool(_fetch, pool, cursor.last_id, scope))
        while not (await asyncio.wait({fetch}, timeout=KEEPALIVE_S))[0]:
            quiet_since = clock()  # a read that hangs (a database that is going down)
            yield ": keepalive\n\n"
            if await disconnected():  # type: ignore[misc]
                return
        try:
            rows = fetch.result()
        except psycopg.Error as exc:  # the database went away: say so, retry, keep the cursor
            cursor.gap_since = None  # a gap's writers get their GAP_WAIT_S once it is back
            quiet_since = clock()
            yield error_comment(exc, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RETRY_MAX_S)
            continue
        backoff = POLL_S
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
