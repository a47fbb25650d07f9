"""The streetlight fault fields (migration 030) through the whole ingest path, on the real
Mosquitto and PostgreSQL: hypothesis publishes readings whose commanded_state,
relay_feedback and driver flags are anything at all. Each message ends exactly once: a row
holding exactly the values sent (NULL for a field left out or sent as null), or one dead
letter with the exact bytes, `invalid_field` and a reason that starts with a field at fault."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from tests.conftest import wait_for
from tests.mqtt_helpers import make_settings, running_worker
from urbanwatch.settings import mqtt_host_port

ALLOWED: dict[str, tuple[Any, ...]] = {  # the contract (docs/mqtt.md), written out apart
    "commanded_state": ("on", "off"),
    "relay_feedback": ("closed", "open"),
    "driver_thermal_derating": (True, False),
    "driver_thermal_shutdown": (True, False),
    "driver_gear_failure": (True, False),
}
FIELDS = tuple(ALLOWED)
POOL = 400

hostile = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(["on", "off", "closed", "open"]),
    st.sampled_from(
        [
            "ON",
            "On",
            " on",
            "on ",
            "on\x00",
            "\x00",
            "",
            "dim",
            "true",
            "false",
            "1",
            "0",
            "null",
            "开",
            "ｏｎ",
            "closed\n",
            "stuck",
            "\u202eno",
            "x" * 3000,
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.lists(st.booleans() | st.text(max_size=3), max_size=3),
    st.dictionaries(st.text(max_size=3), st.booleans(), max_size=2),
)


def accepted(field: str, value: Any) -> bool:
    if value is None:
        return True
    return any(value == a and type(value) is type(a) for a in ALLOWED[field])


@pytest.fixture
def prefix() -> str:
    return f"slfaults-{uuid.uuid4().hex[:10]}"


class Sender:
    """A QoS 1 publisher (client id with this suite's name) that waits for each PUBACK."""

    def __init__(self, mqtt_url: str, prefix: str):
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub", protocol=mqtt.MQTTv5
        )
        host, port = mqtt_host_port(mqtt_url)
        self.client.connect(host, port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(timeout=10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def register(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur, cur.copy(
        "COPY devices (device_id, kind, district, lat, lon) FROM STDIN"
    ) as copy:  # fmt: skip
        for i in range(POOL):
            copy.write_row((f"SL-F-{i}", "streetlight", "wenfeng", 36.1, 114.35))


def counts(conn: psycopg.Connection) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM streetlight_readings), (SELECT count(*) FROM dead_letters)"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def test_hostile_fault_fields_are_stored_or_dead_lettered_never_lost(
    conn, database_url, mqtt_url, prefix
):
    register(conn)
    devices = iter(range(POOL))
    now = datetime.now(UTC)
    worker_settings = make_settings(database_url, mqtt_url, prefix, ingest_flush_interval_s=0.01)
    sender = Sender(mqtt_url, prefix)
    try:
        with running_worker(worker_settings) as worker:

            @settings(
                max_examples=120,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
            )
            @given(
                values=st.dictionaries(st.sampled_from(FIELDS), hostile, min_size=1, max_size=5),
                ascii_only=st.booleans(),
            )
            def check(values: dict[str, Any], ascii_only: bool) -> None:
                device = f"SL-F-{next(devices)}"
                ts = now - timedelta(seconds=1)
                body = {"ts": ts.isoformat(), "active_power_w": 42.5, **values}
                payload = json.dumps(body, ensure_ascii=ascii_only).encode()
                topic = f"{prefix}/streetlight/{device}/telemetry"
                rows, dead = counts(conn)
                handled = worker.stats.totals()["messages"]
                sender.publish(topic, payload)
                wait_for(
                    lambda: worker.stats.totals()["messages"] > handled,
                    timeout=20,
                    what="the worker to handle the message",
                )
                assert not worker.failed.is_set()
                bad = [f for f in FIELDS if f in values and not accepted(f, values[f])]
                if not bad:
                    assert counts(conn) == (rows + 1, dead)
                    stored = conn.execute(
                        f"SELECT {', '.join(FIELDS)} FROM streetlight_readings "
                        "WHERE device_id = %s",
                        (device,),
                    ).fetchall()
                    assert stored == [tuple(values.get(f) for f in FIELDS)]
                    return
                assert counts(conn) == (rows, dead + 1)
                letter = conn.execute(
                    "SELECT topic, payload, reason_code, reason FROM dead_letters "
                    "ORDER BY id DESC LIMIT 1"
                ).fetchone()
                assert letter is not None
                assert (letter[0], bytes(letter[1]), letter[2]) == (topic, payload, "invalid_field")
                named = {part.split(":")[0] for part in letter[3].split("; ")}
                assert named == set(bad), letter[3]

            check()
    finally:
        sender.close()
