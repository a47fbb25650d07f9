"""The ingest worker: MQTT 5 in, batched COPY out, acknowledgement only after commit.

Threads: paho's network thread puts each message on `inbox`; the writer thread collects and
parses a batch and hands it to the committer thread, which writes, commits and then
acknowledges. At most one batch is with the committer while the next is parsed, so the
database's half of the work (COPY, commit) overlaps the Python half instead of following it.
Nothing is acknowledged before it is committed (as readings or as a dead letter), so a crash
or a database outage loses nothing: the broker redelivers what was not acknowledged, and the
(device_id, ts) key drops repeats. The broker sends at most Receive Maximum unacknowledged
messages, which bounds the buffer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import NamedTuple, TypeVar

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.client import IngestClient, Publish
from ingest.inbox import Inbox
from ingest.kinds import KindCache
from ingest.parse import DeadLetter, Limits, Parsed, parse_message
from ingest.stats import Stats
from ingest.store import Store, WriteResult
from urbanwatch.settings import Settings, mqtt_host_port
from urbanwatch.topics import subscriptions

logger = logging.getLogger(__name__)

KEEPALIVE_S = 30
# Plain PostgreSQL storage: how often ingest materializes the hourly rollups.
ROLLUP_INTERVAL_S = 300
T = TypeVar("T")


class Incoming(NamedTuple):
    topic: str
    payload: bytes
    mid: int
    qos: int
    received_at: datetime


def _weight(message: Incoming) -> int:
    """Readings in a message, roughly: a gateway batch counts its elements (exact at parse)."""
    return message.payload.count(b'"device_id"') or 1


class Worker:
    def __init__(self, settings: Settings, client_id: str | None = None):
        self.settings = settings
        self.client_id = client_id or settings.ingest_client_id
        self.limits = Limits(
            prefix=settings.mqtt_topic_prefix,
            max_payload_bytes=settings.ingest_max_payload_bytes,
            max_future=timedelta(seconds=settings.ingest_max_future_s),
            max_age=timedelta(hours=settings.ingest_max_age_h)
            if settings.ingest_max_age_h
            else None,
        )
        # Receive Maximum bounds QoS 1 messages in flight; QoS 0 ones wait here when full.
        self.inbox: Inbox[Incoming] = Inbox(maxsize=settings.ingest_receive_maximum * 2)
        self.store = Store(settings.database_url)  # used by the committer thread only
        self.kinds = KindCache(settings.database_url, settings.ingest_registry_ttl_s)
        self.stats = Stats()
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker confirmed the subscriptions
        self._stopping = threading.Event()
        # Set when the writer thread died of an unexpected error (a bug, not bad input: that
        # is dead-lettered). The CLI then exits non-zero so a supervisor restarts the worker;
        # what was not acknowledged is redelivered.
        self.failed = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self._committer = ThreadPoolExecutor(1, thread_name_prefix="ingest-committer")
        self.client = self._make_client()

    # --- MQTT edge ------------------------------------------------------------------

    def _make_client(self) -> IngestClient:
        client = IngestClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publishes = self._on_publishes
        client.on_subscribe = self._on_subscribe
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        return client

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.ConnectFlags,
        reason: mqtt.ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            logger.error("broker refused the connection: %s", reason)
            return
        filters = subscriptions(self.settings.mqtt_topic_prefix, self.settings.ingest_share_group)
        client.subscribe([(f, SubscribeOptions(qos=1)) for f in filters])
        logger.info(
            "connected to %s as %s (session %s); subscribing to %s",
            self.settings.mqtt_url,
            self.client_id,
            "resumed" if flags.session_present else "new",
            ", ".join(filters),
        )
        self.connected.set()

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[mqtt.ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            logger.error("broker refused the subscriptions: %s", ", ".join(failed))
            return
        logger.info("subscriptions confirmed: ready")
        self.subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: mqtt.ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._stopping.is_set():
            logger.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # left unacknowledged: the broker redelivers it to the next session
        self.inbox.put_many(
            [Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos, datetime.now(UTC))]
        )

    def _on_publishes(self, publishes: list[Publish]) -> None:
        """Every plain PUBLISH of one socket read (ingest/client.py); they arrived together."""
        if self._stopping.is_set():
            return
        now = datetime.now(UTC)
        self.inbox.put_many([Incoming(*p, now) for p in publishes])

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        self.kinds.refresh()
        self._storage = self.store.storage()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.ingest_session_expiry_s
        props.ReceiveMaximum = self.settings.ingest_receive_maximum
        host, port = mqtt_host_port(self.settings.mqtt_url)
        self.client.connect_async(
            host, port, keepalive=KEEPALIVE_S, clean_start=False, properties=props
        )
        self.client.loop_start()
        self._writer.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, commit and acknowledge what is buffered, disconnect.
        What cannot be committed in time stays unacknowledged and is redelivered later."""
        self._stopping.set()
        self._writer.join(timeout)
        self.client.disconnect()
        self.client.loop_stop()
        self.store.close()
        self.kinds.close()
        logger.info("stopped: %s", self.stats.totals())

    # --- writer thread -----------------------------------------------------------------

    def _write_loop(self) -> None:
        try:
            self._write_batches()
        except Exception:
            logger.exception(
                "the writer failed; stopping (unacknowledged messages will be redelivered)"
            )
            self.failed.set()
            self._stopping.set()
            self._committer.shutdown(wait=False, cancel_futures=True)

    def _write_batches(self) -> None:
        next_rollup = time.monotonic() + ROLLUP_INTERVAL_S
        in_flight: Future[None] | None = None  # the batch the committer holds, if any
        while not self._stopping.is_set() or len(self.inbox):
            batch = self._collect()
            parsed = self._parse_retrying(batch) if batch else None
            if parsed is not None:
                if in_flight is not None:
                    in_flight.result()  # one batch in flight; its exceptions surface here
                in_flight = self._committer.submit(self._commit, batch, parsed)
            if in_flight is not None and in_flight.done():
                in_flight.result()  # surfaces the committer's error now, not at the next batch
                in_flight = None
            now = time.monotonic()
            self.stats.maybe_log(now, len(self.inbox), self.settings.ingest_stats_interval_s)
            if self._storage == "plain" and now >= next_rollup:
                next_rollup = now + ROLLUP_INTERVAL_S
                if in_flight is not None:
                    in_flight.result()
                in_flight = self._committer.submit(self._refresh_rollups)
        if in_flight is not None:
            in_flight.result()
        self._committer.shutdown()

    def _collect(self) -> list[Incoming]:
        """Messages until the batch holds `ingest_batch_size` readings or the interval passes."""
        return self.inbox.take(
            self.settings.ingest_batch_size, self.settings.ingest_flush_interval_s, _weight
        )

    def _parse(self, batch: list[Incoming]) -> Parsed:
        """One Parsed for the whole batch (a message's own is rebuilt only to isolate it)."""
        self.kinds.refresh()
        parsed = self._parse_with(batch, self.kinds.kinds)
        unknown = {
            d.device_id for d in parsed.dead if d.reason_code == "unknown_device" and d.device_id
        }
        if unknown and self.kinds.look_up(unknown):  # devices registered since the last reload
            parsed = self._parse_with(batch, self.kinds.kinds)
        return parsed

    def _parse_with(self, batch: list[Incoming], kinds: dict[str, str]) -> Parsed:
        out = Parsed()
        limits = self.limits
        for m in batch:
            parse_message(m.topic, m.payload, m.received_at, kinds, limits, out)
        return out

    def _parse_retrying(self, batch: list[Incoming]) -> Parsed | None:
        """Parse (the registry cache may need the database); None if it is unavailable
        while stopping: the batch then stays unacknowledged."""
        return self._retrying(lambda: self._parse(batch), self.kinds.reset, len(batch))

    def _commit(self, batch: list[Incoming], parsed: Parsed) -> None:
        """Committer thread: store the batch, retrying while the database is unreachable,
        then acknowledge it."""
        result = self._retrying(lambda: self._store(batch, parsed), self.store.reset, len(batch))
        if result is None:
            return
        self.client.ack_many(m.mid for m in batch if m.qos == 1)  # QoS 2 is not subscribed
        self.stats.record(len(batch), result, batch[0].received_at)

    def _retrying(self, attempt: Callable[[], T], reset: Callable[[], None], held: int) -> T | None:
        """`attempt()`, retried with backoff while the database is unreachable; None if it
        is unreachable while stopping."""
        delay = self.settings.ingest_retry_initial_s
        while True:
            try:
                return attempt()
            except psycopg.OperationalError as exc:
                reset()
                if self._stopping.is_set():
                    logger.error(
                        "database unavailable while stopping; %d message(s) stay "
                        "unacknowledged and will be redelivered",
                        held,
                    )
                    return None
                first_line = (
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                )
                logger.warning(
                    "database unavailable (%s); holding %d message(s), retrying in %.1f s",
                    first_line,
                    held,
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, self.settings.ingest_retry_max_s)

    def _store(self, batch: list[Incoming], parsed: Parsed) -> WriteResult:
        try:
            return self.store.write(parsed)
        except psycopg.OperationalError:
            raise
        except psycopg.Error as exc:  # the data, not the connection: find the culprit
            logger.warning("batch refused by the database (%s); writing message by message", exc)
            return self._write_isolated(batch)

    def _write_isolated(self, batch: list[Incoming]) -> WriteResult:
        """Write each message alone (parsed again, with the registry as the batch saw it);
        one the database refuses becomes a dead letter."""
        results = []
        kinds = self.kinds.kinds
        for m in batch:
            p = parse_message(m.topic, m.payload, m.received_at, kinds, self.limits)
            try:
                results.append(self.store.write(p))
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                reason = f"database: {str(exc).strip().splitlines()[0]}"
                dead = DeadLetter(m.topic, m.payload, m.received_at, "db_rejected", reason)
                results.append(self.store.write(Parsed(dead=[dead])))
        return WriteResult(*(sum(column) for column in zip(*results, strict=True)))

    def _refresh_rollups(self) -> None:
        try:
            written = self.store.refresh_rollups()
            logger.info("rollups: materialized %d hourly row(s)", written)
        except psycopg.Error as exc:
            self.store.reset()
            logger.warning("rollup refresh failed (%s); will retry", exc)
