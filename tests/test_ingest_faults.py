"""Faults with exact counts (docs/reliability.md): a killed worker, a broker restart, a cut
between commit and PUBACK, a session takeover, neighbours on one broker, poison messages.
Real Mosquitto and PostgreSQL; nothing is mocked."""

from __future__ import annotations

import logging
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ingest.session import ClaimRefused
from ingest.worker import Worker
from tests.conftest import ADMIN_URL, Broker, wait_for
from tests.mqtt_helpers import (
    MqttCutter,
    Publisher,
    WorkerProcess,
    count,
    iso,
    make_settings,
    register,
    running_worker,
)
from urbanwatch.settings import mqtt_host_port

DEVICES = [("mh-1", "manhole"), ("wl-1", "waterlog"), ("sl-1", "streetlight")]


def rows_and_dead(conn: psycopg.Connection) -> tuple[int, int, int, int]:
    return (
        count(conn, "manhole_readings"),
        count(conn, "waterlog_readings"),
        count(conn, "dead_letters"),
        count(conn, "device_status"),
    )


def test_killed_worker_loses_nothing(conn, database_url, mqtt_url, topic_prefix):
    """SIGKILL mid-stream (no flush, no ack); the restarted worker claims the same client id,
    gets its session back and stores the rest exactly once."""
    devices = [(f"wm-{i:02d}", "watermeter") for i in range(50)]
    register(conn, devices)
    start = datetime.now(UTC) - timedelta(hours=1)

    def publish_range(pub: Publisher, lo: int, hi: int) -> None:
        for n in range(lo, hi):
            ts = start + timedelta(seconds=n // 50)
            pub.publish(
                f"{topic_prefix}/watermeter/{devices[n % 50][0]}/telemetry",
                {"ts": iso(ts), "flow_m3_h": float(n % 97)},
            )

    worker = WorkerProcess(database_url, mqtt_url, topic_prefix)
    try:
        worker.wait_ready()
        with Publisher(mqtt_url) as pub:
            publish_range(pub, 0, 1500)
            wait_for(lambda: count(conn, "watermeter_readings") > 0, what="some rows committed")
            worker.kill()
            publish_range(pub, 1500, 3000)  # queued by the broker for the dead worker's session
        assert count(conn, "watermeter_readings") < 3000
        worker.start()  # the same default client id: the session comes back
        wait_for(lambda: count(conn, "watermeter_readings") == 3000, timeout=30, what="3000 rows")
        assert "session resumed" in worker.log()
        assert worker.terminate() == 0
    finally:
        if worker.proc.poll() is None:
            worker.proc.kill()
    assert count(conn, "watermeter_readings") == 3000
    assert count(conn, "dead_letters") == 0


def _publish_through_restart(broker: Broker, prefix: str, n: int) -> int:
    """Publish n readings before a clean broker restart and n after it; every one is
    acknowledged by the broker (the publisher waits for each PUBACK)."""
    start = datetime.now(UTC) - timedelta(minutes=30)
    with Publisher(broker.url) as pub:
        for i in range(n):
            pub.publish(
                f"{prefix}/manhole/mh-1/telemetry",
                {"ts": iso(start + timedelta(seconds=i)), "tilt_deg": 1.0},
            )
    broker.restart()  # SIGTERM: Mosquitto saves sessions, subscriptions and queues first
    with Publisher(broker.url) as pub:  # published before the worker is back: queued for it
        for i in range(n, 2 * n):
            pub.publish(
                f"{prefix}/manhole/mh-1/telemetry",
                {"ts": iso(start + timedelta(seconds=i)), "tilt_deg": 1.0},
            )
    return 2 * n


def test_broker_restart_loses_nothing_with_the_default_subscription(
    conn, database_url, persistent_broker, topic_prefix
):
    register(conn, DEVICES)
    settings = make_settings(database_url, persistent_broker.url, topic_prefix)
    with running_worker(settings) as worker:
        sent = _publish_through_restart(persistent_broker, topic_prefix, 500)
        wait_for(
            lambda: count(conn, "manhole_readings") == sent, timeout=30, what=f"{sent} readings"
        )
        wait_for(worker.subscribed.is_set, what="the worker back on the restarted broker")
    assert count(conn, "manhole_readings") == sent == 1000
    assert count(conn, "dead_letters") == 0


def test_mosquitto_2_0_forgets_shared_subscriptions_on_restart(
    conn, database_url, persistent_broker, topic_prefix
):
    """Why the default is a plain subscription (docs/scaling.md): on this broker a shared
    subscription is not restored after a restart, so what is published before the workers
    re-subscribe goes nowhere. If this starts failing, the broker keeps shared subscriptions
    now; update docs/scaling.md."""
    version = subprocess.run(
        [persistent_broker.binary, "-h"], capture_output=True, text=True
    ).stdout.split("\n")[0]
    if "2.0.11" not in version:
        pytest.skip(f"characterises Mosquitto 2.0.11; this is {version}")
    register(conn, DEVICES)
    settings = make_settings(
        database_url, persistent_broker.url, topic_prefix, ingest_share_group="ingest"
    )
    n = 200
    start = datetime.now(UTC) - timedelta(minutes=30)
    with running_worker(settings), Publisher(persistent_broker.url) as pub:
        for i in range(n):
            pub.publish(
                f"{topic_prefix}/manhole/mh-1/telemetry",
                {"ts": iso(start + timedelta(seconds=i)), "tilt_deg": 1.0},
            )
        wait_for(lambda: count(conn, "manhole_readings") == n, what=f"{n} readings")
    # The worker has left (its persistent session stays on the broker); the broker restarts
    # and the next n are published while no worker is connected, so none can be delivered
    # live, whatever the machine's speed: they are queued for the session, or lost with it.
    persistent_broker.restart()
    with Publisher(persistent_broker.url) as pub:
        for i in range(n, 2 * n):
            pub.publish(
                f"{topic_prefix}/manhole/mh-1/telemetry",
                {"ts": iso(start + timedelta(seconds=i)), "tilt_deg": 1.0},
            )
    with running_worker(settings), Publisher(persistent_broker.url) as pub:
        pub.publish(  # a marker after the re-subscription
            f"{topic_prefix}/manhole/mh-1/telemetry",
            {"ts": iso(datetime.now(UTC)), "tilt_deg": 2.0},
        )
        wait_for(
            lambda: (
                conn.execute("SELECT count(*) FROM manhole_readings WHERE tilt_deg = 2").fetchone()[
                    0
                ]
                == 1
            ),
            what="the marker",
        )
    assert count(conn, "manhole_readings") == n + 1  # the n published after the restart lost


def test_a_cut_between_commit_and_puback_stores_everything_once(
    conn, database_url, mqtt_url, topic_prefix
):
    """The connection drops after the commit, before the broker gets the PUBACK: the broker
    redelivers (DUP) on the next session, and nothing is stored twice — readings, dead
    letters (incl. a gateway batch's poison element) and status rows without a ts."""
    register(conn, DEVICES)
    cutter = MqttCutter(mqtt_url)
    now = datetime.now(UTC) - timedelta(seconds=5)
    p = topic_prefix
    messages = [
        (f"{p}/manhole/mh-1/telemetry", {"ts": iso(now), "tilt_deg": 3.0}),
        (f"{p}/manhole/mh-1/telemetry", b"{not json"),
        (f"{p}/manhole/mh-1/status", b"offline"),  # a last will: no ts of its own
        (f"{p}/manhole/mh-1/status", {"status": "online", "fw": "2"}),
        (
            f"{p}/gateway/gw-1/telemetry",
            [
                {"device_id": "wl-1", "ts": iso(now), "depth_cm": 4.0},
                {"device_id": "wl-1", "ts": 1e23, "depth_cm": 4.0},
                {"device_id": "sl-1", "ts": iso(now), "power_state": "on"},
            ],
        ),
        (f"{p}/manhole/mh-1/telemetry/", {"ts": iso(now), "tilt_deg": 1.0}),  # bad topic
    ]
    try:
        settings = make_settings(database_url, cutter.url, topic_prefix)
        with running_worker(settings) as worker, Publisher(mqtt_url) as pub:
            cutter.armed.set()
            for topic, payload in messages:
                pub.publish(topic, payload)
            wait_for(lambda: cutter.cuts == 1, what="the cut at the PUBACK")
            wait_for(
                lambda: worker.stats.totals()["messages"] >= 2 * len(messages),
                timeout=20,
                what="the redelivery to be handled",
            )
            wait_for(worker.subscribed.is_set, what="the worker back")
    finally:
        cutter.close()
    assert count(conn, "manhole_readings") == 1
    assert count(conn, "waterlog_readings") == 1
    assert count(conn, "streetlight_readings") == 1
    assert conn.execute(
        "SELECT reason_code, element_index FROM dead_letters ORDER BY reason_code"
    ).fetchall() == [("bad_topic", None), ("invalid_field", 1), ("invalid_json", None)]
    assert conn.execute("SELECT status FROM device_status ORDER BY status").fetchall() == [
        ("offline",),
        ("online",),
    ]
    # every message but the good reading left a receipt: its outputs have no natural key
    assert count(conn, "ingest_receipts") == len(messages) - 1


def test_a_session_takeover_is_reported_and_not_fought(
    conn, database_url, mqtt_url, topic_prefix, caplog
):
    """An outside client connects with the worker's id and reconnects whenever it is
    dropped (Mosquitto 2.0 closes the older connection without saying why): the worker
    reports the takeover and stops instead of taking the session back and forth forever."""
    register(conn, DEVICES)
    settings = make_settings(database_url, mqtt_url, topic_prefix)
    caplog.set_level(logging.INFO)
    with running_worker(settings) as worker:
        intruder = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=worker.client_id, protocol=mqtt.MQTTv5
        )
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 60
        intruder.connect(*mqtt_host_port(mqtt_url), clean_start=False, properties=props)
        intruder.loop_start()
        try:
            wait_for(worker.failed.is_set, timeout=30, what="the worker to give up its session")
            assert "took over this worker's session" in caplog.text
            connections = caplog.text.count("connected to ")
            wait_for(intruder.is_connected, what="the intruder to keep the session")
            assert not worker.connected.is_set()
        finally:
            intruder.disconnect()
            intruder.loop_stop()
    assert caplog.text.count("connected to ") == connections  # no reconnect after it gave up
    assert connections <= 1 + settings.ingest_takeover_drops


