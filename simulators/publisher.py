"""MQTT publishing for live runs: QoS 1, MQTT 5, optional gateway batching, a rate cap.

Topics follow the contract (urbanwatch/topics.py): one reading per message on
`{prefix}/{kind}/{device_id}/telemetry`, or gateway batches (JSON arrays whose elements
carry `device_id`) on `{prefix}/gateway/{gateway}/telemetry`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from simulators.devices import Device
from urbanwatch.errors import RuntimeProblem
from urbanwatch.settings import mqtt_host_port
from urbanwatch.topics import gateway_topic, telemetry_topic

logger = logging.getLogger(__name__)

# The broker accepts up to 1000 unacknowledged QoS 1 messages per client
# (deploy/mosquitto/conf.d: max_inflight_messages); more would only queue here.
MAX_INFLIGHT = 1000
CONNECT_TIMEOUT_S = 10.0


class Publisher:
    def __init__(
        self,
        mqtt_url: str,
        prefix: str,
        *,
        client_id: str,
        batch: int = 0,
        rate_cap: float | None = None,
        username: str | None = None,
        password: str | None = None,
    ):
        """`batch` > 0 groups readings per gateway into arrays of up to that many;
        `rate_cap` limits readings per second (None: as fast as the broker takes them);
        `username`/`password`: the simulator's broker account (MQTT_USERNAME, MQTT_PASSWORD)."""
        self.prefix, self.batch, self.rate_cap = prefix, batch, rate_cap
        self.host, self.port = mqtt_host_port(mqtt_url)
        self.readings = 0
        self.messages = 0
        self.acked = 0
        self._buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self._budget_t = 0.0
        self._connected = threading.Event()
        self.refused: str | None = None  # the broker's reason when it refused the connection
        self._lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.max_inflight_messages_set(MAX_INFLIGHT)
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_publish = self._on_publish

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            logger.error("broker refused the connection: %s", reason)
            self.refused = str(reason)
            self._connected.set()  # wake connect(), which reports it
            return
        self._connected.set()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        with self._lock:
            self.acked += 1

    def connect(self) -> None:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._connected.wait(CONNECT_TIMEOUT_S):
            self.client.loop_stop()
            raise ConnectionError(f"no MQTT connection to {self.host}:{self.port}")
        if self.refused:
            self.client.loop_stop()
            raise RuntimeProblem(
                f"the MQTT broker at {self.host}:{self.port} refused the connection: "
                f"{self.refused} (check MQTT_USERNAME and MQTT_PASSWORD)"
            )
        logger.info("publishing to %s:%d under %s/", self.host, self.port, self.prefix)

    def add(self, device: Device, payload: dict[str, Any]) -> None:
        if self.batch <= 0:
            self._send(
                telemetry_topic(self.prefix, device.kind, device.device_id),
                orjson.dumps(payload),
                1,
            )
            return
        buffer = self._buffers[device.gateway]
        buffer.append(payload)
        if len(buffer) >= self.batch:
            self._send(
                gateway_topic(self.prefix, device.gateway), orjson.dumps(buffer), len(buffer)
            )
            buffer.clear()

    def flush(self) -> None:
        """Send every partly filled gateway batch."""
        for gateway, buffer in self._buffers.items():
            if buffer:
                self._send(gateway_topic(self.prefix, gateway), orjson.dumps(buffer), len(buffer))
                buffer.clear()

    def _send(self, topic: str, body: bytes, readings: int) -> None:
        if self.rate_cap:
            now = time.monotonic()
            self._budget_t = max(self._budget_t, now) + readings / self.rate_cap
            ahead = self._budget_t - now - readings / self.rate_cap
            if ahead > 0:
                time.sleep(ahead)
        info = self.client.publish(topic, body, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
            raise ConnectionError(f"publish failed: {mqtt.error_string(info.rc)}")
        self.messages += 1
        self.readings += readings

    def wait_acked(self, timeout: float = 30.0) -> bool:
        """Wait until the broker has acknowledged every message sent; False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self.acked >= self.messages:
                    return True
            time.sleep(0.02)
        return False

    def close(self, timeout: float = 30.0) -> None:
        self.flush()
        if not self.wait_acked(timeout):
            missing = self.messages - self.acked
            logger.warning("%d message(s) not acknowledged by the broker", missing)
        self.client.disconnect()
        self.client.loop_stop()
