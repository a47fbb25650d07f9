"""Broker accounts enforced by a real Mosquitto 2.0 (tests/mqtt_broker_auth.py): credentials
issued, rotated and revoked with the `urbanwatch` command, applied with a reload, and ingest
and the simulator working through their service accounts into the database."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta

import orjson
import pytest

from simulators.publisher import Publisher as SimPublisher
from tests.conftest import wait_for
from tests.mqtt_broker_auth import ACCEPTED, NOT_AUTHORIZED, Client, connack_of
from tests.mqtt_helpers import WorkerProcess, count, iso, make_settings, register, running_worker
from urbanwatch import cli
from urbanwatch.credentials.hashing import verify_password
from urbanwatch.errors import RuntimeProblem

INGEST_ID = "broker-auth-ingest"
DEVICES = [("mh-1", "manhole"), ("mh-2", "manhole"), ("wl:1", "waterlog")]


@pytest.fixture
def urbanwatch(monkeypatch, database_url, auth_broker, topic_prefix, tmp_path):
    """Run `urbanwatch ...` in-process against this test's database and enforcing broker;
    `issue(...)` returns the new passwords by username (from the --csv file)."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MQTT_TOPIC_PREFIX", topic_prefix)
    for name, value in auth_broker.env().items():
        monkeypatch.setenv(name, value)

    class Run:
        calls = 0

        def __call__(self, *argv: str) -> int:
            reloads = auth_broker.reloads()
            status = cli.main(list(argv))
            if status == 0 and argv[:2] == ("devices", "credentials") and argv[2] != "list":
                wait_for(lambda: auth_broker.reloads() > reloads, what="the broker's reload")
            return status

        def issue(self, action: str, *argv: str) -> dict[str, dict[str, str]]:
            self.calls += 1
            path = tmp_path / f"passwords-{self.calls}.csv"
            assert self("devices", "credentials", action, "-q", "--csv", str(path), *argv) == 0
            assert path.stat().st_mode & 0o777 == 0o600
            with path.open(newline="") as f:
                return {row["username"]: row for row in csv.DictReader(f)}

    return Run()


def ts(seconds_ago: float = 30) -> str:
    return iso(datetime.now(UTC) - timedelta(seconds=seconds_ago))


def reading(**fields: object) -> dict[str, object]:
    return {"ts": ts(), "tilt_deg": 1.0, **fields}


def test_a_device_cannot_publish_as_another(
    conn, database_url, auth_broker, urbanwatch, topic_prefix
):
    register(conn, DEVICES)
    creds = urbanwatch.issue("issue", "--kind", "manhole", "--service", "ingest")
    ingest = creds["service/ingest"]
    settings = make_settings(
        database_url,
        auth_broker.url,
        topic_prefix,
        mqtt_username="service/ingest",
        mqtt_password=ingest["password"],
    )
    with (
        running_worker(settings),
        Client(auth_broker.url, "manhole/mh-1", creds["manhole/mh-1"]["password"]) as mh1,
    ):
        assert mh1.connect() == 0
        forged = mh1.publish(f"{topic_prefix}/manhole/mh-2/telemetry", reading(tilt_deg=90.0))
        assert forged == NOT_AUTHORIZED
        assert (
            mh1.publish(f"{topic_prefix}/gateway/gw-1/telemetry", [reading(device_id="mh-2")])
            == NOT_AUTHORIZED
        )
        # Its own reading, sent after the forged ones on the same connection, arrives; the
        # broker delivers a client's messages in order, so the forged ones never will.
        assert mh1.publish(f"{topic_prefix}/manhole/mh-1/telemetry", reading(tilt_deg=2.5)) == 0
        assert mh1.publish(f"{topic_prefix}/manhole/mh-1/status", "offline") == 0
        wait_for(
            lambda: count(conn, "manhole_readings") == 1 and count(conn, "device_status") == 1,
            what="mh-1's reading and status",
        )
    rows = conn.execute("SELECT device_id, tilt_deg FROM manhole_readings").fetchall()
    assert rows == [("mh-1", 2.5)]
    assert count(conn, "dead_letters") == 0