def test_a_second_worker_for_one_deployment_is_refused(conn, database_url, mqtt_url, topic_prefix):
    settings = make_settings(
        database_url, mqtt_url, topic_prefix, ingest_client_id=None, ingest_claim_wait_s=0.2
    )
    with running_worker(settings) as first:
        second = Worker(settings)
        with pytest.raises(ClaimRefused, match="another ingest worker is running"):
            second.start()
        assert first.client_id.startswith("urbanwatch-ingest-")
    third = Worker(settings)  # the first has stopped: its id is free again, and the same
    third.start()
    try:
        assert third.client_id == first.client_id
    finally:
        third.stop()


def _new_database(template: str) -> str:
    name = f"uw_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
    return name


def test_two_deployments_on_one_broker_with_defaults_do_not_cross_talk(
    template_db, mqtt_url, topic_prefix
):
    """Two deployments (own prefix, own database) on one host and broker, both workers with
    default client ids: each stores exactly its own readings."""
    names = [_new_database(template_db) for _ in range(2)]
    urls = [psycopg.conninfo.make_conninfo(ADMIN_URL, dbname=n) for n in names]
    prefixes = [f"{topic_prefix}-a", f"{topic_prefix}-b"]
    start = datetime.now(UTC) - timedelta(minutes=20)
    try:
        for url in urls:
            with psycopg.connect(url, autocommit=True) as c:
                register(c, DEVICES)
        settings = [
            make_settings(u, mqtt_url, p, ingest_client_id=None)
            for u, p in zip(urls, prefixes, strict=True)
        ]
        with (
            running_worker(settings[0]) as a,
            running_worker(settings[1]) as b,
            Publisher(mqtt_url) as pub,
        ):
            assert a.client_id != b.client_id
            for i in range(300):
                for prefix in prefixes:
                    pub.publish(
                        f"{prefix}/manhole/mh-1/telemetry",
                        {"ts": iso(start + timedelta(seconds=i)), "tilt_deg": 1.0},
                    )
            for url in urls:
                with psycopg.connect(url, autocommit=True) as c:
                    wait_for(lambda c=c: count(c, "manhole_readings") == 300, what="300 rows")
            assert a.stats.totals()["messages"] == b.stats.totals()["messages"] == 300
        for url in urls:
            with psycopg.connect(url, autocommit=True) as c:
                assert rows_and_dead(c) == (300, 0, 0, 0)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            for n in names:
                admin.execute(f'DROP DATABASE IF EXISTS "{n}" WITH (FORCE)')


