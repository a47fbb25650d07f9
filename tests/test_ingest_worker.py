"""The ingest worker end to end: real Mosquitto in, real PostgreSQL out."""

from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta

import orjson
import psycopg
from psycopg import sql

from tests.conftest import wait_for
from tests.mqtt_helpers import Publisher, count, iso, make_settings, register, running_worker

DEVICES = [
    ("mh-1", "manhole"),
    ("mh-2", "manhole"),
    ("wl-1", "waterlog"),
    ("sl-1", "streetlight"),
    ("wm-1", "watermeter"),
]


def test_readings_of_every_kind_land_exactly(conn, database_url, mqtt_url, topic_prefix):
    register(conn, DEVICES)
    ts = datetime.now(UTC).replace(microsecond=123000) - timedelta(seconds=30)
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        pub.publish(
            f"{topic_prefix}/manhole/mh-1/telemetry",
            {
                "ts": iso(ts),
                "tilt_deg": 12.5,
                "cover_open": True,
                "water_distance_m": 1.8,
                "battery_v": 3.41,
                "msg_type": "alarm",
            },
        )
        pub.publish(
            f"{topic_prefix}/waterlog/wl-1/telemetry",
            {"ts": int(ts.timestamp() * 1000), "depth_cm": 17.0, "rain_mm": 4.2},
        )
        pub.publish(
            f"{topic_prefix}/streetlight/sl-1/telemetry",
            {
                "ts": iso(ts),
                "power_state": "on",
                "active_power_w": 44.66,
                "supply_voltage_v": 241.18,
                "supply_current_a": 0.206,
                "power_factor": 0.907,
            },
        )
        pub.publish(
            f"{topic_prefix}/watermeter/wm-1/telemetry",
            {"ts": iso(ts), "flow_m3_h": 86.4, "fwd_total_m3": 123456.7, "pressure_mpa": 0.32},
        )
        wait_for(
            lambda: (
                count(conn, "watermeter_readings")
                + count(conn, "manhole_readings")
                + count(conn, "waterlog_readings")
                + count(conn, "streetlight_readings")
                == 4
            ),
            what="4 readings",
        )
    assert conn.execute(
        "SELECT ts, device_id, tilt_deg, cover_open, water_distance_m, battery_v, "
        "msg_type FROM manhole_readings"
    ).fetchall() == [(ts, "mh-1", 12.5, True, 1.8, 3.41, "alarm")]
    assert conn.execute("SELECT ts, depth_cm, rain_mm FROM waterlog_readings").fetchall() == [
        (ts, 17.0, 4.2)
    ]
    assert conn.execute(
        "SELECT power_state, active_power_w, supply_voltage_v, supply_current_a, "
        "power_factor FROM streetlight_readings"
    ).fetchall() == [("on", 44.66, 241.18, 0.206, 0.907)]
    assert conn.execute(
        "SELECT flow_m3_h, fwd_total_m3, pressure_mpa FROM watermeter_readings"
    ).fetchall() == [(86.4, 123456.7, 0.32)]
    assert count(conn, "dead_letters") == 0


def test_bad_messages_are_dead_lettered_byte_for_byte(conn, database_url, mqtt_url, topic_prefix):
    register(conn, DEVICES)
    now = datetime.now(UTC)
    p = topic_prefix
    bad = [
        (f"{p}/manhole/mh-1/telemetry", b"{oops", "invalid_json"),
        (f"{p}/manhole/mh-1/telemetry", b"\x00\xff binary junk", "invalid_json"),
        (f"{p}/manhole/ghost/telemetry", b'{"ts": 1, "tilt_deg": 1}', "unknown_device"),
        (
            f"{p}/waterlog/mh-1/telemetry",
            b'{"ts": "%s", "depth_cm": 3}' % iso(now).encode(),
            "kind_mismatch",
        ),
        (f"{p}/manhole/mh-1/telemetry", b'{"tilt_deg": 3}', "missing_field"),
        (
            f"{p}/manhole/mh-1/telemetry",
            b'{"ts": "%s", "tilt_deg": 270}' % iso(now).encode(),
            "out_of_range",
        ),
        (
            f"{p}/manhole/mh-1/telemetry",
            b'{"ts": "%s", "cover_open": "ajar"}' % iso(now).encode(),
            "invalid_field",
        ),
        (
            f"{p}/manhole/mh-1/telemetry",
            b'{"ts": "%s", "fw": "1"}' % iso(now).encode(),
            "no_measurement",
        ),
        (
            f"{p}/manhole/mh-1/telemetry",
            b'{"ts": "%s", "tilt_deg": 1}' % iso(now + timedelta(days=2)).encode(),
            "future_timestamp",
        ),
        (
            f"{p}/manhole/mh-1/telemetry",
            b'{"ts": "%s", "tilt_deg": 1}' % iso(now - timedelta(days=9)).encode(),
            "stale_timestamp",
        ),
        (f"{p}/manhole/mh-1/telemetry", b'{"ts": 1, "pad": "%s"}' % (b"x" * 300_000), "oversized"),
        (f"{p}/lamp/sl-1/telemetry", b'{"ts": 1}', "bad_topic"),
    ]
    with running_worker(make_settings(database_url, mqtt_url, p)), Publisher(mqtt_url) as pub:
        for topic, payload, _ in bad:
            pub.publish(topic, payload)
        wait_for(lambda: count(conn, "dead_letters") == len(bad), what="every dead letter")
    stored = conn.execute("SELECT topic, payload, reason_code, reason FROM dead_letters").fetchall()
    assert sorted((t, bytes(pl), c) for t, pl, c, _ in stored) == sorted(bad)
    reasons = {c: r for _, _, c, r in stored}
    assert reasons["out_of_range"].startswith("tilt_deg:")
    assert reasons["invalid_field"].startswith("cover_open:")
    assert reasons["missing_field"].startswith("ts:")
    assert count(conn, "manhole_readings") == 0


