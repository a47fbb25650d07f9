"""The alert engine's figures (issue #10): throughput, publish -> alert latency under load,
offline deadline spread, memory.

    .venv/bin/python -m bench.alerts [--quick]     writes bench/results/alerts[-quick].json

1. throughput: one process, the full default rule set, the city fleet (≈ 71.5k devices):
   simulator readings as JSON, parsed with the kind models and evaluated (`Engine`), with
   and without parsing; RSS once every device has state.
2. latency: `urbanwatch alerts run` as a process under a steady 10k readings/s of lit
   streetlights (bench/publisher.py, 500 lamps); a probe cover opens and closes every 0.2 s with
   ts = its publish time; latency = the alert event's transaction time − ts.
3. offline: city-size registry, one reading per device through the engine, an offline
   rule of 20 s for every kind, then silence: spread = the event's transaction time − the
   deadline it records (last_seen + after_s).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from alerts.engine import Engine
from alerts.messages import Parsed, parse
from bench.harness import BIN, LoadGenerator, bench_database, broker, register_devices, wait_for
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet
from urbanwatch.alerting import Device, default_rules, parse_rules
from urbanwatch.alerting.loader import default_rules_text
from urbanwatch.audit import Actor
from urbanwatch.queries import rules as rule_queries
from urbanwatch.topics import telemetry_topic

RESULTS = Path(__file__).resolve().parent / "results"
IN_FLIGHT = 30_000  # the offline part's unacknowledged publishes at most
RATE = 10_000  # the background load of the latency part (issue #10's figure)
# Lamps sending it (20 readings/s each). With 10,000 lamps at one a second each the engine
# fared worse (each batch then touches 2,000 device states instead of 500).
LATENCY_DEVICES = 500


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The simulator's start (epoch ms) of the throughput part: pinned, so that runs before and
# after a change evaluate the same readings (the city at 2026-12-01 00:00 Asia/Shanghai).
THROUGHPUT_START_MS = 1_796_054_400_000


def throughput(readings: int, start: int = THROUGHPUT_START_MS) -> dict[str, Any]:
    fleet = make_fleet(1, "city")
    devices = [Device(d.device_id, d.kind, d.district, d.row()) for d in fleet.devices]
    kinds = {d.device_id: d.kind for d in devices}
    world = build_world(fleet, start, start + 6 * 3600 * 1000, None, True)
    sim = Simulation(fleet, world, start, stagger_s=1800)
    messages = []
    for device, payload in sim.advance(start + 6 * 3600 * 1000):
        messages.append(
            (telemetry_topic("b", device.kind, device.device_id), orjson.dumps(payload))
        )
        if len(messages) >= readings:
            break
    rss_before = rss_mb()
    engine = Engine(default_rules(), devices)
    parsed = Parsed()
    # CPU seconds of this process: the machine is shared, wall time would measure the others
    t0, w0 = time.process_time(), time.perf_counter()
    for topic, body in messages:
        parse("b", topic, body, kinds, parsed)
    t1 = time.process_time()
    changes = 0
    for r in parsed.readings:
        changes += len(engine.on_reading(engine.devices[r.device_id], r.fields, r.ts, r.ts))
    t2, w2 = time.process_time(), time.perf_counter()
    w3 = time.perf_counter()
    states = engine.take_dirty()
    t3 = time.perf_counter() - w3
    state_bytes = sum(len(orjson.dumps(s)) for _, s in states)
    return {
        "devices": len(devices),
        "readings": len(parsed.readings),
        "devices_with_state": len(states),
        "parse_readings_per_cpu_s": len(messages) / (t1 - t0),
        "evaluate_readings_per_cpu_s": len(parsed.readings) / (t2 - t1),
        "parse_and_evaluate_readings_per_cpu_s": len(parsed.readings) / (t2 - t0),
        "parse_and_evaluate_readings_per_wall_s": len(parsed.readings) / (w2 - w0),
        "alert_changes": changes,
        "state_json_mean_bytes": state_bytes / max(1, len(states)),
        "state_snapshot_s": t3,
        "rss_mb_before_engine": rss_before,
        "rss_mb_with_engine": rss_mb(),
    }


class EngineProcess:
    def __init__(self, url: str, mqtt_url: str, prefix: str):
        self.log = Path(f"/tmp/uw-bench-alerts-{uuid.uuid4().hex[:6]}.log")
        env = {
            "DATABASE_URL": url,
            "MQTT_URL": mqtt_url,
            "MQTT_TOPIC_PREFIX": prefix,
            "PATH": str(BIN),
        }
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(BIN / "urbanwatch"), "alerts", "run"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(lambda: b"engine subscribed" in self.log.read_bytes(), 60, "the engine")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.unlink(missing_ok=True)


def latency(
    admin_url: str,
    seconds: float,
    rate: float = RATE,
    devices: int = LATENCY_DEVICES,
    tag: str = "",
) -> dict[str, Any]:
    prefix = f"uwa{uuid.uuid4().hex[:6]}"
    with bench_database(admin_url, commit_log=None, tag=tag) as url, broker() as b:
        lamps = [f"{prefix}-sl{k:05d}" for k in range(devices)]
        register_devices(url, "streetlight", lamps)
        register_devices(url, "manhole", ["PROBE-1"])
        engine = EngineProcess(url, b.url, prefix)
        gen = LoadGenerator(
            b.port,
            mode="device",
            prefix=prefix,
            rate=rate,
            seconds=seconds,
            devices=len(lamps),
            gateways=1,
            t0=time.time() + 3,
        )
        probe = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{prefix}-probe", protocol=mqtt.MQTTv5
        )
        host, port = b.url.removeprefix("mqtt://").split(":")
        probe.connect(host, int(port))
        probe.loop_start()
        gen.go()
        sent = 0
        end = time.time() + seconds
        while time.time() < end:
            ts = time.time()
            body = {"ts": int(ts * 1000), "cover_open": sent % 2 == 0}
            probe.publish(telemetry_topic(prefix, "manhole", "PROBE-1"), orjson.dumps(body), qos=1)
            sent += 1
            time.sleep(0.2)
        paced = gen.result()
        with psycopg.connect(url) as conn:
            wait_for(
                lambda: conn.execute("SELECT count(*) FROM alert_events").fetchone()[0] >= sent,
                600,
                "the probe's alert events",
            )
            rows = conn.execute(
                "SELECT extract(epoch FROM e.at) "
                "- extract(epoch FROM (e.detail->>'at')::timestamptz) FROM alert_events e "
                "JOIN alerts a ON a.id = e.alert_id WHERE a.device_id = 'PROBE-1'"
            ).fetchall()
        rss = engine.rss_mb()
        probe.loop_stop()
        engine.stop()
    lat = [float(r[0]) for r in rows]
    return {
        "background_readings_per_s": paced["offered_readings_per_s"],
        "background_devices": devices,
        "probe_events": len(lat),
        "p50_s": pct(lat, 50),
        "p99_s": pct(lat, 99),
        "max_s": max(lat),
        "engine_rss_mb": rss,
    }


def offline(admin_url: str, devices: int, tag: str = "") -> dict[str, Any]:
    prefix = f"uwo{uuid.uuid4().hex[:6]}"
    text = default_rules_text()
    for old in ("2 * coalesce(attrs.heartbeat_s, heartbeat_s) + grace_s",):
        text = text.replace(f"after_s: {old}", "after_s: '20'")
    rules = parse_rules(text)
    with bench_database(admin_url, commit_log=None, tag=tag) as url, broker() as b:
        ids = [f"{prefix}-mh{k:05d}" for k in range(devices)]
        register_devices(url, "manhole", ids)
        with psycopg.connect(url, autocommit=True) as conn:
            rule_queries.store_rule_set(conn, rules, Actor.service("bench"))
        engine = EngineProcess(url, b.url, prefix)
        pub = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{prefix}-pub", protocol=mqtt.MQTTv5
        )
        host, port = b.url.removeprefix("mqtt://").split(":")
        pub.connect(host, int(port))
        pub.loop_start()
        now = int(time.time() * 1000)
        infos: list[mqtt.MQTTMessageInfo] = []
        for k, d in enumerate(ids):
            if k >= IN_FLIGHT:  # paho's message ids wrap at 65,535: keep fewer outstanding
                infos[k - IN_FLIGHT].wait_for_publish(60)
            body = orjson.dumps({"ts": now, "tilt_deg": 1.0})
            infos.append(pub.publish(telemetry_topic(prefix, "manhole", d), body, qos=1))
        for info in infos:
            info.wait_for_publish(60)
        published = time.time()
        with psycopg.connect(url) as conn:

            def count() -> int:
                return conn.execute(
                    "SELECT count(*) FROM alerts WHERE rule_id = 'MH_OFFLINE'"
                ).fetchone()[0]

            wait_for(lambda: count() >= devices, 600, "every offline alert")
            rows = conn.execute(
                "SELECT extract(epoch FROM e.at) - ((e.detail->>'last_seen')::float "
                "+ (e.detail->>'after_s')::float) FROM alert_events e "
                "JOIN alerts a ON a.id = e.alert_id WHERE a.rule_id = 'MH_OFFLINE'"
            ).fetchall()
        rss = engine.rss_mb()
        pub.loop_stop()
        engine.stop()
    spread = [float(r[0]) for r in rows]
    return {
        "devices": devices,
        "publish_s": published - now / 1000,
        "p50_s": pct(spread, 50),
        "p99_s": pct(spread, 99),
        "max_s": max(spread),
        "mean_s": statistics.fmean(spread),
        "engine_rss_mb": rss,
    }


def run(
    admin_url: str, quick: bool, parts: set[str] | None = None, tag: str = ""
) -> dict[str, Any]:
    """Every part (or `parts`), as bench/run.py's optional `alerts` part."""
    parts = parts or {"throughput", "latency", "offline"}
    out: dict[str, Any] = {}
    if "throughput" in parts:
        out["throughput"] = throughput(30_000 if quick else 300_000)
        print("throughput", json.dumps(out["throughput"]), file=sys.stderr)
    if "latency" in parts:
        out["latency"] = latency(admin_url, 5 if quick else 20, tag=tag)
        print("latency", json.dumps(out["latency"]), file=sys.stderr)
    if "offline" in parts:
        out["offline"] = offline(admin_url, 2_000 if quick else 71_500, tag=tag)
        print("offline", json.dumps(out["offline"]), file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.alerts", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--database-url", default="postgresql://127.0.0.1:5432/postgres")
    p.add_argument("--only", default="throughput,latency,offline")
    p.add_argument("--tag", default="", help="in the bench databases' names (uw_bench_TAG_*)")
    args = p.parse_args(argv)
    out = run(args.database_url, args.quick, set(args.only.split(",")), args.tag)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"alerts{'-quick' if args.quick else ''}.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