def test_unknown_anonymous_and_revoked_clients_are_refused(
    conn, auth_broker, urbanwatch, topic_prefix
):
    register(conn, DEVICES)
    creds = urbanwatch.issue("issue", "mh-1", "mh-2", "wl:1")
    assert set(creds) == {"manhole/mh-1", "manhole/mh-2", "waterlog/wl%3A1"}
    url = auth_broker.url
    assert connack_of(url, None, None) == NOT_AUTHORIZED  # anonymous
    assert connack_of(url, "manhole/mh-9", "whatever") == NOT_AUTHORIZED  # unknown
    assert connack_of(url, "manhole/mh-1", creds["manhole/mh-2"]["password"]) == NOT_AUTHORIZED
    assert connack_of(url, "waterlog/wl%3A1", creds["waterlog/wl%3A1"]["password"]) == 0
    assert connack_of(url, "manhole/mh-1", creds["manhole/mh-1"]["password"]) == 0

    revoked = Client(url, "manhole/mh-1", creds["manhole/mh-1"]["password"])
    with Client(url, "manhole/mh-2", creds["manhole/mh-2"]["password"]) as connected, revoked:
        assert connected.connect() == 0 and revoked.connect() == 0
        assert urbanwatch("devices", "credentials", "revoke", "-q", "mh-1") == 0
        assert connack_of(url, "manhole/mh-1", creds["manhole/mh-1"]["password"]) == NOT_AUTHORIZED
        # Mosquitto 2.0.11 rechecks connected clients on reload: the revoked one is closed.
        wait_for(lambda: revoked.disconnects >= 1, what="the revoked device's connection to close")
        # The reload keeps the other accounts' connections.
        assert connected.publish(f"{topic_prefix}/manhole/mh-2/telemetry", reading()) in ACCEPTED
        assert connected.disconnects == 0
    assert connack_of(url, "manhole/mh-2", creds["manhole/mh-2"]["password"]) == 0

    entries = conn.execute(
        "SELECT action, resource_id, after::text, detail::text FROM audit_log "
        "WHERE resource = 'device_credential' ORDER BY id"
    ).fetchall()
    assert [(a, r) for a, r, _, _ in entries] == [
        ("issue", "manhole/mh-1"),
        ("issue", "manhole/mh-2"),
        ("issue", "waterlog/wl%3A1"),
        ("revoke", "manhole/mh-1"),
    ]
    audit_text = " ".join(f"{after} {detail}" for _, _, after, detail in entries)
    for row in creds.values():
        assert row["password"] not in audit_text
    assert "$7$" not in audit_text


def test_a_rotated_password_replaces_the_old_one(conn, auth_broker, urbanwatch):
    register(conn, DEVICES)
    first = urbanwatch.issue("issue", "--gateways", "--gateway", "gw-1")["gateway/gw-1"]
    with Client(auth_broker.url, "gateway/gw-1", first["password"]) as old:
        assert old.connect() == 0
        second = urbanwatch.issue("rotate", "--gateways", "--gateway", "gw-1")["gateway/gw-1"]
        # The connection made with the old password is closed at the reload.
        wait_for(lambda: old.disconnects >= 1, what="the old password's connection to close")
    assert first["password"] != second["password"]
    assert connack_of(auth_broker.url, "gateway/gw-1", first["password"]) == NOT_AUTHORIZED
    assert connack_of(auth_broker.url, "gateway/gw-1", second["password"]) == 0
    stored = conn.execute(
        "SELECT password_hash, rotated_at IS NOT NULL FROM device_credentials"
    ).fetchall()
    assert len(stored) == 1 and stored[0][1]
    assert verify_password(second["password"], stored[0][0])
    assert second["password"] not in stored[0][0]


def test_a_gateway_cannot_report_a_foreign_device(
    conn, database_url, auth_broker, urbanwatch, topic_prefix
):
    register(conn, [("mh-1", "manhole")], gateway="gw-1")
    register(conn, [("mh-2", "manhole")], gateway="gw-2")
    creds = urbanwatch.issue("issue", "--gateways", "--service", "ingest")
    settings = make_settings(
        database_url,
        auth_broker.url,
        topic_prefix,
        mqtt_username="service/ingest",
        mqtt_password=creds["service/ingest"]["password"],
    )
    gw1 = Client(auth_broker.url, "gateway/gw-1", creds["gateway/gw-1"]["password"])
    with running_worker(settings), gw1:
        assert gw1.connect() == 0
        # Another gateway's topic: refused by the broker, never seen by ingest.
        spoof = [reading(device_id="mh-2", tilt_deg=45.0)]
        assert gw1.publish(f"{topic_prefix}/gateway/gw-2/telemetry", spoof) == NOT_AUTHORIZED
        # A device's own topic: refused as well.
        assert gw1.publish(f"{topic_prefix}/manhole/mh-2/telemetry", spoof[0]) == NOT_AUTHORIZED
        # Its own topic, naming a device registered behind gw-2: dead-lettered by ingest.
        batch = [reading(device_id="mh-1", tilt_deg=3.0), reading(device_id="mh-2", tilt_deg=45.0)]
        assert gw1.publish(f"{topic_prefix}/gateway/gw-1/telemetry", batch) == 0
        wait_for(
            lambda: count(conn, "manhole_readings") == 1 and count(conn, "dead_letters") == 1,
            what="gw-1's batch",
        )
    assert conn.execute("SELECT device_id, tilt_deg FROM manhole_readings").fetchall() == [
        ("mh-1", 3.0)
    ]
    letters = conn.execute("SELECT topic, element_index, reason_code FROM dead_letters").fetchall()
    assert letters == [(f"{topic_prefix}/gateway/gw-1/telemetry", 1, "foreign_device")]


