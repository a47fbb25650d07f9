"""The ingest worker: MQTT 5 in (paho at the edge), the writer thread (ingest/writer.py) out.

Threads: paho's network thread puts every message on the inbox; the writer collects, parses,
commits and acknowledges. The broker sends at most Receive Maximum unacknowledged messages,
which bounds the buffer. The worker owns its MQTT session through a claimed client id
(ingest/session.py) and stops, rather than fight, when another client takes the session over.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from ingest.client import IngestClient, Publish
from ingest.inbox import Inbox
from ingest.parse import Limits
from ingest.registry import RegistryCache
from ingest.session import SessionClaim
from ingest.stats import Stats
from ingest.store import Store
from ingest.writer import Incoming, Writer
from urbanwatch.retry import Backoff
from urbanwatch.settings import Settings, mqtt_host_port
from urbanwatch.topics import subscriptions

logger = logging.getLogger(__name__)

KEEPALIVE_S = 30
CLAIM_CHECK_INTERVAL_S = 5.0
SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason: another client connected with our id
# Mosquitto 2.0 closes the older connection of a taken-over session without that reason, so
# a takeover also shows as the broker dropping the worker again and again soon after it
# connected: INGEST_TAKEOVER_DROPS drops, each within SHORT_SESSION_S of connecting, within
# FLAP_WINDOW_S (two clients fighting reconnect every second or two).
SHORT_SESSION_S = 10.0
FLAP_WINDOW_S = 60.0
# Retained messages are sent again whenever a subscription is made; a resumed session's
# re-subscription must not store them twice (MQTT 5 Retain Handling 1: only when new).
SEND_RETAINED_IF_NEW = SubscribeOptions.RETAIN_SEND_IF_NEW_SUB


class Worker:
    def __init__(self, settings: Settings, client_id: str | None = None):
        self.settings = settings
        self.requested_client_id = client_id or settings.ingest_client_id
        self.share_group = settings.ingest_share_group or None
        self.filters = subscriptions(settings.mqtt_topic_prefix, self.share_group)
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
        self.claim = SessionClaim(
            settings.database_url, settings.mqtt_topic_prefix, self.share_group
        )
        self.registry = RegistryCache(settings.database_url, settings.ingest_registry_ttl_s)
        self.stats = Stats()
        self.connected = threading.Event()
        self.subscribed = threading.Event()  # set once the broker confirmed the subscriptions
        self._stopping = threading.Event()
        # Set when the worker cannot go on: the writer died of an unexpected error (a bug, not
        # bad input: that is dead-lettered) or another client took the session. The CLI then
        # exits non-zero; what was not acknowledged is redelivered to the session.
        self.failed = threading.Event()
        self.client_id = ""
        self._stale_filters: list[str] = []
        self._connected_at: float | None = None
        self._short_drops: list[float] = []
        self._next_claim_check = 0.0
        self._writer_thread = threading.Thread(
            target=self._write_loop, name="ingest-writer", daemon=True
        )

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        """Claim a client id, connect (retrying in the background) and start writing.
        Raises ClaimRefused, or psycopg errors when the database cannot be used at all."""
        self.client_id = self.claim.acquire(
            self.requested_client_id, self.settings.ingest_claim_wait_s
        )
        try:
            self.registry.refresh()
            self.store = Store(self.settings.database_url, self.client_id)
            self.store.storage()  # a migrated database, or a clear error now
            before = self.claim.filters_before()
            self._stale_filters = [f for f in before if f not in self.filters]
            self.claim.record_filters(self.filters)
        except BaseException:
            self.claim.release()
            raise
        self.client = self._make_client()
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.ingest_session_expiry_s
        props.ReceiveMaximum = self.settings.ingest_receive_maximum
        host, port = mqtt_host_port(self.settings.mqtt_url)
        self.client.connect_async(
            host, port, keepalive=KEEPALIVE_S, clean_start=False, properties=props
        )
        self.client.loop_start()
        self.writer = Writer(
            inbox=self.inbox,
            store=self.store,
            registry=self.registry,
            limits=self.limits,
            stats=self.stats,
            acker=self.client,
            batch_size=self.settings.ingest_batch_size,
            flush_interval_s=self.settings.ingest_flush_interval_s,
            stats_interval_s=self.settings.ingest_stats_interval_s,
            backoff=Backoff(self.settings.ingest_retry_initial_s, self.settings.ingest_retry_max_s),
            stopping=self._stopping,
            on_tick=self._check_claim,
        )
        self._writer_thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop taking messages, commit and acknowledge what is buffered, disconnect.
        What cannot be committed in time stays unacknowledged and is redelivered later."""
        self._stopping.set()
        if self._writer_thread.is_alive():
            self._writer_thread.join(timeout)
        if hasattr(self, "client"):
            self.client.disconnect()
            self.client.loop_stop()
        if hasattr(self, "store"):
            self.store.close()
        self.registry.close()
        self.claim.release()
        logger.info("stopped: %s", self.stats.totals())

    def _write_loop(self) -> None:
        try:
            self.writer.run()
        except Exception:
            logger.exception(
                "the writer failed; stopping (unacknowledged messages will be redelivered)"
            )
            self._fail()

    def _fail(self) -> None:
        self.failed.set()
        self._stopping.set()

    def _check_claim(self) -> None:
        now = time.monotonic()
        if now < self._next_claim_check:
            return
        self._next_claim_check = now + CLAIM_CHECK_INTERVAL_S
        if not self.claim.still_held():
            logger.error(
                "another worker claimed client id %s while the database was unreachable; stopping",
                self.client_id,
            )
            self._fail()

    # --- MQTT edge ----------------------------------------------------------------------

    def _make_client(self) -> IngestClient:
        client = IngestClient(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.settings.mqtt_username:
            client.username_pw_set(
                self.settings.mqtt_username,
                self.settings.mqtt_password.get_secret_value()
                if self.settings.mqtt_password
                else None,
            )
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
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
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            logger.error(
                "the broker at %s refused the connection: %s", self.settings.mqtt_url, reason
            )
            return
        if self._stopping.is_set():
            client.disconnect()
            return
        if flags.session_present and self._stale_filters:
            logger.warning(
                "the resumed session still had %s; unsubscribing", ", ".join(self._stale_filters)
            )
            client.unsubscribe(self._stale_filters)
            self._stale_filters = []
        client.subscribe(
            [
                (f, SubscribeOptions(qos=1, retainHandling=SEND_RETAINED_IF_NEW))
                for f in self.filters
            ]
        )
        self._connected_at = time.monotonic()
        logger.info(
            "connected to %s as %s (session %s); subscribing to %s",
            self.settings.mqtt_url,
            self.client_id,
            "resumed" if flags.session_present else "new",
            ", ".join(self.filters),
        )
        self.connected.set()

    def _on_connect_fail(self, client: mqtt.Client, userdata: object) -> None:
        error = getattr(client, "last_connect_error", None)
        logger.warning(
            "cannot reach the MQTT broker at %s (%s); retrying",
            self.settings.mqtt_url,
            error or "connection failed",
        )

    def _on_subscribe(
        self,
        client: mqtt.Client,
        userdata: object,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        failed = [str(r) for r in reasons if r.is_failure]
        if failed:
            logger.error("the broker refused the subscriptions: %s", ", ".join(failed))
            return
        logger.info("subscriptions confirmed: ready")
        self.subscribed.set()

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: object,
        flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if self._stopping.is_set():
            return
        if reason.value == SESSION_TAKEN_OVER or self._flapping():
            logger.error(
                "another client connected with client id %s and took over this worker's "
                "session%s; stopping (two processes must never share a client id)",
                self.client_id,
                ""
                if reason.value == SESSION_TAKEN_OVER
                else f" (the broker closed the connection {len(self._short_drops)} times "
                "soon after it was made, as Mosquitto does on a takeover)",
            )
            client.disconnect()  # no reconnect: taking the session back would start a fight
            self._fail()
        else:
            logger.warning("lost the broker (%s); reconnecting", reason)

    def _flapping(self) -> bool:
        """True when this drop makes FLAP_DROPS short-lived connections in FLAP_WINDOW_S."""
        limit = self.settings.ingest_takeover_drops
        now = time.monotonic()
        if not limit or self._connected_at is None or now - self._connected_at > SHORT_SESSION_S:
            return False
        self._short_drops = [t for t in self._short_drops if now - t < FLAP_WINDOW_S] + [now]
        return len(self._short_drops) >= limit

    def _on_message(self, client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        if self._stopping.is_set():
            return  # left unacknowledged: the broker redelivers it to the next session
        self.inbox.put_many(
            [Incoming(msg.topic, bytes(msg.payload), msg.mid, msg.qos, msg.dup, datetime.now(UTC))]
        )

    def _on_publishes(self, publishes: list[Publish]) -> None:
        """Every plain PUBLISH of one socket read (ingest/client.py); they arrived together."""
        if self._stopping.is_set():
            return
        now = datetime.now(UTC)
        self.inbox.put_many([Incoming(*p, now) for p in publishes])