def test_a_resumed_session_drops_subscriptions_the_worker_no_longer_wants(
    conn, database_url, mqtt_url, topic_prefix
):
    register(conn, DEVICES)
    old, new = f"{topic_prefix}-old", f"{topic_prefix}-new"
    client_id = f"{topic_prefix}-w"
    with running_worker(make_settings(database_url, mqtt_url, old, ingest_client_id=client_id)):
        pass  # the session now holds old/#, kept by the broker for an hour
    settings = make_settings(database_url, mqtt_url, new, ingest_client_id=client_id)
    with running_worker(settings) as worker, Publisher(mqtt_url) as pub:
        assert worker.claim.filters_before() == [f"{new}/#"]
        ts = iso(datetime.now(UTC))
        pub.publish(f"{old}/manhole/mh-1/telemetry", {"ts": ts, "tilt_deg": 1.0})
        pub.publish(f"{new}/manhole/mh-1/telemetry", {"ts": ts, "tilt_deg": 2.0})
        wait_for(lambda: count(conn, "manhole_readings") == 1, what="the new prefix's reading")
        assert worker.stats.totals()["ignored"] == 0  # old/# was unsubscribed: not delivered
    assert conn.execute("SELECT tilt_deg FROM manhole_readings").fetchall() == [(2.0,)]