def test_ingest_and_the_simulator_work_through_their_service_accounts(
    conn, database_url, auth_broker, urbanwatch, topic_prefix
):
    """`urbanwatch ingest` as a process with MQTT_USERNAME/MQTT_PASSWORD, the simulator's
    publisher with its account, alerts reading what devices send, the notifier publishing
    alerts; end to end into the
    database. A device cannot take over a service's session by borrowing its client id."""
    register(conn, DEVICES)
    creds = urbanwatch.issue(
        "issue", "--all", *[f"--service={s}" for s in ("ingest", "simulator", "alerts", "notify")]
    )
    worker = WorkerProcess(
        database_url,
        auth_broker.url,
        topic_prefix,
        "--client-id",
        INGEST_ID,
        MQTT_USERNAME="service/ingest",
        MQTT_PASSWORD=creds["service/ingest"]["password"],
    )
    try:
        worker.wait_ready()
        alerts = Client(auth_broker.url, "service/alerts", creds["service/alerts"]["password"])
        with alerts:
            assert alerts.connect() == 0
            assert alerts.subscribe(f"{topic_prefix}/+/+/telemetry") == 1
            # Alerts may not publish as a device.
            assert (
                alerts.publish(f"{topic_prefix}/manhole/mh-1/telemetry", reading())
                == NOT_AUTHORIZED
            )
            sim = SimPublisher(
                auth_broker.url,
                topic_prefix,
                client_id="broker-auth-sim",
                username="service/simulator",
                password=creds["service/simulator"]["password"],
            )
            sim.connect()
            batch = [reading(device_id="mh-2"), {"device_id": "wl:1", "ts": ts(), "depth_cm": 3.0}]
            for topic, body in (
                (f"{topic_prefix}/manhole/mh-1/telemetry", reading()),
                (f"{topic_prefix}/gateway/gw-1/telemetry", batch),
            ):
                sim.client.publish(topic, orjson.dumps(body), qos=1).wait_for_publish(10)
            # A device borrowing ingest's client id gets its own (its username) instead.
            thief = Client(
                auth_broker.url,
                "manhole/mh-1",
                creds["manhole/mh-1"]["password"],
                client_id=INGEST_ID,
            )
            with thief:
                assert thief.connect() == 0
                wait_for(
                    lambda: (
                        count(conn, "manhole_readings") == 2
                        and count(conn, "waterlog_readings") == 1
                    ),
                    what="the simulator's readings",
                )
            wait_for(lambda: len(alerts.received) == 2, what="alerts to see the device readings")
            sim.client.disconnect()
            sim.client.loop_stop()
        # The notifier publishes urbanwatch's outbound alerts, and nothing else.
        with Client(auth_broker.url, "service/notify", creds["service/notify"]["password"]) as n:
            assert n.connect() == 0
            notice = {"alert": {"kind": "manhole", "device_id": "mh-1"}}
            assert n.publish(f"{topic_prefix}/alerts/manhole/mh-1", notice) in ACCEPTED
            assert n.publish(f"{topic_prefix}/manhole/mh-1/telemetry", reading()) == NOT_AUTHORIZED
        assert "took over" not in worker.log() and "lost the broker" not in worker.log()
        assert worker.proc.poll() is None
    finally:
        worker.terminate()
    assert count(conn, "dead_letters") == 0
    topics = sorted(t for t, _ in alerts.received)
    assert topics == [
        f"{topic_prefix}/gateway/gw-1/telemetry",
        f"{topic_prefix}/manhole/mh-1/telemetry",
    ]


def test_a_wrong_simulator_password_is_one_clear_line(auth_broker, urbanwatch, topic_prefix):
    urbanwatch.issue("issue", "--service", "simulator")
    sim = SimPublisher(
        auth_broker.url,
        topic_prefix,
        client_id="broker-auth-sim2",
        username="service/simulator",
        password="wrong",
    )
    with pytest.raises(RuntimeProblem, match="refused the connection: Not authorized"):
        sim.connect()
