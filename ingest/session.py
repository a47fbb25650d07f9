"""Which MQTT session a worker owns: a client id no other worker can use at the same time.

A worker's persistent session (and the messages the broker queued for it while it was down)
comes back only if it reconnects with the same client id; two processes with one id take the
session from each other forever, and each then receives, stores and acknowledges what the
other subscribed to. So the id is claimed, not configured blindly:

* the default id is `urbanwatch-ingest-<deployment>-<slot>`, where the deployment is a digest
  of the topic prefix and the database it writes to: two deployments on one host and broker
  never share an id, and a restarted worker gets the same one back;
* the claim is a PostgreSQL advisory lock named after the id, held on a connection of its own
  for the worker's life (an explicit --client-id is claimed the same way), plus a lock on the
  deployment: exclusive without a share group (the default: one worker with a plain
  subscription takes every message, so a second worker would store everything twice and is
  refused), shared with INGEST_SHARE_GROUP (workers take slots 0, 1, 2…);
* the subscriptions a session holds are recorded (`ingest_sessions`), so a resumed session
  drops filters the worker no longer wants (a changed prefix or share group).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time

import psycopg
from psycopg.conninfo import conninfo_to_dict

from urbanwatch import db

logger = logging.getLogger(__name__)

MAX_SLOTS = 64
CLAIM_WAIT_S = 15.0  # > the ~11 s the server takes to drop a dead worker's connection
CLAIM_RETRY_S = 0.5
ID_PREFIX = "urbanwatch-ingest"

GET_FILTERS = "SELECT filters FROM ingest_sessions WHERE client_id = %s"
SET_FILTERS = """INSERT INTO ingest_sessions (client_id, filters) VALUES (%s, %s)
                 ON CONFLICT (client_id)
                 DO UPDATE SET filters = excluded.filters, updated_at = now()"""


class ClaimRefused(Exception):
    """The client id is held by another running worker."""


def deployment_digest(prefix: str, database_url: str) -> str:
    """Eight hex digits naming (topic prefix, database server and name)."""
    p = conninfo_to_dict(database_url)
    key = f"{prefix}|{p.get('host', '')}|{p.get('port', 5432)}|{p.get('dbname', '')}"
    return hashlib.blake2b(key.encode(), digest_size=4).hexdigest()


def lock_key(client_id: str) -> int:
    """A signed 64-bit advisory-lock key for a client id."""
    digest = hashlib.blake2b(f"{ID_PREFIX}|{client_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class SessionClaim:
    """Holds the advisory lock of one client id on a connection of its own."""

    def __init__(self, database_url: str, prefix: str, share_group: str | None):
        self.database_url = database_url
        self.deployment = deployment_digest(prefix, database_url)
        self.share_group = share_group
        self.client_id: str | None = None
        self._conn: psycopg.Connection | None = None

    def candidates(self, explicit: str | None) -> list[str]:
        if explicit:
            return [explicit]
        slots = range(MAX_SLOTS) if self.share_group else range(1)
        return [f"{ID_PREFIX}-{self.deployment}-{slot}" for slot in slots]

    def acquire(self, explicit: str | None = None, wait_s: float = CLAIM_WAIT_S) -> str:
        """Claim a client id; raises ClaimRefused when none is free after `wait_s` (what a
        crashed worker's connection takes to be closed by the server)."""
        deadline = time.monotonic() + wait_s
        while True:
            self._connect()
            refusal = self._try_claim(explicit)
            if refusal is None:
                assert self.client_id is not None
                return self.client_id
            self.release()
            if time.monotonic() >= deadline:
                raise ClaimRefused(refusal)
            logger.info("%s; waiting up to %.0f s in case it was a crashed worker", refusal, wait_s)
            time.sleep(CLAIM_RETRY_S)
            wait_s = 0  # said once

    def _connect(self) -> None:
        self._conn = db.connect(self.database_url, autocommit=True, name="urbanwatch-ingest-claim")
        # The server holds the locks until it notices the connection is gone: after a crash
        # of the worker's host that takes TCP keepalive, 2 h by default; make it ~11 s.
        self._conn.execute(
            "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; "
            "SET tcp_keepalives_count = 3"
        )

    def _try_claim(self, explicit: str | None) -> str | None:
        """Take the deployment's lock and a client id's; None when done, else why not."""
        assert self._conn is not None
        mode = "pg_try_advisory_lock_shared" if self.share_group else "pg_try_advisory_lock"
        row = self._conn.execute(
            f"SELECT {mode}(%s)", (lock_key(f"deployment/{self.deployment}"),)
        ).fetchone()
        if row != (True,):
            if self.share_group:
                return (
                    "an ingest worker without a share group is running for this deployment "
                    "(topic prefix and database); stop it before starting a shared group"
                )
            return (
                "another ingest worker is running for this deployment (topic prefix and "
                "database); one worker takes every message unless INGEST_SHARE_GROUP is set "
                "(docs/scaling.md)"
            )
        for client_id in self.candidates(explicit):
            taken = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (lock_key(client_id),))
            if taken.fetchone() == (True,):
                self.client_id = client_id
                return None
        if explicit:
            return f"another ingest worker is running with client id {explicit!r}"
        return f"all {MAX_SLOTS} worker slots of this deployment are taken"

    def still_held(self) -> bool:
        """Check the claim; after a lost connection (a database outage) take it again. False
        when another worker holds it now; True while the database is unreachable (no other
        worker can claim it then either)."""
        if self.client_id is None:
            return False
        try:
            if self._conn is None or self._conn.closed:
                self._connect()
                assert self._conn is not None
                mode = "pg_try_advisory_lock_shared" if self.share_group else "pg_try_advisory_lock"
                held = self._conn.execute(
                    f"SELECT {mode}(%s), pg_try_advisory_lock(%s)",
                    (lock_key(f"deployment/{self.deployment}"), lock_key(self.client_id)),
                ).fetchone()
                return held == (True, True)
            self._conn.execute("SELECT 1")
            return True
        except psycopg.OperationalError:
            self._drop()
            return True

    def filters_before(self) -> list[str]:
        """The subscriptions this client id's session was last given."""
        assert self._conn is not None and self.client_id is not None
        row = self._conn.execute(GET_FILTERS, (self.client_id,)).fetchone()
        return list(row[0]) if row else []

    def record_filters(self, filters: list[str]) -> None:
        assert self._conn is not None and self.client_id is not None
        self._conn.execute(SET_FILTERS, (self.client_id, filters))

    def release(self) -> None:
        self._drop()  # closing the connection releases its advisory locks

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
        self._conn = None
