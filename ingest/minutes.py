"""Per-minute ingest counts for the live board (migration 029, table ingest_minutes).

Pure accumulation, no I/O: ingest/store.py counts each batch's stored readings and dead
letters here and upserts the result in the batch's own transaction (urbanwatch/queries/
ingest_minutes.py), one row per (arrival minute, kind) the batch touched.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

# Upper bounds (seconds) of the lag histogram's buckets; one more bucket counts the lags
# above the last. The same as the database's ingest_lag_bounds() (migration 029).
LAG_BOUNDS_S: tuple[float, ...] = (
    0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip
BUCKETS = len(LAG_BOUNDS_S) + 1
# A reading measured more than this before it arrived is late (a device's backlog sent on
# reconnect, a gateway's buffer): the buckets above it.
LATE_S = 300
_LATE_FROM = LAG_BOUNDS_S.index(LATE_S) + 1
DEAD_LETTERS = ""  # the kind of the rows counting dead letters (they may name no kind)


class Minute:
    """What was stored in one arrival minute for one kind."""

    __slots__ = ("dead_letters", "hist", "lag_max", "readings")

    def __init__(self) -> None:
        self.readings = 0
        self.dead_letters = 0
        self.hist = [0] * BUCKETS
        self.lag_max: float | None = None

    @property
    def late(self) -> int:
        return sum(self.hist[_LATE_FROM:])

    def merge(self, other: Minute) -> None:
        self.readings += other.readings
        self.dead_letters += other.dead_letters
        self.hist = [a + b for a, b in zip(self.hist, other.hist, strict=True)]
        if other.lag_max is not None and (self.lag_max is None or other.lag_max > self.lag_max):
            self.lag_max = other.lag_max

    def as_tuple(self) -> tuple[int, int, int, list[int], float | None]:
        return self.readings, self.late, self.dead_letters, self.hist, self.lag_max


MinuteKey = tuple[datetime, str]  # (arrival minute, kind)
Minutes = dict[MinuteKey, Minute]


def bucket(lag_s: float) -> int:
    """The histogram bucket of a lag: the first whose bound is >= it."""
    return bisect_left(LAG_BOUNDS_S, lag_s)


def add_readings(minutes: Minutes, kind: str, rows: Iterable[Sequence[Any]]) -> None:
    """Count reading rows (ts, device_id, received_at, …) of one kind into `minutes`, by
    arrival minute. The hot path: per row, one subtraction and a bisect; the minute is
    recomputed only when received_at changes (a message's readings share it, and so do
    the messages of one socket read)."""
    last: datetime | None = None
    m = Minute()
    hist = m.hist
    bounds = LAG_BOUNDS_S
    for row in rows:
        received = row[2]
        if received is not last:
            last = received
            key = (received.replace(second=0, microsecond=0), kind)
            m = minutes.get(key) or minutes.setdefault(key, Minute())
            hist = m.hist
        lag = (received - row[0]).total_seconds()
        hist[bisect_left(bounds, lag)] += 1
        m.readings += 1
        if m.lag_max is None or lag > m.lag_max:
            m.lag_max = lag


def add_dead_letters(minutes: Minutes, received: Iterable[datetime]) -> None:
    """Count dead letters by the minute their message arrived (kind DEAD_LETTERS)."""
    for at in received:
        key = (at.replace(second=0, microsecond=0), DEAD_LETTERS)
        m = minutes.get(key) or minutes.setdefault(key, Minute())
        m.dead_letters += 1


def merged(*parts: Minutes) -> Minutes:
    """The sum of several accumulations (new Minute objects; the parts are left alone)."""
    out: Minutes = {}
    for part in parts:
        for key, m in part.items():
            out.setdefault(key, Minute()).merge(m)
    return out
