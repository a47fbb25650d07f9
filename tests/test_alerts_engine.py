"""The alert engine end to end on the real broker and database: readings in, alerts and
events out; dedup; offline on a timer and across restarts; SIGKILL mid-stream; partitions;
rule reloads; work windows; group detectors."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from alerts.engine import partition_of
from tests.alerts_helpers import EngineProcess, alerts, engine_settings, events, running_engine
from tests.conftest import wait_for
from tests.mqtt_helpers import Publisher, register
from urbanwatch.alerting import Device, Transition, parse_rules
from urbanwatch.alerting.loader import default_rules_text
from urbanwatch.audit import Actor
from urbanwatch.queries import rules as rule_queries
from urbanwatch.queries.alerts import Change
from urbanwatch.topics import status_topic, telemetry_topic

T0 = datetime.now(UTC) - timedelta(hours=1)


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def store(conn: psycopg.Connection, text: str) -> int:
    return rule_queries.store_rule_set(conn, parse_rules(text), Actor.service("alerts-engine-test"))


def fast_offline(seconds: float) -> str:
    return default_rules_text().replace(
        "after_s: 2 * coalesce(attrs.heartbeat_s, heartbeat_s) + grace_s", f"after_s: '{seconds}'"
    )


def test_readings_open_dedup_and_resolve(conn, database_url, mqtt_url, topic_prefix) -> None:
    register(conn, [("MH-1", "manhole"), ("MH-2", "manhole")])
    settings = engine_settings(database_url, mqtt_url, topic_prefix)
    with running_engine(settings), Publisher(mqtt_url) as pub:
        topic = telemetry_topic(topic_prefix, "manhole", "MH-1")
        for i in range(5):  # five readings keep matching: one alert
            pub.publish(topic, {"ts": ms(T0) + i * 1000, "cover_open": True})
        pub.publish(
            telemetry_topic(topic_prefix, "manhole", "MH-2"), {"ts": ms(T0), "ch4_pct_lel": 60.0}
        )
        wait_for(lambda: len(alerts(conn)) == 2, what="two alerts")
        pub.publish(topic, {"ts": ms(T0) + 9000, "cover_open": False})
        wait_for(lambda: ("MH_OPEN", "MH-1", "resolved") in events(conn), what="the cover to close")
    assert sorted(alerts(conn)) == [
        ("MH_GAS_L2", "MH-2", "open", True, "critical", 0),
        ("MH_OPEN", "MH-1", "resolved", False, "critical", 0),
    ]
    assert events(conn) in (
        [
            ("MH_OPEN", "MH-1", "opened"),
            ("MH_GAS_L2", "MH-2", "opened"),
            ("MH_OPEN", "MH-1", "resolved"),
        ],
        [
            ("MH_GAS_L2", "MH-2", "opened"),
            ("MH_OPEN", "MH-1", "opened"),
            ("MH_OPEN", "MH-1", "resolved"),
        ],
    )
    row = conn.execute(
        "SELECT opened_at, resolved_by, device_id, kind, district FROM alerts WHERE rule_id = 'MH_OPEN'"
    ).fetchone()
    assert row == (
        T0.replace(microsecond=T0.microsecond // 1000 * 1000),
        "engine",
        "MH-1",
        "manhole",
        "wenfeng",
    )


def test_work_window_turns_mh_open_into_info(conn, database_url, mqtt_url, topic_prefix) -> None:
    register(conn, [("MH-1", "manhole")])
    conn.execute(
        "INSERT INTO work_windows (device_id, starts_at, ends_at, work_order, created_by) VALUES ('MH-1', %s, %s, 'WO-1', 'user:test')",
        (T0 - timedelta(minutes=5), T0 + timedelta(hours=1)),
    )
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        pub.publish(
            telemetry_topic(topic_prefix, "manhole", "MH-1"), {"ts": ms(T0), "cover_open": True}
        )
        wait_for(lambda: alerts(conn), what="the alert")
    assert alerts(conn) == [("MH_OPEN", "MH-1", "open", True, "info", 0)]


def test_offline_fires_on_time_without_messages_and_clears(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    register(conn, [("MH-1", "manhole")])
    store(conn, fast_offline(1.0))
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        sent = time.time()
        pub.publish(
            telemetry_topic(topic_prefix, "manhole", "MH-1"), {"ts": ms(T0), "tilt_deg": 1.0}
        )
        wait_for(lambda: alerts(conn), timeout=10, what="the offline alert")
        fired = time.time()
        assert alerts(conn) == [("MH_OFFLINE", "MH-1", "open", True, "warning", 0)]
        assert 1.0 <= fired - sent < 3.0
        pub.publish(status_topic(topic_prefix, "manhole", "MH-1"), {"status": "online"})
        wait_for(lambda: alerts(conn)[0][2] == "resolved", what="the device to come back")


def test_offline_fires_after_a_restart(conn, database_url, mqtt_url, topic_prefix) -> None:
    """Deadlines are rebuilt on start: from the saved state (MH-1, seen by the first engine)
    and from the stored readings (MH-2, which that engine never saw)."""
    register(conn, [("MH-1", "manhole"), ("MH-2", "manhole")])
    store(conn, fast_offline(2.0))
    settings = engine_settings(database_url, mqtt_url, topic_prefix)
    with running_engine(settings), Publisher(mqtt_url) as pub:
        pub.publish(
            telemetry_topic(topic_prefix, "manhole", "MH-1"), {"ts": ms(T0), "tilt_deg": 1.0}
        )
        wait_for(
            lambda: conn.execute("SELECT count(*) FROM alert_device_state").fetchone()[0] == 1,
            what="state saved",
        )
    conn.execute(
        "INSERT INTO manhole_readings (ts, device_id, received_at, tilt_deg) VALUES (%s, 'MH-2', now(), 1.0)",
        (T0,),
    )
    stopped = time.time()
    wait_for(
        lambda: time.time() > stopped + 2.5, timeout=5, what="both deadlines to pass while down"
    )
    assert alerts(conn) == []
    with running_engine(settings):
        wait_for(lambda: len(alerts(conn)) == 2, what="offline alerts after the restart")
    assert sorted(alerts(conn)) == [
        ("MH_OFFLINE", "MH-1", "open", True, "warning", 0),
        ("MH_OFFLINE", "MH-2", "open", True, "warning", 0),
    ]


def test_last_will_counts_when_the_rule_says_so(conn, database_url, mqtt_url, topic_prefix) -> None:
    register(conn, [("WL-1", "waterlog")])
    text = default_rules_text().replace(
        "title: 积水监测点离线 Waterlogging sensor offline\n    severity: warning\n    params: {on_last_will: false}",
        "title: 积水监测点离线 Waterlogging sensor offline\n    severity: warning\n    params: {on_last_will: true}",
    )
    store(conn, text)
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        pub.publish(status_topic(topic_prefix, "waterlog", "WL-1"), "offline")
        wait_for(lambda: alerts(conn), what="the offline alert")
        assert alerts(conn) == [("WL_OFFLINE", "WL-1", "open", True, "warning", 0)]
        pub.publish(
            telemetry_topic(topic_prefix, "waterlog", "WL-1"), {"ts": ms(T0), "depth_cm": 0.0}
        )
        wait_for(lambda: alerts(conn)[0][2] == "resolved", what="the sensor back")


def test_sigkill_mid_stream_loses_and_repeats_nothing(
    conn, database_url, mqtt_url, topic_prefix, persistent_broker
) -> None:
    """Covers open and close six times each; the engine is killed with SIGKILL while the
    stream runs and restarted: every device ends with exactly the six events it should."""
    mqtt_url = persistent_broker.url
    devices = [f"MH-{i:03d}" for i in range(40)]
    register(conn, [(d, "manhole") for d in devices])
    engine = EngineProcess(database_url, mqtt_url, topic_prefix)
    expected = ["opened", "resolved", "reopened", "resolved", "reopened", "resolved"]
    try:
        with Publisher(mqtt_url) as pub:
            for step in range(6):
                for d in devices:
                    pub.publish(
                        telemetry_topic(topic_prefix, "manhole", d),
                        {"ts": ms(T0) + step * 1000, "cover_open": step % 2 == 0},
                    )
                if step == 1:
                    wait_for(
                        lambda: len(events(conn)) >= 30,
                        timeout=20,
                        what="some events before the kill",
                    )
                    engine.kill()
                    engine.start()
        wait_for(lambda: len(events(conn)) >= len(devices) * 6, timeout=30, what="every event")
        wait_for(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM alert_device_state WHERE (state->>'last_ts')::float >= %s",
                    (T0.timestamp() + 5 - 0.01,),
                ).fetchone()[0]
                == len(devices)
            ),
            timeout=10,
            what="every reading evaluated",
        )
    finally:
        engine.stop()
    by_device: dict[str, list[str]] = {}
    for _rule, subject, event in events(conn):
        by_device.setdefault(subject, []).append(event)
    assert by_device == {d: expected for d in devices}
    assert sorted(alerts(conn)) == [
        ("MH_OPEN", d, "resolved", False, "critical", 2) for d in devices
    ]


def test_partitions_split_the_devices(conn, database_url, mqtt_url, topic_prefix) -> None:
    devices = [f"MH-{i:03d}" for i in range(30)]
    register(conn, [(d, "manhole") for d in devices])
    settings = engine_settings(database_url, mqtt_url, topic_prefix, alerts_partitions=2)
    with running_engine(settings) as a, running_engine(settings) as b, Publisher(mqtt_url) as pub:
        assert {a.engine.partition, b.engine.partition} == {(0, 2), (1, 2)}
        assert set(a.engine.devices).isdisjoint(b.engine.devices)
        assert set(a.engine.devices) | set(b.engine.devices) == set(devices)
        for d in devices:
            pub.publish(
                telemetry_topic(topic_prefix, "manhole", d), {"ts": ms(T0), "ch4_pct_lel": 70.0}
            )
        wait_for(lambda: len(events(conn)) >= len(devices), what="one alert per device")
        wait_for(
            lambda: a.stats["messages"] + b.stats["messages"] == 2 * len(devices),
            what="both engines saw everything",
        )
    assert sorted(e[1] for e in events(conn)) == devices  # one event each, from one engine
    assert {partition_of(d, 2) for d in a.engine.devices} == {a.engine.partition[0]}


def test_rules_reload_and_a_broken_set_keeps_the_last_good(
    conn, database_url, mqtt_url, topic_prefix, caplog
) -> None:
    register(conn, [("MH-1", "manhole"), ("MH-2", "manhole"), ("MH-3", "manhole")])
    with (
        running_engine(engine_settings(database_url, mqtt_url, topic_prefix)) as engine,
        Publisher(mqtt_url) as pub,
    ):
        version = store(
            conn,
            default_rules_text().replace(
                "severity: critical\n    severity_in_work_window: info",
                "severity: alarm\n    severity_in_work_window: info",
            ),
        )
        wait_for(lambda: engine.rules_version == version, what="the new rules")
        pub.publish(
            telemetry_topic(topic_prefix, "manhole", "MH-1"), {"ts": ms(T0), "cover_open": True}
        )
        wait_for(lambda: alerts(conn), what="an alert")
        assert alerts(conn)[0][4] == "alarm"
        # A set stored around the validation (a bad hand edit): refused, the last good kept.
        with conn.transaction():
            conn.execute(
                "UPDATE alert_rules SET definition = definition || '{\"trigger\": \"cover_open ==\"}' WHERE rule_id = 'MH_OPEN'"
            )
            bad = conn.execute(
                "INSERT INTO alert_rule_sets (loaded_by) VALUES ('user:test') RETURNING version"
            ).fetchone()[0]
        wait_for(lambda: engine.rules_version == bad, what="the broken set to be seen")
        pub.publish(
            telemetry_topic(topic_prefix, "manhole", "MH-2"), {"ts": ms(T0), "cover_open": True}
        )
        wait_for(lambda: len(alerts(conn)) == 2, what="a second alert")
    assert [a[4] for a in alerts(conn)] == ["alarm", "alarm"]
    assert any("refused, keeping the last good set" in r.message for r in caplog.records)


class CircuitDetector:
    """A toy group detector: two lamps of one circuit losing supply open a circuit alert
    that suppresses the per-lamp alerts."""

    def __init__(self) -> None:
        self.out: dict[str, set[str]] = {}

    def on_reading(self, device: Device, fields: Mapping[str, Any], ts: float) -> list[Change]:
        return []

    def on_transition(self, tr: Transition) -> list[Change]:
        if tr.rule.id != "SL_SUPPLY_LOSS" or tr.action != "open":
            return []
        circuit = str(tr.device.attrs["circuit_id"])
        lamps = self.out.setdefault(circuit, set())
        lamps.add(tr.device.device_id)
        if len(lamps) < 2:
            return []
        at = datetime.fromtimestamp(tr.at, UTC)
        return [
            Change(
                "open",
                "SL_CIRCUIT_SUPPLY_LOSS",
                circuit,
                "streetlight",
                "alarm",
                "回路失电 Circuit supply lost",
                at,
                at,
                district=tr.device.district,
                detail={"lamps": len(lamps)},
                children=tuple(("SL_SUPPLY_LOSS", lamp) for lamp in sorted(lamps)),
                suppress_children=True,
            )
        ]


def test_a_group_detector_opens_a_parent_and_suppresses_children(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) VALUES ('SL-1', 'streetlight', 'wenfeng', 36.1, 114.3, '{\"circuit_id\": \"CIR-1\", \"rated_power_w\": 100}'), ('SL-2', 'streetlight', 'wenfeng', 36.1, 114.3, '{\"circuit_id\": \"CIR-1\", \"rated_power_w\": 100}')"
    )
    # 22:00 in Anyang on the current local day, or the previous one: always within 24 h.
    local_now = datetime.now(UTC) + timedelta(hours=8)
    at = local_now.replace(hour=22, minute=0, second=0, microsecond=0) - timedelta(hours=8)
    if at > datetime.now(UTC):
        at -= timedelta(days=1)
    with (
        running_engine(
            engine_settings(database_url, mqtt_url, topic_prefix), detectors=[CircuitDetector()]
        ),
        Publisher(mqtt_url) as pub,
    ):
        for lamp in ("SL-1", "SL-2"):
            for step in (0, 180):
                pub.publish(
                    telemetry_topic(topic_prefix, "streetlight", lamp),
                    {"ts": ms(at) + step * 1000, "supply_voltage_v": 0.0, "active_power_w": 0.0},
                )
        wait_for(lambda: len(alerts(conn)) == 3, what="two lamp alerts and the circuit's")
    rows = conn.execute(
        "SELECT a.subject, a.suppressed, p.subject FROM alerts a LEFT JOIN alerts p ON p.id = a.parent_id ORDER BY a.id"
    ).fetchall()
    assert rows == [("SL-1", True, "CIR-1"), ("SL-2", True, "CIR-1"), ("CIR-1", False, None)]
    assert [e for e in events(conn) if e[2] == "suppressed"] == [
        ("SL_SUPPLY_LOSS", "SL-1", "suppressed"),
        ("SL_SUPPLY_LOSS", "SL-2", "suppressed"),
    ]
