"""Which devices and which MQTT session an engine process owns.

`ALERTS_PARTITIONS=N` engines split the fleet by a hash of the device id (alerts/engine.py);
each process claims a free slot 0…N−1 with a PostgreSQL advisory lock held on a connection
of its own for its life, so two processes never evaluate the same devices. The client id
is `urbanwatch-alerts-<deployment>-<slot>of<N>`, where the deployment digests the topic
prefix and the database (as ingest's does): a restarted engine gets its session and the
messages queued meanwhile back, and two deployments on one broker never collide.
"""

from __future__ import annotations

import hashlib
import time

import psycopg
from psycopg.conninfo import conninfo_to_dict

from urbanwatch import db

ID_PREFIX = "urbanwatch-alerts"
CLAIM_RETRY_S = 0.5


class ClaimRefused(Exception):
    pass


def deployment_digest(prefix: str, database_url: str) -> str:
    p = conninfo_to_dict(database_url)
    key = f"{prefix}|{p.get('host', '')}|{p.get('port', 5432)}|{p.get('dbname', '')}"
    return hashlib.blake2b(key.encode(), digest_size=4).hexdigest()


def _lock_key(name: str) -> int:
    digest = hashlib.blake2b(f"{ID_PREFIX}|{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class Claim:
    """Holds the lock of one partition slot; `slot` and `client_id` once acquired."""

    def __init__(self, database_url: str, prefix: str, partitions: int):
        self.database_url = database_url
        self.deployment = deployment_digest(prefix, database_url)
        self.partitions = partitions
        self.slot = -1
        self.client_id = ""
        self._conn: psycopg.Connection | None = None

    def acquire(self, wait_s: float, slot: int | None = None) -> tuple[int, str]:
        deadline = time.monotonic() + wait_s
        self._conn = db.connect(self.database_url, autocommit=True, name=ID_PREFIX + "-claim")
        self._conn.execute(
            "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
            "SET tcp_keepalives_count = 3"
        )
        slots = [slot] if slot is not None else list(range(self.partitions))
        while True:
            for candidate in slots:
                name = f"{self.deployment}/{candidate}of{self.partitions}"
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (_lock_key(name),)
                ).fetchone()
                if row == (True,):
                    self.slot = candidate
                    self.client_id = f"{ID_PREFIX}-{self.deployment}-{candidate}of{self.partitions}"
                    return self.slot, self.client_id
            if time.monotonic() >= deadline:
                self.release()
                raise ClaimRefused(
                    f"every engine slot of {self.partitions} is taken for this deployment "
                    "(topic prefix and database): raise ALERTS_PARTITIONS to add engines"
                )
            time.sleep(CLAIM_RETRY_S)

    def release(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
