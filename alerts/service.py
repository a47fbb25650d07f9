"""`urbanwatch alerts run`: MQTT in, alert changes out, exactly once across restarts.

Its own persistent MQTT 5 session (QoS 1, client id from alerts/session.py) on the
telemetry and status topics under the prefix. Messages are evaluated in batches; each
batch's alert changes, their events and the touched devices' state are committed in one
transaction, and only then are the batch's messages acknowledged. Killed at any point, the
engine restarts from the committed state and the broker redelivers what was not
acknowledged; a redelivered reading is no newer than its device's state, so it changes
nothing twice. Deadlines (minimum durations, offline) are rebuilt from the saved state and
the last-seen times of the stored readings and status rows.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from alerts.engine import Engine
from alerts.groups import GroupDetector
from alerts.messages import Parsed, ReadingIn, parse
from alerts.session import Claim
from urbanwatch import db
from urbanwatch.alerting import Device, RuleSet, default_rules
from urbanwatch.errors import RuntimeProblem
from urbanwatch.mqtt_client import BatchClient, Publish
from urbanwatch.queries import alerts as q
from urbanwatch.queries import profiles
from urbanwatch.queries import rules as rule_queries
from urbanwatch.settings import Settings, mqtt_host_port

logger = logging.getLogger("alerts")
LAST_SEEN_WINDOW = timedelta(days=3)  # readings older than ingest accepts do not matter
REGISTRY_REFRESH_S = 600.0  # changed attributes (a lamp's rated power) reach the rules
UNKNOWN_TTL_S = 30.0  # an id not in the registry is looked up again after this long
# The expected flow and pressure (queries/profiles.py) are reloaded this often, in a thread of
# their own: the evaluation keeps the last ones meanwhile; they cover 2 h ahead of each load.
PROFILE_REFRESH_S = 900.0


def stored_rules(conn: psycopg.Connection) -> tuple[int | None, RuleSet]:
    """The stored rule set (validated), or the shipped defaults when none was loaded."""
    data = rule_queries.load_rule_set_data(conn)
    if data is None:
        return None, default_rules()
    return rule_queries.current_version(conn), RuleSet.model_validate(data)


class AlertService:
    def __init__(self, settings: Settings, detectors: Sequence[GroupDetector] = ()):
        self.settings = settings
        self.prefix = settings.mqtt_topic_prefix
        self.claim = Claim(settings.database_url, self.prefix, settings.alerts_partitions)
        self.detectors = detectors
        # (wall time received, the messages of one socket read): one put per read
        self.inbox: queue.Queue[tuple[float, list[Publish]]] = queue.Queue()
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.stats = {"messages": 0, "readings": 0, "changes": 0, "skipped": 0}
        self.conn: psycopg.Connection | None = None
        self.client: BatchClient | None = None
        self.engine: Engine | None = None
        self.rules_version: int | None = None
        self._kinds: dict[str, str] = {}
        self._registry_at = time.monotonic()
        self._unknown: dict[str, float] = {}  # id -> when the registry last lacked it
        self._profiles = profiles.Profiles()
        self._profiles_at = time.monotonic()
        self._profiles_loading = threading.Lock()  # held while a refresh runs
        self._rules_at = 0.0

    # --- start-up ---------------------------------------------------------------------

    def start(self) -> None:
        slot, client_id = self.claim.acquire(self.settings.alerts_claim_wait_s)
        self.conn = db.connect(self.settings.database_url, name=client_id)
        # The bulk INSERT of new alerts plans past jit_above_cost at a few thousand rows, and
        # compiling it cost more than running it (~25 ms of a 5,000-alert batch, docs/alerts.md).
        self.conn.execute("SET jit = off")
        try:
            self.rules_version, rules = stored_rules(self.conn)
        except ValueError as exc:  # a set stored around the validation (a hand edit)
            first = str(exc).splitlines()[0]
            raise RuntimeProblem(
                f"the stored alert rules are invalid ({first}); load a good set with "
                "`urbanwatch alerts rules load FILE`"
            ) from None
        devices = self._load_devices()
        self.engine = Engine(
            rules, devices, (slot, self.settings.alerts_partitions), self.detectors
        )
        seen = {d: t.timestamp() for d, t in q.last_seen(self.conn, LAST_SEEN_WINDOW).items()}
        self.engine.restore(q.load_states(self.conn), seen)
        self._profiles = profiles.load_profiles(self.conn, datetime.now(UTC))
        self._profiles_at = time.monotonic()
        self.conn.commit()
        self._connect(client_id)
        logger.info(
            "alerts engine %s: slot %d of %d, %d devices, %d rules",
            client_id,
            slot,
            self.settings.alerts_partitions,
            len(self.engine.devices),
            len(rules.rules),
        )

    def _load_devices(self, ids: list[str] | None = None) -> list[Device]:
        assert self.conn is not None
        rows = q.load_devices(self.conn, ids)
        self.conn.commit()
        self._kinds.update({d: k for d, k, _, _ in rows})
        return [Device(d, k, district, attrs or {}) for d, k, district, attrs in rows]

    def _parse(self, batch: list[tuple[float, list[Publish]]]) -> tuple[Parsed, dict[str, float]]:
        parsed, walls = Parsed(), {}
        prefix, kinds, readings, status = self.prefix, self._kinds, parsed.readings, parsed.status
        for wall, messages in batch:
            before_r, before_s = len(readings), len(status)
            for m in messages:
                parse(prefix, m.topic, m.payload, kinds, parsed)
            for r in readings[before_r:]:
                walls[r.device_id] = wall
            for st in status[before_s:]:
                walls[st.device_id] = wall
        return parsed, walls

    def _learn(self, ids: set[str]) -> bool:
        """Look up devices the engine has not met (registered since it started), in one
        query per batch; an id still unknown is asked about again after UNKNOWN_TTL_S.
        True when some were found. An id with a NUL byte (a gateway's hostile element) is
        never looked up: the query would raise DataError and end the engine's loop."""
        assert self.engine is not None
        known, now = self.engine.devices, time.monotonic()
        new = [
            d
            for d in ids
            if d not in known
            and "\x00" not in d  # no device has one (PostgreSQL text cannot hold NUL)
            and self.engine.owns(d)
            and now - self._unknown.get(d, -UNKNOWN_TTL_S) >= UNKNOWN_TTL_S
        ]
        if not new:
            return False
        found = self._load_devices(new)
        self.engine.set_devices(found)
        self._unknown.update({d: now for d in new if d not in known})
        return bool(found)

    def _connect(self, client_id: str) -> None:
        client = BatchClient(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if self.settings.mqtt_username:
            password = self.settings.mqtt_password
            client.username_pw_set(
                self.settings.mqtt_username, password.get_secret_value() if password else None
            )
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_publishes = self._on_publishes
        client.on_subscribe = self._on_subscribe
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.settings.alerts_session_expiry_s
        host, port = mqtt_host_port(self.settings.mqtt_url)
        try:
            client.connect(host, port, clean_start=False, properties=props)
        except OSError as exc:
            raise RuntimeProblem(f"cannot reach the MQTT broker at {host}:{port}: {exc}") from exc
        self.client = client
        client.loop_start()

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            logger.error("broker refused the connection: %s", reason)
            return
        client.subscribe([(f"{self.prefix}/+/+/telemetry", 1), (f"{self.prefix}/+/+/status", 1)])

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, _mid: int, codes: Any, _p: Any) -> None:
        if all(not c.is_failure for c in codes):
            logger.info("alerts engine subscribed")
            self.ready.set()
        else:
            logger.error("broker refused a subscription: %s", codes)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        """A message paho decoded itself (with properties, or split across reads)."""
        m = Publish(message.topic, bytes(message.payload), message.mid, message.qos, message.dup)
        self.inbox.put((time.time(), [m]))

    def _on_publishes(self, publishes: list[Publish]) -> None:
        """Every plain PUBLISH of one socket read (urbanwatch/mqtt_client.py)."""
        self.inbox.put((time.time(), publishes))

    # --- the loop ---------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.step()
        finally:
            self.close()

    def step(self) -> None:
        """Take one batch (or wait for the next deadline), evaluate, commit, acknowledge."""
        assert self.engine is not None and self.conn is not None
        batch = self._take(self._timeout())
        now = time.time()
        parsed, walls = self._parse(batch)
        if parsed.unknown and self._learn(parsed.unknown):
            parsed, walls = self._parse(batch)  # gateway elements of devices just met
        ids = {r.device_id for r in parsed.readings} | {s.device_id for s in parsed.status}
        self._learn(ids)
        changes = self._evaluate(parsed, walls)
        changes += self.engine.on_tick(now)
        states = self.engine.take_dirty()
        if changes or states:
            with self.conn.transaction():
                q.apply_changes(self.conn, changes, self.engine.rules.reopen_within_s)
                q.save_states(self.conn, states)
            self.conn.commit()
        if self.client is not None:  # one write for the batch's PUBACKs
            self.client.ack_many(m.mid for _, messages in batch for m in messages if m.qos == 1)
        self.stats["messages"] += sum(len(messages) for _, messages in batch)
        self.stats["changes"] += len(changes)
        self.stats["skipped"] += parsed.skipped
        self._maybe_reload(now)

    def _timeout(self) -> float:
        assert self.engine is not None
        due = self.engine.next_deadline()
        wait = self.settings.alerts_flush_interval_s
        return wait if due is None else max(0.0, min(wait, due - time.time()))

    def _take(self, timeout: float) -> list[tuple[float, list[Publish]]]:
        """The socket reads waiting (at least one, up to `timeout`), until they hold
        ALERTS_BATCH_SIZE messages (a read is never split)."""
        try:
            batch = [self.inbox.get(timeout=timeout)]
        except queue.Empty:
            return []
        size = len(batch[0][1])
        while size < self.settings.alerts_batch_size:
            try:
                batch.append(self.inbox.get_nowait())
            except queue.Empty:
                break
            size += len(batch[-1][1])
        return batch

    def _evaluate(self, parsed: Parsed, walls: dict[str, float]) -> list[q.Change]:
        assert self.engine is not None
        engine, changes = self.engine, []
        parsed.readings.sort(key=lambda r: r.ts)  # a batch's readings in timestamp order
        for reading in parsed.readings:
            device = self._device(reading.device_id)
            if device is None or device.kind != reading.kind:
                continue
            self.stats["readings"] += 1
            extra = self._extra(device, reading)
            changes += engine.on_reading(
                device, reading.fields, reading.ts, walls[reading.device_id], extra
            )
        for status in parsed.status:
            device = self._device(status.device_id)
            if device is not None:
                changes += engine.on_status(device, status.status, walls[status.device_id])
        return changes

    def _device(self, device_id: str) -> Device | None:
        assert self.engine is not None
        if not self.engine.owns(device_id):
            return None
        return self.engine.devices.get(device_id)

    def _extra(self, device: Device, reading: ReadingIn) -> dict[str, Any] | None:
        assert self.conn is not None
        at = datetime.fromtimestamp(reading.ts, UTC)
        if device.kind == "manhole" and reading.fields.get("cover_open"):
            return {"work_window": q.work_window_covers(self.conn, device.device_id, at)}
        if device.kind == "watermeter":
            if time.monotonic() - self._profiles_at > PROFILE_REFRESH_S:
                self._refresh_profiles()
            return {"profile": self._profiles.get(device.device_id, reading.ts)}
        return None

    def _refresh_profiles(self) -> None:
        """Reload the profiles in a thread with its own connection (a 4-week query must
        not hold up the evaluation); the evaluation swaps to them when they are ready."""
        if not self._profiles_loading.acquire(blocking=False):
            return  # one is running
        self._profiles_at = time.monotonic()

        def load() -> None:
            try:
                with db.connect(self.settings.database_url, name="urbanwatch-profiles") as conn:
                    self._profiles = profiles.load_profiles(conn, datetime.now(UTC))
            except psycopg.Error as exc:
                logger.error("expected flow profiles not refreshed, keeping the last: %s", exc)
            finally:
                self._profiles_loading.release()

        threading.Thread(target=load, name="profiles", daemon=True).start()

    def _maybe_reload(self, now: float) -> None:
        """A new rule set in the database replaces the rules; a broken one is logged and
        the last good set kept."""
        if time.monotonic() - self._registry_at > REGISTRY_REFRESH_S:
            assert self.engine is not None
            self.engine.set_devices(self._load_devices())
            self._registry_at = time.monotonic()
        if now - self._rules_at < self.settings.alerts_rules_poll_s:
            return
        assert self.conn is not None and self.engine is not None
        self._rules_at = now
        version = rule_queries.current_version(self.conn)
        self.conn.commit()
        if version is None or version == self.rules_version:
            return
        try:
            _, rules = stored_rules(self.conn)
        except ValueError as exc:
            logger.error("rule set version %s refused, keeping the last good set: %s", version, exc)
        else:
            self.engine.set_rules(rules)
            logger.info("rule set version %s loaded: %d rules", version, len(rules.rules))
        finally:
            self.conn.commit()
        self.rules_version = version

    def close(self) -> None:
        if self.client is not None:
            self.client.loop_stop()
            self.client.disconnect()
            self.client = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.claim.release()
