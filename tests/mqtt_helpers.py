"""Test-side MQTT publishing and workers run in-process (real broker, real database)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ingest.worker import Worker
from tests.conftest import wait_for
from urbanwatch.settings import Settings, mqtt_host_port


def make_settings(database_url: str, mqtt_url: str, prefix: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "mqtt_url": mqtt_url,
        "mqtt_topic_prefix": prefix,
        "ingest_client_id": f"{prefix}-worker",
        "ingest_flush_interval_s": 0.05,
        "ingest_stats_interval_s": 3600,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def running_worker(settings: Settings, client_id: str | None = None) -> Iterator[Worker]:
    worker = Worker(settings, client_id=client_id)
    worker.start()
    try:
        wait_for(worker.subscribed.is_set, timeout=10, what="the worker's subscriptions")
        yield worker
    finally:
        worker.stop()


class Publisher:
    """A QoS 1 publisher that waits for each PUBACK, so 'published' means 'at the broker'."""

    def __init__(self, mqtt_url: str, **will: Any):
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if will:
            self.client.will_set(**will)
        host, port = mqtt_host_port(mqtt_url)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str | dict | list, qos: int = 1) -> None:
        if isinstance(payload, dict | list):
            payload = orjson.dumps(payload)
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
