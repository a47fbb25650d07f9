"""The registry as ingest needs it: each device's kind and the gateway it reports through,
cached on a connection of its own.

Its own connection because the writer's commit of batch N overlaps the parsing of batch
N+1 (ingest/writer.py): a registry query on the writing connection would run inside, and
commit, the other thread's open transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import psycopg

from urbanwatch import db
from urbanwatch.queries import devices


class Registry(NamedTuple):
    """A snapshot the pure parser checks addresses against."""

    kinds: Mapping[str, str]  # device id -> kind
    gateways: Mapping[str, str]  # device id -> the gateway it is registered behind


class RegistryCache:
    """The registry, reloaded after `ttl_s`; reconnects on demand after a failure."""

    def __init__(self, url: str, ttl_s: float = 60.0):
        self.ttl_s = ttl_s
        self.registry = Registry({}, {})
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
        """Reload the registry when the cache is older than its TTL."""
        now = time.monotonic() if now is None else now
        if now - self._loaded < self.ttl_s:
            return
        conn = self._connection()
        rows = devices.device_addresses(conn)
        conn.commit()
        self.registry = Registry(
            {d: kind for d, kind, _ in rows}, {d: gw for d, _, gw in rows if gw is not None}
        )
        self._loaded = now
        self._misses.clear()

    def look_up(self, device_ids: Iterable[str], now: float | None = None) -> bool:
        """Ask the registry about ids the cache lacks (new devices since the last reload).
        Ids asked about in vain are not asked again until the TTL passes. True if any found."""
        now = time.monotonic() if now is None else now
        kinds = self.registry.kinds
        wanted = [
            d
            for d in set(device_ids)
            if d not in kinds and now - self._misses.get(d, float("-inf")) >= self.ttl_s
        ]
        if not wanted:
            return False
        conn = self._connection()
        found = devices.device_addresses(conn, wanted)
        conn.commit()
        self.registry.kinds.update({d: kind for d, kind, _ in found})  # type: ignore[attr-defined]
        self.registry.gateways.update(  # type: ignore[attr-defined]
            {d: gw for d, _, gw in found if gw is not None}
        )
        for d in set(wanted) - {d for d, _, _ in found}:
            self._misses[d] = now
        return bool(found)
