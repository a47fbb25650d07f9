"""The notifier: alert events -> outbox (routing), acknowledge, on-site and resolve deadlines
-> 'escalated' events, outbox -> channels (delivery with retries, rate limits and digests).

Durability: the trigger in 012_notify.sql queues every alert event in `notify_inbox` in the
transaction that wrote it; routing turns it into outbox rows and deletes it in one
transaction. A send is leased (`lease_until`) and logged as an attempt before it leaves, and
marked sent after: a notifier killed in between leaves the row to be sent again, with the
same idempotency key, once the lease runs out. Several notifiers may run at once (SKIP LOCKED).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Mapping

import psycopg

from alerts.notify.channels import DIGEST_TYPES, DeliveryFailed, Sender
from alerts.notify.messages import Notice
from alerts.notify.planner import plan_event
from urbanwatch import db
from urbanwatch.errors import RuntimeProblem
from urbanwatch.queries import notify as q
from urbanwatch.queries import sla as q_sla
from urbanwatch.queries.windows import unmute_ended
from urbanwatch.retry import Backoff, first_line
from urbanwatch.routing.model import Channel, RouteFile
from urbanwatch.settings import Settings

logger = logging.getLogger("alerts.notify")
INBOX_BATCH = 500  # events routed per transaction
SINGLE_BATCH = 50  # webhook / MQTT rows leased at once (each sent and logged on its own)
PRUNE_EVERY_S = 3600  # how often old outbox rows are dropped (NOTIFY_KEEP_DAYS)
DIGEST_MAX = 1000  # events one digest may cover; the message counts them all


class Notifier:
    def __init__(self, settings: Settings, env: Mapping[str, str] | None = None):
        self.settings = settings
        self.env = os.environ if env is None else env
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.actor = "service:notify"
        self.conn = db.LazyConnection(settings.database_url, name="urbanwatch-notify")
        self.sender = Sender(settings, self.env)
        self._routes: RouteFile | None = None
        self._routes_load: int | None = None
        self._tuned: psycopg.Connection | None = None
        self._next_prune = 0.0

    def routes(self, conn: psycopg.Connection) -> RouteFile:
        """The loaded routing, re-read when a new file was loaded."""
        row = conn.execute("SELECT max(id) FROM notify_route_loads").fetchone()
        load = row[0] if row else None
        if self._routes is None or load != self._routes_load:
            routes = q.read_routes(conn)
            if routes is None:
                raise RuntimeProblem(
                    "no alert routes loaded: run `urbanwatch alerts routes load` (the shipped "
                    "defaults) or `... routes load FILE` first"
                )
            self._routes, self._routes_load = routes, load
        return self._routes

    def step(self) -> int:
        """One round: route, escalate, deliver what is due. Returns how much was done."""
        conn = self.conn.get()
        if conn is not self._tuned:
            # Safe without waiting for the WAL flush: a commit lost in a server crash only
            # repeats work (an inbox row routed again is absorbed by the unique idempotency
            # key; a send not marked sent is sent again and deduplicated by the receiver).
            conn.execute("SET synchronous_commit = off")
            conn.commit()
            self._tuned = conn
        if time.monotonic() >= self._next_prune:
            pruned = q.prune(conn, self.settings.notify_keep_days)
            conn.commit()
            self._next_prune = time.monotonic() + PRUNE_EVERY_S
            if pruned:
                logger.info(
                    "pruned %d outbox row(s) older than %g days",
                    pruned,
                    self.settings.notify_keep_days,
                )
        done = self.unmute(conn) + self.route_inbox(conn) + self.escalate(conn)
        for channel in q.channels_due(conn):
            conn.commit()
            done += self.deliver(conn, channel)
        conn.commit()
        return done

    def route_inbox(self, conn: psycopg.Connection) -> int:
        routes = self.routes(conn)
        events = q.take_inbox(conn, INBOX_BATCH)
        for ev in events:
            plan = plan_event(routes, ev, self.env)
            q.insert_outbox(conn, plan.rows)
            if plan.set_due:
                q.set_ack_due(conn, ev.alert_id, plan.ack_due_at, reset_level=True)
        if events:
            q.delete_inbox(conn, [e.event_id for e in events])
        conn.commit()
        return len(events)

    def unmute(self, conn: psycopg.Connection) -> int:
        """Alerts whose maintenance mute ended: un-suppressed, their 'unsuppressed' events
        routed in this same round (migration 022)."""
        n = unmute_ended(conn, self.actor)
        conn.commit()
        if n:
            logger.info("un-suppressed %d alert(s) whose mute ended", n)
        return n

    def escalate(self, conn: psycopg.Connection) -> int:
        n = q.escalate_overdue(conn, self.actor)
        conn.commit()
        if n:
            logger.info("escalated %d alert(s) past their acknowledge deadline", n)
        m = q_sla.escalate_deadlines(conn, self.actor)
        conn.commit()
        if m:
            logger.info("escalated %d alert deadline(s) past on site or resolve", m)
        return n + m

    def deliver(self, conn: psycopg.Connection, name: str) -> int:
        """Send what is due on one channel, within its rate limit: a rate-limited channel
        that can carry digests sends everything waiting as one message."""
        routes = self.routes(conn)
        channel = routes.channels.get(name)
        s = self.settings
        if channel is None:
            rows = q.claim_due(conn, name, DIGEST_MAX, s.notify_lease_s)
            q.skip_rows(conn, [r.id for r in rows], f"channel {name} is no longer in the routes")
            conn.commit()
            return len(rows)
        limit = channel.limit()
        room = SINGLE_BATCH
        if limit:
            recent = q.recent_sends(conn, name)
            # Evenly paced within the limit; after a digest, wait longer and gather more.
            gap = 60.0 / limit
            if recent.last_size > 1:
                gap = max(gap, s.notify_digest_interval_s)
            since = recent.since_last_s
            if recent.last_minute >= limit or (since is not None and since < gap):
                conn.rollback()
                return 0
            room = min(room, limit - recent.last_minute)
        digest = channel.type in DIGEST_TYPES
        rows = q.claim_due(conn, name, DIGEST_MAX if digest else room, s.notify_lease_s)
        quiet = [r.id for r in rows if r.suppressed]
        if quiet:
            q.skip_rows(conn, quiet, "alert suppressed (inhibited by its parent)")
        rows = [r for r in rows if not r.suppressed]
        conn.commit()  # leased: no other notifier takes these rows meanwhile
        for batch in [rows] if digest and rows else [[r] for r in rows]:
            attempt = q.start_attempt(conn, name, [r.id for r in batch], self.name)
            conn.commit()  # logged before it leaves (with the previous send's outcome)
            self._send(conn, channel, batch, attempt)
        conn.commit()
        return len(rows) + len(quiet)

    def _send(
        self, conn: psycopg.Connection, channel: Channel, batch: list[q.OutboxRow], attempt: int
    ) -> None:
        ids = [r.id for r in batch]
        s = self.settings
        try:
            code = self.sender.send(channel, [Notice.model_validate(r.message) for r in batch])
        except DeliveryFailed as exc:
            tries = max(r.attempts for r in batch) + 1
            retry = min(s.notify_retry_initial_s * 2 ** (tries - 1), s.notify_retry_max_s)
            q.finish_failed(
                conn, attempt, ids, exc.status_code, str(exc), retry, s.notify_give_up_h * 3600
            )
            logger.warning("%s: %s (retry in %.0f s)", batch[0].channel, exc, retry)
        else:
            q.finish_ok(conn, attempt, ids, code)

    def run(self, stop: threading.Event) -> None:
        """Rounds until `stop` is set; database outages are waited out with backoff."""
        backoff = Backoff(self.settings.notify_retry_initial_s, 30)
        while not stop.is_set():
            try:
                busy = self.step()
                backoff.reset()
            except psycopg.OperationalError as exc:
                self.conn.reset()
                delay = backoff.next()
                logger.warning(
                    "database unavailable (%s); retrying in %.0f s", first_line(exc), delay
                )
                stop.wait(delay)
                continue
            if not busy:
                stop.wait(self.settings.notify_poll_s)
        self.sender.close()
