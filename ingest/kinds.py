"""Which kind each device is: a cache of the registry on its own connection.

Its own connection because the writer's commit of batch N overlaps the parsing of batch
N+1 (ingest/worker.py): a registry query on the writing connection would run inside, and
commit, the other thread's open transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import psycopg

from urbanwatch import db
from urbanwatch.queries import devices


class KindCache:
    """device id -> kind, reloaded after `ttl_s`; reconnects on demand after a failure."""

    def __init__(self, url: str, ttl_s: float = 60.0):
        self.ttl_s = ttl_s
        self.kinds: dict[str, str] = {}
        self._db = db.LazyConnection(url, name="urbanwatch-ingest")
        self._loaded = float("-inf")
        self._misses: dict[str, float] = {}  # device id -> when it was last looked up in vain

    def _connection(self) -> psycopg.Connection:
        return self._db.get()

    def reset(self) -> None:
        """Drop the connection after an error; the next call reconnects."""
        self._db.reset()

    close = reset

    def refresh(self, now: float | None = None) -> None:
        """Reload device -> kind when the cache is older than its TTL."""
        now = time.monotonic() if now is None else now
        if now - self._loaded < self.ttl_s:
            return
        conn = self._connection()
        self.kinds = devices.device_kinds(conn)
        conn.commit()
        self._loaded = now
        self._misses.clear()

    def look_up(self, device_ids: Iterable[str], now: float | None = None) -> bool:
        """Ask the registry about ids the cache lacks (new devices since the last reload).
        Ids asked about in vain are not asked again until the TTL passes. True if any found."""
        now = time.monotonic() if now is None else now
        wanted = [
            d
            for d in set(device_ids)
            if d not in self.kinds and now - self._misses.get(d, float("-inf")) >= self.ttl_s
        ]
        if not wanted:
            return False
        conn = self._connection()
        found = devices.device_kinds(conn, wanted)
        conn.commit()
        self.kinds.update(found)
        for d in wanted:
            if d not in found:
                self._misses[d] = now
        return bool(found)