def test_an_unknown_old_subscription_is_never_stored(conn, database_url, mqtt_url, topic_prefix):
    """A session the worker has no record of (an id reused from elsewhere) still holds a
    subscription to another prefix: those messages are acknowledged, counted, not stored."""
    register(conn, DEVICES)
    client_id = f"{topic_prefix}-reused"
    other = f"{topic_prefix}-other"
    squatter = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    squatter.connect(*mqtt_host_port(mqtt_url), clean_start=True, properties=props)
    squatter.subscribe(f"{other}/#", qos=1)
    squatter.loop_start()
    wait_for(squatter.is_connected, what="the other client")
    squatter.disconnect()
    squatter.loop_stop()
    settings = make_settings(database_url, mqtt_url, topic_prefix, ingest_client_id=client_id)
    with running_worker(settings) as worker, Publisher(mqtt_url) as pub:
        pub.publish(
            f"{other}/manhole/mh-1/telemetry", {"ts": iso(datetime.now(UTC)), "tilt_deg": 1}
        )
        wait_for(lambda: worker.stats.totals()["ignored"] == 1, what="the foreign message")
    assert rows_and_dead(conn) == (0, 0, 0, 0)


def test_what_the_database_refuses_is_isolated_to_one_element(
    conn, database_url, mqtt_url, topic_prefix
):
    """A poison element inside a gateway batch that only the database refuses (here a CHECK
    constraint the parser cannot know): its siblings are stored, it is dead-lettered with its
    index, the worker goes on, and the next message is stored as usual."""
    register(conn, DEVICES)
    conn.execute(
        "ALTER TABLE waterlog_readings ADD CONSTRAINT no_123 CHECK (depth_cm IS DISTINCT FROM 123)"
    )
    ts = iso(datetime.now(UTC) - timedelta(seconds=10))
    batch = [
        {"device_id": "wl-1", "ts": ts, "depth_cm": 4.0},
        {"device_id": "mh-1", "ts": ts, "tilt_deg": 2.0},
        {"device_id": "wl-1", "ts": iso(datetime.now(UTC)), "depth_cm": 123.0},
    ]
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)) as worker,
        Publisher(mqtt_url) as pub,
    ):
        pub.publish(f"{topic_prefix}/gateway/gw-1/telemetry", batch)
        wait_for(lambda: count(conn, "dead_letters") == 1, what="the refused element")
        pub.publish(
            f"{topic_prefix}/manhole/mh-1/telemetry", {"ts": iso(datetime.now(UTC)), "tilt_deg": 1}
        )
        wait_for(lambda: count(conn, "manhole_readings") == 2, what="the next message")
        assert not worker.failed.is_set()
    [(index, code, reason)] = conn.execute(
        "SELECT element_index, reason_code, reason FROM dead_letters"
    ).fetchall()
    assert (index, code) == (2, "db_rejected")
    assert reason.startswith("[2].") and "no_123" in reason
    assert count(conn, "waterlog_readings") == 1


