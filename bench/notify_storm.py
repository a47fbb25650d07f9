"""A storm at city scale through the notifier: every waterlogging point floods within
minutes (its level alert opens, escalates through the tiers), the rain gauges raise heavy
rain, a storm incident opens, and hundreds of manholes report high water or overflow.

The shipped routes are loaded, with the robots' URLs pointing at a loopback server that
answers as WeCom and DingTalk do, the webhook at the reference receiver and MQTT at a
Mosquitto of the bench's own. Measured: messages per robot (the most in any 60 s window
against the limit of 20), events each digest covers, digest size, webhook and MQTT
deliveries (each event exactly once), and the lag from the last event to its delivery.

    .venv/bin/python -m bench.notify_storm [--minutes 2] [--covers 600] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg

from alerts.notify.cli import load_routes
from alerts.notify.notifier import Notifier
from alerts.notify.receiver import ReceiverState, Server
from bench.harness import bench_database, broker, machine_info
from urbanwatch.audit import Actor
from urbanwatch.routing.load import default_text, parse_route_file
from urbanwatch.settings import Settings

ADMIN_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://127.0.0.1:5432/postgres")
POINTS, GAUGES = 40, 12  # the city fleet's waterlogging points and rain gauges
DISTRICTS = [
    "wenfeng",
    "beiguan",
    "yindu",
    "longan",
    "linzhou",
    "anyangxian",
    "tangyin",
    "neihuang",
    "huaxian",
]
RESULTS = Path(__file__).parent / "results"


class Robots(ThreadingHTTPServer):
    """Answers as both robots do; records (arrival time, path, body) per request."""

    daemon_threads = True

    def __init__(self) -> None:
        self.log: list[tuple[float, str, dict[str, Any]]] = []
        robots = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                robots.log.append((time.time(), self.path.split("?")[0], body))
                data = b'{"errcode":0,"errmsg":"ok"}'
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *a: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), H)
        threading.Thread(target=self.serve_forever, daemon=True).start()


Step = tuple[float, str, dict[str, Any]]  # (offset s, event, alert)


def schedule(minutes: float, covers: int) -> list[Step]:
    """Every alert event of the storm, in time order."""
    span = minutes * 60
    plan: list[Step] = [(0.0, "opened", alert("STORM", "STORM-1", "waterlog", None, "critical"))]
    for g in range(GAUGES):
        a = alert("RAIN_HEAVY_1H", f"RG-{g:03d}", "waterlog", DISTRICTS[g % 9], "warning")
        plan.append((span * 0.1 * g / GAUGES, "opened", a))
    for p in range(POINTS):  # each point: warning, alarm a little later, half then critical
        a = alert("WL_LEVEL", f"WL-{p:04d}", "waterlog", DISTRICTS[p % 9], "critical")
        t = span * 0.7 * p / POINTS
        plan += [(t, "opened", a), (t + span * 0.1, "escalated", a)]
        if p % 2:
            plan.append((t + span * 0.2, "escalated", a))
    for c in range(covers):
        rule = "MH_OVERFLOW" if c % 3 == 0 else "MH_WATER_HIGH"
        a = alert(rule, f"MH-{c:05d}", "manhole", DISTRICTS[c % 9], "alarm")
        plan.append((span * c / max(covers, 1), "opened", a))
    return sorted(plan, key=lambda x: x[0])


def alert(rule: str, subject: str, kind: str, district: str | None, sev: str) -> dict[str, Any]:
    return {"rule": rule, "subject": subject, "kind": kind, "district": district, "severity": sev}


def insert(conn: psycopg.Connection, event: str, a: dict[str, Any]) -> None:
    """As the engine writes it: the alert with its 'opened' event, or a later event."""
    with conn.transaction():
        if event == "opened":
            row = conn.execute(
                "INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity, "
                "opened_at, title) VALUES (%s, %s, %s, %s, %s, %s, now(), %s) RETURNING id",
                (
                    a["rule"],
                    a["subject"],
                    a["subject"],
                    a["kind"],
                    a["district"],
                    a["severity"],
                    f"{a['rule']} {a['subject']}",
                ),
            ).fetchone()
        else:
            row = conn.execute(
                "SELECT id FROM alerts WHERE subject = %s", (a["subject"],)
            ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO alert_events (alert_id, event, actor, severity) "
            "VALUES (%s, %s, 'engine', %s)",
            (row[0], event, a["severity"]),
        )


def max_per_minute(times: list[float]) -> int:
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] < t - 60:
            j += 1
        best = max(best, i - j + 1)
    return best


def run(minutes: float, covers: int) -> dict[str, Any]:
    robots = Robots()
    folder = Path(tempfile.mkdtemp(prefix="uw-bench-notify-"))
    hook = Server("127.0.0.1", 0, ReceiverState("bench", folder / "hooks.jsonl", echo=False))
    hook.start()
    base = f"http://127.0.0.1:{robots.server_address[1]}"
    env = {
        "URBANWATCH_WEBHOOK_SECRET": "bench",
        "WECOM_CGJ_URL": f"{base}/wecom/cgj",
        "DINGTALK_ZJJ_URL": f"{base}/dingtalk/zjj",
        "DINGTALK_ZJJ_SECRET": "SECbench",
        "DINGTALK_WATER_URL": f"{base}/dingtalk/water",
        "DINGTALK_WATER_SECRET": "SECbench",
    }
    text = default_text().replace("http://127.0.0.1:9080/alerts", hook.url)
    with broker() as mq, bench_database(ADMIN_URL, commit_log=None) as url:
        settings = Settings(database_url=url, mqtt_url=mq.url, mqtt_topic_prefix="uwbench")
        with psycopg.connect(url) as conn:
            load_routes(conn, parse_route_file(text), "bench", text, Actor.service("bench"))
            conn.commit()
            notifier, stop = Notifier(settings, env=env), threading.Event()
            worker = threading.Thread(target=notifier.run, args=(stop,), daemon=True)
            worker.start()
            t0, events = time.time(), 0
            for offset, event, a in schedule(minutes, covers):
                time.sleep(max(0.0, t0 + offset - time.time()))
                insert(conn, event, a)
                events += 1
            last_event = time.time()
            while (
                conn.execute(
                    "SELECT count(*) FROM notify_outbox WHERE status = 'pending'"
                ).fetchone()[0]
                or conn.execute("SELECT count(*) FROM notify_inbox").fetchone()[0]
            ):
                time.sleep(0.2)
            done = time.time()
            stop.set()
            worker.join(10)
            rows = dict(
                conn.execute("SELECT channel, count(*) FROM notify_outbox GROUP BY 1").fetchall()
            )
            delays = {
                ch: {"p50_s": round(p50, 2), "max_s": round(mx, 2)}
                for ch, p50, mx in conn.execute(
                    "SELECT channel, percentile_cont(0.5) WITHIN GROUP (ORDER BY d), max(d) "
                    "FROM (SELECT o.channel, extract(epoch FROM o.sent_at - e.at)::float8 AS d "
                    "FROM notify_outbox o JOIN alert_events e ON e.id = o.event_id) x GROUP BY 1"
                )
            }
            statuses = dict(
                conn.execute("SELECT status, count(*) FROM notify_outbox GROUP BY 1").fetchall()
            )
    hook.stop()
    robot_stats = {}
    for path in sorted({p for _, p, _ in robots.log}):
        sent = [(t, b) for t, p, b in robots.log if p == path]
        texts = [b["markdown"].get("content") or b["markdown"].get("text", "") for _, b in sent]
        robot_stats[path] = {
            "messages": len(sent),
            "max_per_60s": max_per_minute([t for t, _ in sent]),
            "max_bytes": max(len(x.encode()) for x in texts),
            "digests": sum("告警汇总" in x for x in texts),
        }
    keys = [
        json.loads(x)["idempotency_key"] for x in (folder / "hooks.jsonl").read_text().splitlines()
    ]
    return {
        "machine": machine_info(),
        "minutes": minutes,
        "alerts_events": events,
        "outbox_rows_per_channel": rows,
        "outbox_status": statuses,
        "event_to_delivery": delays,
        "robots": robot_stats,
        "webhook_deliveries": len(keys),
        "webhook_unique": len(set(keys)),
        "webhook_expected": rows.get("ops-webhook", 0),
        "drain_after_last_event_s": round(done - last_event, 2),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=2.0, help="how long the storm builds")
    p.add_argument("--covers", type=int, default=600, help="manholes that report high water")
    p.add_argument("--quick", action="store_true", help="30 s and 150 covers")
    args = p.parse_args()
    minutes, covers = (0.5, 150) if args.quick else (args.minutes, args.covers)
    result = run(minutes, covers)
    RESULTS.mkdir(exist_ok=True)
    name = "notify_storm-quick.json" if args.quick else "notify_storm.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(
        json.dumps(
            {k: v for k, v in result.items() if k != "machine"}, indent=2, ensure_ascii=False
        )
    )


if __name__ == "__main__":
    main()