def test_gateway_batch_keeps_good_siblings(conn, database_url, mqtt_url, topic_prefix):
    register(conn, DEVICES)
    ts = iso(datetime.now(UTC) - timedelta(seconds=5))
    batch = [
        {"device_id": "mh-1", "ts": ts, "tilt_deg": 1.5},
        {"device_id": "mh-2", "ts": ts, "tilt_deg": 999},
        {"device_id": "wl-1", "ts": ts, "depth_cm": 3.0},
        {"device_id": "nobody", "ts": ts, "depth_cm": 3.0},
    ]
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        pub.publish(f"{topic_prefix}/gateway/gw-1/telemetry", batch)
        wait_for(lambda: count(conn, "dead_letters") == 2, what="2 dead letters")
    assert conn.execute("SELECT device_id FROM manhole_readings").fetchall() == [("mh-1",)]
    assert conn.execute("SELECT device_id FROM waterlog_readings").fetchall() == [("wl-1",)]
    assert conn.execute(
        "SELECT element_index, device_id, reason_code FROM dead_letters ORDER BY 1"
    ).fetchall() == [(1, "mh-2", "out_of_range"), (3, "nobody", "unknown_device")]


def test_redelivered_message_adds_no_row(conn, database_url, mqtt_url, topic_prefix):
    register(conn, DEVICES)
    payload = {"ts": iso(datetime.now(UTC)), "tilt_deg": 2.0}
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)) as worker,
        Publisher(mqtt_url) as pub,
    ):
        for _ in range(3):
            pub.publish(f"{topic_prefix}/manhole/mh-1/telemetry", payload)
        wait_for(lambda: worker.stats.totals()["messages"] == 3, what="3 messages handled")
    assert count(conn, "manhole_readings") == 1
    assert worker.stats.totals()["duplicates"] == 2


def test_device_registered_after_start_is_accepted(conn, database_url, mqtt_url, topic_prefix):
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        register(conn, [("late-1", "waterlog")])  # the worker's cache has not seen it
        pub.publish(
            f"{topic_prefix}/waterlog/late-1/telemetry",
            {"ts": iso(datetime.now(UTC)), "depth_cm": 2.0},
        )
        wait_for(lambda: count(conn, "waterlog_readings") == 1, what="the late device's reading")
    assert count(conn, "dead_letters") == 0


def test_status_and_last_will(conn, database_url, mqtt_url, topic_prefix):
    register(conn, DEVICES)
    status_topic = f"{topic_prefix}/manhole/mh-2/status"
    with running_worker(make_settings(database_url, mqtt_url, topic_prefix)):
        device = Publisher(mqtt_url, topic=status_topic, payload="offline", qos=1)
        device.publish(status_topic, {"status": "online", "fw": "2.1"})
        device.client.loop_stop()
        sock = device.client.socket()
        sock.shutdown(socket.SHUT_RDWR)  # drop the connection uncleanly: the broker sends the will
        sock.close()
        wait_for(lambda: count(conn, "device_status") == 2, what="online and last-will rows")
    rows = conn.execute("SELECT status, detail FROM device_status ORDER BY received_at").fetchall()
    assert rows == [("online", {"fw": "2.1"}), ("offline", None)]