def test_a_nul_in_an_extra_field_is_one_dead_letter_not_a_crash_loop(
    conn, database_url, mqtt_url, topic_prefix
):
    """The defect A1 reproduction: before, the isolation path died and every restart died
    again on the same unacknowledged message."""
    register(conn, DEVICES)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    bad = b'{"ts": %d, "tilt_deg": 1, "note": "a\\u0000b"}' % now_ms
    with (
        running_worker(make_settings(database_url, mqtt_url, topic_prefix)) as worker,
        Publisher(mqtt_url) as pub,
    ):
        pub.publish(f"{topic_prefix}/manhole/mh-1/telemetry", bad)
        pub.publish(f"{topic_prefix}/manhole/mh-1/status", {"status": "online", "x": "\u0000"})
        pub.publish(f"{topic_prefix}/manhole/mh-1/telemetry", {"ts": now_ms - 1000, "tilt_deg": 2})
        wait_for(lambda: worker.stats.totals()["messages"] == 3, what="3 messages")
        assert not worker.failed.is_set()
    assert conn.execute(
        "SELECT reason_code, reason, payload FROM dead_letters ORDER BY id"
    ).fetchall() == [
        (
            "db_rejected",
            "note: contains a NUL character (U+0000), which the database cannot store",
            bad,
        ),
        (
            "db_rejected",
            "x: contains a NUL character (U+0000), which the database cannot store",
            b'{"status":"online","x":"\\u0000"}',
        ),
    ]
    assert count(conn, "manhole_readings") == 1


def test_an_unreachable_broker_is_said_clearly(conn, database_url, topic_prefix, caplog):
    caplog.set_level(logging.WARNING)
    settings = make_settings(database_url, "mqtt://127.0.0.1:1", topic_prefix)
    worker = Worker(settings)
    worker.start()
    try:
        wait_for(lambda: "cannot reach the MQTT broker" in caplog.text, what="the log line")
    finally:
        worker.stop()
    assert "mqtt://127.0.0.1:1 ([Errno 111] Connection refused)" in caplog.text
