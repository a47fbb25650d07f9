"""Notifications end to end on real servers: PostgreSQL, the reference webhook receiver,
loopback HTTP servers standing in for the WeCom and DingTalk robots, aiosmtpd, Mosquitto.

Alerts and their events are inserted here exactly as the engine writes them (an alert row
and its 'opened' event in one transaction); the notifier under test only reads them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from aiosmtpd.controller import Controller
from paho.mqtt.enums import CallbackAPIVersion

from alerts.notify.cli import load_routes
from alerts.notify.notifier import Notifier
from alerts.notify.receiver import ReceiverState, Server
from tests.conftest import _free_port, wait_for
from urbanwatch.audit import Actor
from urbanwatch.routing.load import parse_route_file
from urbanwatch.settings import Settings

# The command group the notify commands live under: ["alerts"] once `register_notify` is
# joined into the engine's `alerts` command and the temporary `notify` entry point removed.
GROUP = ["alerts"]
SECRET = "s3cret-for-tests"
DING_SECRET = "SECtest-dingtalk"
ENV = {"HOOK_SECRET": SECRET, "DING_URL": "", "DING_SECRET": DING_SECRET, "WECOM_URL": ""}


# --- helpers shared by the notify test files ----------------------------------------------


def open_alert(
    conn: psycopg.Connection,
    *,
    rule: str = "MH_TILT",
    subject: str | None = None,
    kind: str = "manhole",
    district: str | None = "wenfeng",
    severity: str = "alarm",
    suppressed: bool = False,
) -> int:
    """An alert and its 'opened' event, in one transaction, as the engine writes them."""
    subject = subject or f"MH-{uuid.uuid4().hex[:6]}"
    with conn.transaction():
        row = conn.execute(
            "INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity, "
            "opened_at, title, suppressed) VALUES (%s, %s, %s, %s, %s, %s, now(), %s, %s) "
            "RETURNING id",
            (
                rule,
                subject,
                subject,
                kind,
                district,
                severity,
                f"井盖倾斜 cover tilted {subject}",
                suppressed,
            ),
        ).fetchone()
        assert row is not None
        add_event(conn, row[0], "opened", severity)
    return int(row[0])


def add_event(conn: psycopg.Connection, alert_id: int, event: str, severity: str = "alarm") -> None:
    conn.execute(
        "INSERT INTO alert_events (alert_id, event, actor, severity) VALUES (%s, %s, 'engine', %s)",
        (alert_id, event, severity),
    )


def settings_for(
    database_url: str, mqtt_url: str = "mqtt://127.0.0.1:1", prefix: str = "uw"
) -> Settings:
    return Settings(
        database_url=database_url,
        mqtt_url=mqtt_url,
        mqtt_topic_prefix=prefix,
        notify_poll_s=0.05,
        notify_lease_s=2,
        notify_retry_initial_s=0.1,
        notify_retry_max_s=0.4,
        notify_digest_interval_s=4,
    )


def route_text(channels: dict[str, dict[str, Any]], sla: str = "{ack: 10m, max_level: 2}") -> str:
    """A route file: every manhole alert to crew 'mh' (all `channels` but 'esc'), escalation
    to crew 'duty' (channel 'esc' when given)."""
    main = [c for c in channels if c != "esc"]
    doc = {
        "version": 1,
        "sla": {"critical": yaml_flow(sla), "alarm": yaml_flow(sla), "warning": {"ack": None}},
        "units": {"cgj": {"name": "市城市管理局", "name_en": "City Management Bureau"}},
        "channels": channels,
        "crews": {
            "mh": {"unit": "cgj", "label": "窨井盖巡查班组", "channels": main},
            "duty": {
                "unit": "cgj",
                "label": "值班室",
                "channels": ["esc"] if "esc" in channels else main,
            },
        },
        "routes": [
            {"unit": "cgj", "crews": ["mh"]},
            {"kind": "manhole", "unit": "cgj", "crews": ["mh"], "escalate": ["duty"]},
        ],
    }
    return json.dumps(doc, ensure_ascii=False)  # JSON is YAML


def yaml_flow(text: str) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(text))


def install_routes(conn: psycopg.Connection, text: str) -> None:
    load_routes(conn, parse_route_file(text), "test", text, Actor.service("test"))


def run_until(
    notifier: Notifier, condition: Any, timeout: float = 15, what: str = "condition"
) -> Any:
    """Notifier rounds until `condition()` holds (each poll runs one round)."""

    def tick() -> Any:
        notifier.step()
        return condition()

    return wait_for(tick, timeout=timeout, what=what)


def outbox(conn: psycopg.Connection, status: str | None = None) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT channel, status, idempotency_key, event_id FROM notify_outbox "
        "WHERE %s::text IS NULL OR status = %s ORDER BY id",
        (status, status),
    ).fetchall()


class Capture(ThreadingHTTPServer):
    """A loopback HTTP server standing in for a robot: records every request, answers as
    the robots do ({"errcode": 0, "errmsg": "ok"}, or `reply` when set)."""

    daemon_threads = True

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.reply: dict[str, Any] = {"errcode": 0, "errmsg": "ok"}
        capture = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                url = urllib.parse.urlsplit(self.path)
                capture.requests.append(
                    {
                        "path": url.path,
                        "query": urllib.parse.parse_qs(url.query),
                        "headers": dict(self.headers),
                        "json": json.loads(body),
                    }
                )
                data = json.dumps(capture.reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{path}"


@pytest.fixture
def capture() -> Iterator[Capture]:
    server = Capture()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[Server]:
    server = Server("127.0.0.1", 0, ReceiverState(SECRET, tmp_path / "hooks.jsonl", echo=False))
    server.start()
    yield server
    server.stop()


def logged_keys(path: Path) -> list[str]:
    if not path.exists():
        return []
    return [json.loads(line)["idempotency_key"] for line in path.read_text().splitlines()]


# --- tests --------------------------------------------------------------------------------


def test_webhook_delivered_signed_once_and_not_repeated(conn, database_url, receiver, tmp_path):
    install_routes(
        conn,
        route_text({"hook": {"type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET"}}),
    )
    notifier = Notifier(settings_for(database_url), env=ENV)
    alert = open_alert(conn, severity="critical")
    log = tmp_path / "hooks.jsonl"
    run_until(notifier, lambda: len(logged_keys(log)) == 1, what="the webhook delivery")
    entry = json.loads(log.read_text().splitlines()[0])
    assert entry["payload"]["alert"]["id"] == alert
    assert entry["payload"]["event"]["type"] == "opened"
    assert entry["payload"]["route"]["unit_name"] == "市城市管理局"
    assert entry["payload"]["alert"]["ack_due_at"] is not None  # critical: 10 min SLA stored
    # The SLA deadline is on the alert too.
    due = conn.execute(
        "SELECT ack_due_at - opened_at FROM alerts WHERE id = %s", (alert,)
    ).fetchone()
    assert due is not None and due[0].total_seconds() == pytest.approx(600, abs=2)
    # Nothing changed: more rounds send nothing; 'updated' and 'commented' notify nobody.
    add_event(conn, alert, "updated")
    add_event(conn, alert, "commented")
    for _ in range(5):
        notifier.step()
    assert logged_keys(log) == [entry["idempotency_key"]]
    assert receiver.state.duplicates == 0
    attempts = conn.execute("SELECT outcome, status_code FROM notify_attempts").fetchall()
    assert attempts == [("ok", 200)]


def test_receiver_refuses_bad_signature_and_old_timestamp(receiver, tmp_path):
    import time
    import urllib.error
    import urllib.request

    from alerts.notify.messages import webhook_headers

    body = json.dumps({"alert": {}, "event": {}}).encode()

    def post(headers: dict[str, str]) -> int:
        req = urllib.request.Request(receiver.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as exc:
            return exc.code

    now = int(time.time())
    assert post(webhook_headers("k1", "wrong-secret", now, body)) == 401
    assert post(webhook_headers("k1", SECRET, now - 301, body)) == 401
    assert post(webhook_headers("k1", SECRET, now, body)) == 200
    assert post(webhook_headers("k1", SECRET, now, body)) == 200  # a repeat: not logged again
    assert logged_keys(tmp_path / "hooks.jsonl") == ["k1"]
    assert receiver.state.duplicates == 1


def test_wecom_and_dingtalk_payloads_match_their_formats(conn, database_url, capture):
    channels = {
        "wecom": {"type": "wecom", "url": capture.url("/cgi-bin/webhook/send?key=abc")},
        "ding": {
            "type": "dingtalk",
            "url": capture.url("/robot/send?access_token=tok"),
            "secret_env": "DING_SECRET",
            "at_mobiles": ["13800001111"],
        },
    }
    install_routes(conn, route_text(channels))
    notifier = Notifier(settings_for(database_url), env=ENV)
    open_alert(conn, severity="critical", subject="MH-0042")
    run_until(notifier, lambda: len(capture.requests) == 2, what="both robots")
    wecom = next(r for r in capture.requests if r["path"] == "/cgi-bin/webhook/send")
    ding = next(r for r in capture.requests if r["path"] == "/robot/send")
    # WeCom: {"msgtype": "markdown", "markdown": {"content": ...}}, ≤ 4096 bytes, Chinese first.
    assert set(wecom["json"]) == {"msgtype", "markdown"} and wecom["json"]["msgtype"] == "markdown"
    content = wecom["json"]["markdown"]["content"]
    assert set(wecom["json"]["markdown"]) == {"content"} and len(content.encode()) <= 4096
    assert content.startswith("### 【紧急 critical】新告警 opened") and "MH-0042" in content
    assert wecom["query"] == {"key": ["abc"]}
    # DingTalk: markdown with title and text, @ mobiles, and the 加签 URL parameters.
    body = ding["json"]
    assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"title", "text"}
    assert body["markdown"]["title"].startswith("紧急新告警")
    assert "@13800001111" in body["markdown"]["text"]
    assert body["at"] == {"atMobiles": ["13800001111"], "isAtAll": False}
    ts = ding["query"]["timestamp"][0]
    expected = base64.b64encode(
        hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    assert ding["query"]["sign"] == [expected]  # parse_qs undid the URL encoding
    assert ding["query"]["access_token"] == ["tok"]


def test_robot_refusal_is_retried_with_backoff(conn, database_url, capture):
    install_routes(
        conn,
        route_text({"wecom": {"type": "wecom", "url": capture.url("/send"), "rate_per_min": 20}}),
    )
    capture.reply = {"errcode": 45009, "errmsg": "api freq out of limit"}
    notifier = Notifier(settings_for(database_url), env=ENV)
    open_alert(conn)
    run_until(notifier, lambda: len(capture.requests) >= 1)
    failed = conn.execute("SELECT outcome, error FROM notify_attempts").fetchall()
    assert failed[0][0] == "failed" and "45009" in failed[0][1]
    capture.reply = {"errcode": 0, "errmsg": "ok"}
    run_until(notifier, lambda: outbox(conn, "sent"), timeout=20, what="the retry")
    assert [r[0] for r in conn.execute("SELECT outcome FROM notify_attempts ORDER BY id")] == [
        "failed",
        "ok",
    ]


def test_mqtt_alert_topic_qos1_not_retained(conn, database_url, mqtt_url, topic_prefix):
    got: list[mqtt.MQTTMessage] = []
    sub = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"notify-sub-{uuid.uuid4().hex[:8]}",
        protocol=mqtt.MQTTv5,
    )
    sub.on_message = lambda c, u, msg: got.append(msg)
    host, port = mqtt_url.removeprefix("mqtt://").split(":")
    sub.connect(host, int(port))
    subscribed = threading.Event()
    sub.on_subscribe = lambda *a: subscribed.set()
    sub.loop_start()
    try:
        sub.subscribe(f"{topic_prefix}/alerts/#", qos=1)
        wait_for(subscribed.is_set, what="SUBACK")
        install_routes(conn, route_text({"platform": {"type": "mqtt"}}))
        notifier = Notifier(settings_for(database_url, mqtt_url, topic_prefix), env=ENV)
        alert = open_alert(conn, subject="MH-0007")
        run_until(notifier, lambda: got, what="the MQTT alert")
        msg = got[0]
        assert msg.topic == f"{topic_prefix}/alerts/manhole/MH-0007"
        assert msg.qos == 1 and not msg.retain
        payload = json.loads(msg.payload)
        assert payload["alert"]["id"] == alert and payload["idempotency_key"].startswith("uw-")
        assert dict(msg.properties.UserProperty)["idempotency-key"] == payload["idempotency_key"]
        notifier.sender.close()
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_email_over_smtp(conn, database_url):
    received: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    port = _free_port()
    smtp = Controller(Handler(), hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        mail = {
            "type": "email",
            "to": ["duty@example.org"],
            "sender": "uw@example.org",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
        }
        install_routes(conn, route_text({"mail": mail}))
        notifier = Notifier(settings_for(database_url), env=ENV)
        open_alert(conn, subject="MH-0099")
        run_until(notifier, lambda: received, what="the mail")
    finally:
        smtp.stop()
    import email

    msg = email.message_from_bytes(received[0].content, policy=email.policy.default)
    assert received[0].rcpt_tos == ["duty@example.org"]
    assert str(msg["Subject"]).startswith("【报警 alarm】新告警 opened")
    assert msg["Message-ID"].startswith("<uw-")
    assert "MH-0099" in msg.get_content()


def test_receiver_down_then_up_each_event_exactly_once(conn, database_url, tmp_path):
    port = _free_port()
    url = f"http://127.0.0.1:{port}/alerts"
    install_routes(
        conn, route_text({"hook": {"type": "webhook", "url": url, "secret_env": "HOOK_SECRET"}})
    )
    notifier = Notifier(settings_for(database_url), env=ENV)
    alerts = [open_alert(conn) for _ in range(5)]
    run_until(
        notifier,
        lambda: (
            conn.execute(
                "SELECT count(*) FROM notify_attempts WHERE outcome = 'failed'"
            ).fetchone()[0]
            >= 10
        ),
        what="failed attempts while the receiver is down",
    )
    log = tmp_path / "late.jsonl"
    server = Server("127.0.0.1", port, ReceiverState(SECRET, log, echo=False)).start()
    try:
        run_until(notifier, lambda: len(outbox(conn, "sent")) == 5, timeout=20)
        for _ in range(3):
            notifier.step()
    finally:
        server.stop()
    keys = logged_keys(log)
    assert len(keys) == len(set(keys)) == 5
    assert (
        sorted(json.loads(x)["payload"]["alert"]["id"] for x in log.read_text().splitlines())
        == alerts
    )
    assert server.state.duplicates == 0


def test_suppressed_alert_not_notified(conn, database_url, receiver, tmp_path):
    install_routes(
        conn,
        route_text({"hook": {"type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET"}}),
    )
    notifier = Notifier(settings_for(database_url), env=ENV)
    open_alert(conn, suppressed=True, subject="SL-LAMP-1")
    parent = open_alert(conn, rule="SL_CIRCUIT_SUPPLY_LOSS", subject="CIR-0001")
    run_until(notifier, lambda: len(logged_keys(tmp_path / "hooks.jsonl")) == 1)
    for _ in range(3):
        notifier.step()
    entries = [json.loads(x) for x in (tmp_path / "hooks.jsonl").read_text().splitlines()]
    assert [e["payload"]["alert"]["id"] for e in entries] == [parent]
    assert conn.execute("SELECT count(*) FROM notify_inbox").fetchone()[0] == 0


def test_escalation_when_unacknowledged(conn, database_url, capture):
    channels = {
        "hook": {"type": "webhook", "url": capture.url("/crew")},
        "esc": {"type": "webhook", "url": capture.url("/duty")},
    }
    install_routes(conn, route_text(channels, sla="{ack: 10m, max_level: 1}"))
    notifier = Notifier(settings_for(database_url), env=ENV)
    late = open_alert(conn)
    acked = open_alert(conn)
    run_until(notifier, lambda: len(capture.requests) == 2)
    assert all(r["path"] == "/crew" for r in capture.requests)  # level 0: the crew only
    # Both deadlines pass (an hour ago); one alert was acknowledged in time.
    conn.execute("UPDATE alerts SET ack_due_at = now() - interval '1 hour'")
    with conn.transaction():
        conn.execute("UPDATE alerts SET status = 'acknowledged' WHERE id = %s", (acked,))
        add_event(conn, acked, "acknowledged")
    run_until(notifier, lambda: len(capture.requests) == 5, what="escalation and ack notices")
    for _ in range(5):
        notifier.step()
    events = conn.execute(
        "SELECT alert_id, actor, detail->>'level' FROM alert_events WHERE event = 'escalated'"
    ).fetchall()
    assert events == [(late, "service:notify", "1")]  # max_level 1: once, however late
    later = capture.requests[2:]
    escalations = [r for r in later if r["json"]["event"]["type"] == "escalated"]
    assert sorted(r["path"] for r in escalations) == ["/crew", "/duty"]  # reminder + next level
    assert escalations[0]["json"]["route"]["level"] == 1
    assert len(capture.requests) == 5


def test_old_delivered_rows_pruned_pending_kept(conn, database_url, receiver, tmp_path):
    install_routes(
        conn,
        route_text({"hook": {"type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET"}}),
    )
    notifier = Notifier(settings_for(database_url), env=ENV)
    open_alert(conn)
    run_until(notifier, lambda: outbox(conn, "sent"))
    second = open_alert(conn)
    notifier.route_inbox(conn)  # routed, not yet sent
    conn.execute("UPDATE notify_outbox SET created_at = now() - interval '31 days'")
    conn.execute("UPDATE notify_attempts SET started_at = now() - interval '31 days'")
    notifier._next_prune = 0.0
    notifier.step()
    # The old delivered row and its attempt are gone; the undelivered one stayed (and went).
    rows = conn.execute("SELECT alert_id, status FROM notify_outbox").fetchall()
    assert rows == [(second, "sent")]
    assert conn.execute("SELECT count(*) FROM notify_attempts").fetchone()[0] == 1
    assert len(logged_keys(tmp_path / "hooks.jsonl")) == 2


def test_update_sent_only_when_severity_rises(conn, database_url, receiver, tmp_path):
    install_routes(
        conn,
        route_text({"hook": {"type": "webhook", "url": receiver.url, "secret_env": "HOOK_SECRET"}}),
    )
    notifier = Notifier(settings_for(database_url), env=ENV)
    storm = open_alert(conn, rule="STORM", subject="STORM-1", severity="alarm")
    add_event(conn, storm, "updated", "alarm")  # the live count changed: not news
    add_event(conn, storm, "updated", "critical")  # worse: news
    add_event(conn, storm, "updated", "critical")
    log = tmp_path / "hooks.jsonl"
    run_until(
        notifier,
        lambda: (
            len(logged_keys(log)) == 2 and not conn.execute("SELECT 1 FROM notify_inbox").fetchone()
        ),
    )
    for _ in range(3):
        notifier.step()
    sent = [json.loads(x)["payload"]["event"] for x in log.read_text().splitlines()]
    assert [e["type"] for e in sent] == ["opened", "updated"]