def test_two_workers_split_the_load_with_no_loss(conn, database_url, mqtt_url, topic_prefix):
    devices = [(f"mh-{i:03d}", "manhole") for i in range(100)]
    register(conn, devices)
    settings = make_settings(database_url, mqtt_url, topic_prefix, ingest_share_group="ingest")
    start = datetime.now(UTC) - timedelta(minutes=30)
    with (
        running_worker(settings, client_id=f"{topic_prefix}-a") as a,
        running_worker(settings, client_id=f"{topic_prefix}-b") as b,
        Publisher(mqtt_url) as pub,
    ):
        for n in range(2000):
            device_id = devices[n % 100][0]
            ts = start + timedelta(seconds=n // 100)
            pub.publish(
                f"{topic_prefix}/manhole/{device_id}/telemetry", {"ts": iso(ts), "tilt_deg": 1.0}
            )
        wait_for(lambda: count(conn, "manhole_readings") == 2000, timeout=30, what="2000 rows")
        handled = (a.stats.totals()["messages"], b.stats.totals()["messages"])
    assert sum(handled) == 2000
    assert min(handled) > 0, f"the shared subscription did not split the load: {handled}"
    assert count(conn, "manhole_readings") == 2000


def test_database_outage_is_survived(conn, database_url, mqtt_url, topic_prefix, caplog):
    register(conn, DEVICES)
    dbname = conn.info.dbname
    admin = psycopg.connect(
        database_url.replace(f"dbname={dbname}", "dbname=postgres"), autocommit=True
    )
    settings = make_settings(
        database_url, mqtt_url, topic_prefix, ingest_retry_initial_s=0.1, ingest_retry_max_s=0.5
    )
    start = datetime.now(UTC) - timedelta(minutes=10)
    try:
        with running_worker(settings) as worker, Publisher(mqtt_url) as pub:
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(dbname))
            )
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                "AND pid <> pg_backend_pid()",
                (dbname,),
            )
            for n in range(300):
                pub.publish(
                    f"{topic_prefix}/manhole/mh-1/telemetry",
                    {"ts": iso(start + timedelta(seconds=n)), "tilt_deg": 1.0},
                )
            wait_for(lambda: "database unavailable" in caplog.text, what="a retry log line")
            assert worker.stats.totals()["readings"] == 0
            admin.execute(
                sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(dbname))
            )
            wait_for(
                lambda: worker.stats.totals()["readings"] == 300, timeout=20, what="300 readings"
            )
    finally:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(dbname))
        )
        admin.close()
    with psycopg.connect(database_url) as fresh:
        assert count(fresh, "manhole_readings") == 300


def test_messages_with_mqtt5_properties_take_paho_s_own_path(
    conn, database_url, mqtt_url, topic_prefix
):
    """ingest/client.py decodes property-less PUBLISH packets itself; others go to paho."""
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    register(conn, DEVICES)
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("gateway", "gw-9")
    props.ContentType = "application/json"
    body = orjson.dumps({"ts": iso(datetime.now(UTC)), "depth_cm": 7.5})
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)),
        Publisher(mqtt_url) as pub,
    ):
        info = pub.client.publish(
            f"{topic_prefix}/waterlog/wl-1/telemetry", body, qos=1, properties=props
        )
        info.wait_for_publish(timeout=10)
        pub.publish(
            f"{topic_prefix}/waterlog/wl-1/telemetry",
            {"ts": iso(datetime.now(UTC) - timedelta(seconds=1)), "depth_cm": 2.5},
        )
        wait_for(lambda: count(conn, "waterlog_readings") == 2, what="both readings")
    assert conn.execute("SELECT depth_cm FROM waterlog_readings ORDER BY ts").fetchall() == [
        (2.5,),
        (7.5,),
    ]


def test_a_writer_bug_stops_the_worker_instead_of_stalling_it(
    conn, database_url, mqtt_url, topic_prefix
):
    register(conn, DEVICES)
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)) as worker,
        Publisher(mqtt_url) as pub,
    ):

        def broken(*args):
            raise RuntimeError("a bug")

        worker.writer._store = broken  # type: ignore[method-assign]
        pub.publish(
            f"{topic_prefix}/manhole/mh-1/telemetry",
            {"ts": iso(datetime.now(UTC)), "tilt_deg": 1.0},
        )
        wait_for(worker.failed.is_set, what="the worker to report its failure")
    assert count(conn, "manhole_readings") == 0  # nothing stored, so nothing was acknowledged
