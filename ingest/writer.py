"""The writer thread: collect a batch from the inbox, parse it, commit it, then acknowledge.

At most one batch is with the committer thread while the next is parsed, so the database's
half of the work (COPY, commit) overlaps the Python half instead of following it. Nothing is
acknowledged before it is committed (as readings, status or a dead letter), so a crash or a
database outage loses nothing: the broker redelivers what was not acknowledged, the
(device_id, ts) key drops repeated readings and delivery receipts drop repeated dead letters
and status rows. When the database refuses a batch for its content, each message is written
alone, and a message's readings one by one: only what the database refuses becomes a
`db_rejected` dead letter, naming the column.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

import psycopg

from ingest.inbox import Inbox
from ingest.parse import DeadLetter, Limits, Parsed, Registry, parse_message
from ingest.registry import RegistryCache
from ingest.stats import Stats
from ingest.store import Receipt, Store, WriteResult, total
from urbanwatch.retry import Backoff, first_line, retry_database

logger = logging.getLogger(__name__)

RECEIPT_PRUNE_INTERVAL_S = 3600
_COLUMN = re.compile(r"column (\w+)")


class Incoming(NamedTuple):
    topic: str
    payload: bytes
    mid: int
    qos: int
    dup: bool  # MQTT's DUP flag: the broker sent this message before (a redelivery)
    received_at: datetime


class Acker(Protocol):
    def ack_many(self, mids: list[int]) -> None: ...


def _weight(message: Incoming) -> int:
    """Readings in a message, roughly: a gateway batch counts its elements (exact at parse)."""
    return message.payload.count(b'"device_id"') or 1


def digest(message: Incoming) -> bytes:
    return hashlib.blake2b(
        message.topic.encode() + b"\x00" + message.payload, digest_size=16
    ).digest()


class Writer:
    def __init__(
        self,
        *,
        inbox: Inbox[Incoming],
        store: Store,
        registry: RegistryCache,
        limits: Limits,
        stats: Stats,
        acker: Acker,
        batch_size: int,
        flush_interval_s: float,
        stats_interval_s: float,
        backoff: Backoff,
        stopping: threading.Event,
        on_tick: Callable[[], None] = lambda: None,
    ):
        self.inbox, self.store, self.registry, self.limits = inbox, store, registry, limits
        self.stats, self.acker = stats, acker
        self.batch_size, self.flush_interval_s = batch_size, flush_interval_s
        self.stats_interval_s, self.backoff, self.stopping = stats_interval_s, backoff, stopping
        self.on_tick = on_tick  # called once per loop: the worker's periodic checks
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="ingest-committer")

    def run(self) -> None:
        next_prune = time.monotonic()
        in_flight: Future[None] | None = None  # the batch the committer holds, if any
        try:
            while not self.stopping.is_set() or len(self.inbox):
                batch = self.inbox.take(self.batch_size, self.flush_interval_s, _weight)
                parsed = self._parse_retrying(batch) if batch else None
                if parsed is not None:
                    if in_flight is not None:
                        in_flight.result()  # one batch in flight; its exceptions surface here
                    in_flight = self._committer.submit(self._commit, batch, *parsed)
                if in_flight is not None and in_flight.done():
                    in_flight.result()  # the committer's error now, not at the next batch
                    in_flight = None
                now = time.monotonic()
                self.stats.maybe_log(now, len(self.inbox), self.stats_interval_s)
                if now >= next_prune:
                    next_prune = now + RECEIPT_PRUNE_INTERVAL_S
                    if in_flight is not None:
                        in_flight.result()
                    in_flight = self._committer.submit(self._prune_receipts)
                self.on_tick()
            if in_flight is not None:
                in_flight.result()
        finally:
            self._committer.shutdown(wait=False, cancel_futures=True)

    # --- parse ------------------------------------------------------------------------

    def _parse_retrying(self, batch: list[Incoming]) -> tuple[Parsed, list[Receipt]] | None:
        """Parse (the registry cache may need the database); None if it is unavailable
        while stopping: the batch then stays unacknowledged."""
        return retry_database(
            lambda: self._parse(batch),
            reset=self.registry.reset,
            stopping=self.stopping,
            backoff=self.backoff,
            holding=f"{len(batch)} message(s), unacknowledged until stored",
        )

    def _parse(self, batch: list[Incoming]) -> tuple[Parsed, list[Receipt]]:
        """One Parsed for the whole batch (a message's own is rebuilt only to isolate it)."""
        self.registry.refresh()
        parsed = parse_batch(batch, self.registry.registry, self.limits)
        unknown = {
            d.device_id for d in parsed[0].dead if d.reason_code == "unknown_device" and d.device_id
        }
        if unknown and self.registry.look_up(unknown):  # registered since the last reload
            parsed = parse_batch(batch, self.registry.registry, self.limits)
        return parsed

    # --- commit (committer thread) -----------------------------------------------------

    def _commit(self, batch: list[Incoming], parsed: Parsed, receipts: list[Receipt]) -> None:
        """Store the batch, retrying while the database is unreachable, then acknowledge."""
        result = retry_database(
            lambda: self._store(batch, parsed, receipts),
            reset=self.store.reset,
            stopping=self.stopping,
            backoff=self.backoff,
            holding=f"{len(batch)} message(s), unacknowledged until stored",
        )
        if result is None:
            return
        self.acker.ack_many([m.mid for m in batch if m.qos == 1])  # QoS 2 is not subscribed
        self.stats.record(len(batch), result, batch[0].received_at, parsed.ignored)

    def _store(self, batch: list[Incoming], parsed: Parsed, receipts: list[Receipt]) -> WriteResult:
        try:
            return self.store.write(parsed, receipts)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:  # the data, not the connection: find the culprit
            logger.warning(
                "batch refused by the database (%s); writing message by message", first_line(exc)
            )
            return total(self._write_alone(m) for m in batch)

    def _write_alone(self, m: Incoming) -> WriteResult:
        """One message in its own transaction (parsed again, with the registry as the batch
        saw it); if the database refuses it, its readings one by one."""
        parsed, receipts = parse_batch([m], self.registry.registry, self.limits)
        try:
            return self.store.write(parsed, receipts)
        except psycopg.OperationalError:
            raise
        except psycopg.Error:
            pass
        results, refused = [], []
        for row in parsed.rows:
            try:
                results.append(self.store.write(Parsed(rows=[row])))
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                where = "" if row.element is None else f"[{row.element}]."
                device_id = row.values[1]
                refused.append(
                    DeadLetter.of(
                        m.topic,
                        m.payload,
                        m.received_at,
                        "db_rejected",
                        f"{where}{_refusal(exc)}",
                        device_id,
                        row.element,
                    )
                )
        rest = Parsed(dead=parsed.dead + refused, status=parsed.status)
        receipt = Receipt(m.mid, digest(m), m.dup, m.received_at, range(len(rest.dead)))
        receipt.status = [i for i, e in enumerate(rest.status) if not e.own_ts]
        try:
            results.append(self.store.write(rest, [receipt] if m.qos else []))
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:  # not even its dead letters: keep the bytes, say why
            whole = DeadLetter.of(m.topic, m.payload, m.received_at, "db_rejected", _refusal(exc))
            receipt = Receipt(m.mid, digest(m), m.dup, m.received_at, range(1))
            results.append(self.store.write(Parsed(dead=[whole]), [receipt] if m.qos else []))
        return total(results)

    def _prune_receipts(self) -> None:
        """Hourly: old delivery receipts and old per-minute counts (ingest_minutes)."""
        try:
            now = datetime.now(UTC)
            pruned = self.store.prune_receipts(now)
            if pruned:
                logger.debug("pruned %d old delivery receipt(s)", pruned)
            pruned = self.store.prune_minutes(now)
            if pruned:
                logger.debug("pruned %d old per-minute count(s)", pruned)
        except psycopg.Error as exc:
            self.store.reset()
            logger.warning("could not prune delivery receipts (%s); will retry", first_line(exc))


def _refusal(exc: psycopg.Error) -> str:
    """`<column>: database refused it: <message>`, naming the column when PostgreSQL does."""
    context = getattr(exc.diag, "context", None) or ""
    column = _COLUMN.search(context) or _COLUMN.search(str(exc))
    where = f"{column.group(1)}: " if column else ""
    return f"{where}the database refused it: {first_line(exc)}"


def parse_batch(
    batch: list[Incoming], registry: Registry, limits: Limits
) -> tuple[Parsed, list[Receipt]]:
    """Parse every message into one Parsed, and a receipt for each delivery that produced
    dead letters or status events without their own ts (what a redelivery could repeat)."""
    out = Parsed()
    receipts = []
    dead, status = out.dead, out.status
    for m in batch:
        d0, s0 = len(dead), len(status)
        parse_message(m.topic, m.payload, m.received_at, registry, limits, out)
        if m.qos and (len(dead) > d0 or len(status) > s0):
            ts_less = [i for i in range(s0, len(status)) if not status[i].own_ts]
            if len(dead) > d0 or ts_less:
                receipts.append(
                    Receipt(m.mid, digest(m), m.dup, m.received_at, range(d0, len(dead)), ts_less)
                )
    return out, receipts
