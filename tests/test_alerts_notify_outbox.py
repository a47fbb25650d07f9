"""The outbox under stress: a storm of alerts reaches each robot as a few digests within its
rate limit; a notifier killed with SIGKILL mid-delivery loses and duplicates nothing."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psycopg

from alerts.notify.notifier import Notifier
from alerts.notify.receiver import ReceiverState, Server
from tests import test_alerts_notify
from tests.conftest import wait_for
from tests.test_alerts_notify import (
    ENV,
    GROUP,
    SECRET,
    install_routes,
    logged_keys,
    open_alert,
    outbox,
    route_text,
    run_until,
    settings_for,
)

capture = test_alerts_notify.capture  # the notify tests' loopback HTTP receiver, as a fixture here


DISTRICTS = ["wenfeng", "beiguan", "yindu", "longan", "linzhou", "huaxian"]


def storm_wave(conn: psycopg.Connection, n: int, start: int) -> None:
    """`n` waterlogging alerts opened in one transaction, as the engine would in a storm."""
    with conn.transaction():
        for i in range(start, start + n):
            row = conn.execute(
                "INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity, "
                "opened_at, title) VALUES (%s, %s, %s, 'waterlog', %s, %s, now(), %s) RETURNING id",
                (
                    "WL_LEVEL_2" if i % 3 else "WL_LEVEL_3",
                    f"WL-{i:04d}",
                    f"WL-{i:04d}",
                    DISTRICTS[i % len(DISTRICTS)],
                    "critical" if i % 3 == 0 else "alarm",
                    f"积水超过15厘米 ponding over 15 cm WL-{i:04d}",
                ),
            ).fetchone()
            assert row is not None
            conn.execute(
                "INSERT INTO alert_events (alert_id, event, actor, severity) "
                "VALUES (%s, 'opened', 'engine', 'alarm')",
                (row[0],),
            )


def test_storm_reaches_each_robot_as_few_digests_within_the_limit(conn, database_url, capture):
    channels = {
        "wecom": {"type": "wecom", "url": capture.url("/wecom")},
        "ding": {"type": "dingtalk", "url": capture.url("/ding"), "secret_env": "DING_SECRET"},
    }
    text = route_text(channels).replace('"kind": "manhole"', '"kind": "waterlog"')
    install_routes(conn, text)
    notifier = Notifier(settings_for(database_url), env=ENV)
    for wave in range(10):  # 300 alerts arriving in ten waves while the notifier runs
        storm_wave(conn, 30, wave * 30)
        notifier.step()
    run_until(notifier, lambda: len(outbox(conn, "sent")) == 600, timeout=20, what="the storm")
    for path in ("/wecom", "/ding"):
        sent = [r["json"] for r in capture.requests if r["path"] == path]
        assert 1 <= len(sent) <= 4, len(sent)  # 300 events, a few messages
        texts = [m["markdown"].get("content") or m["markdown"]["text"] for m in sent]
        assert all(len(t.encode()) <= 4096 for t in texts)
        # Each digest gives the whole picture: counts that add up to every event.
        counted = 0
        for t in texts:
            if "告警汇总 digest" in t:
                counted += int(t.split("digest: ")[1].split(" 条")[0])
                assert "区县 districts:" in t and "wenfeng" in t and "WL_LEVEL_3" in t
            else:
                counted += 1
        assert counted == 300
    # The limit holds in every minute, retries included, per robot.
    per_channel = conn.execute(
        "SELECT channel, count(*), count(DISTINCT digest_id) FROM notify_outbox GROUP BY 1"
    ).fetchall()
    assert {c: n for c, n, _ in per_channel} == {"wecom": 300, "ding": 300}
    starts = conn.execute(
        "SELECT channel, array_agg(extract(epoch FROM started_at)::float8 ORDER BY started_at), "
        "array_agg(cardinality(outbox_ids) ORDER BY started_at) FROM notify_attempts GROUP BY 1"
    ).fetchall()
    for _, times, sizes in starts:
        for (a, size), (b, _) in itertools.pairwise(zip(times, sizes, strict=True)):
            # 60 s / 20 between messages, and the digest interval (4 s here) after a digest
            assert b - a >= (4.0 if size > 1 else 3.0) - 1e-3


class GatedState(ReceiverState):
    """Logs the first delivery of each key, then (once) holds the answer to the `hold_at`-th
    key until released: the notifier is then mid-delivery."""

    def __init__(self, *args: Any, hold_at: int, **kw: Any):
        super().__init__(*args, **kw)
        self.hold_at, self.holding, self.release = hold_at, threading.Event(), threading.Event()

    def accept(self, key: str, payload: dict[str, Any]) -> bool:
        first = super().accept(key, payload)
        if first and len(self.seen) == self.hold_at and not self.holding.is_set():
            self.holding.set()
            self.release.wait(30)
        return first


def start_notifier(database_url: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **ENV,
        "DATABASE_URL": database_url,
        "NOTIFY_LEASE_S": "2",
        "NOTIFY_POLL_S": "0.05",
        "NOTIFY_RETRY_INITIAL_S": "0.1",
        "MQTT_URL": "mqtt://127.0.0.1:1",
    }
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "urbanwatch"), *GROUP, "notify"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigkill_mid_delivery_no_loss_no_duplicate(conn, database_url, tmp_path):
    log = tmp_path / "hooks.jsonl"
    state = GatedState(SECRET, log, echo=False, hold_at=5)
    server = Server("127.0.0.1", 0, state).start()
    first = second = None
    try:
        install_routes(
            conn,
            route_text(
                {"hook": {"type": "webhook", "url": server.url, "secret_env": "HOOK_SECRET"}}
            ),
        )
        alerts = [open_alert(conn) for _ in range(20)]
        first = start_notifier(database_url)
        wait_for(state.holding.is_set, timeout=20, what="the notifier to be mid-delivery")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        state.release.set()
        assert len(logged_keys(log)) == 5
        second = start_notifier(database_url)
        wait_for(lambda: len(outbox(conn, "sent")) == 20, timeout=30, what="every event sent")
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
        server.stop()
    keys = logged_keys(log)
    assert len(keys) == len(set(keys)) == 20  # each event exactly once at the receiver
    ids = sorted(json.loads(x)["payload"]["alert"]["id"] for x in log.read_text().splitlines())
    assert ids == alerts
    assert state.duplicates == 1  # the one in flight at the kill was sent again, same key
    outcomes = dict(
        conn.execute("SELECT outcome, count(*) FROM notify_attempts GROUP BY 1").fetchall()
    )
    assert outcomes == {"ok": 20, "sending": 1}  # the killed attempt stays on record
