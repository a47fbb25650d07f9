"""Simulator throughput: readings per second from one process.

Three figures, each over a city-scale fleet at night (all 40k lamps lit and reporting):
  generate           readings produced by the physics (payload dicts), nothing else
  generate+serialize the same, serialized with orjson into gateway batches of 50
  publish QoS 1      the same batches published to a real broker at QoS 1, counted when the
                     broker has acknowledged them (PUBACK)

    .venv/bin/python -m bench.bench_simulator [--mqtt-url mqtt://host:1883] [--seconds 10]

Writes bench/results/simulator.json. The target (issue 3) is ≥ 50k readings/s batched, enough
to drive the ingest benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import uuid
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet
from simulators.publisher import Publisher
from simulators.sun import LOCAL, to_ms

RESULTS = Path(__file__).resolve().parent / "results" / "simulator.json"
BATCH = 50
SLICE_MS = 10_000  # simulated time per call to advance()
# 21:00 local on a summer night: lamps on, so the fleet's biggest kind reports every 15 min.
START = to_ms(datetime(2024, 7, 1, 21, 0, tzinfo=LOCAL))
TARGET = 50_000


def _simulation(scale: str) -> Simulation:
    fleet = make_fleet(1, scale)
    world = build_world(fleet, START, START + 86_400_000)
    return Simulation(fleet, world, START)


def _drive(sim: Simulation, seconds: float, sink: Any) -> tuple[int, float]:
    """Advance the simulation for `seconds` of wall time; returns (readings, seconds)."""
    t, n = START, 0
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        t += SLICE_MS
        for device, payload in sim.advance(t):
            sink(device, payload)
            n += 1
    return n, time.perf_counter() - began


def bench_generate(scale: str, seconds: float) -> dict[str, Any]:
    n, elapsed = _drive(_simulation(scale), seconds, lambda d, p: None)
    return {"readings": n, "seconds": round(elapsed, 2), "readings_per_s": round(n / elapsed)}


def bench_serialize(scale: str, seconds: float) -> dict[str, Any]:
    buffers: dict[str, list[dict[str, Any]]] = defaultdict(list)
    sizes = [0, 0]

    def sink(device: Any, payload: dict[str, Any]) -> None:
        buffer = buffers[device.gateway]
        buffer.append(payload)
        if len(buffer) >= BATCH:
            sizes[0] += len(orjson.dumps(buffer))
            sizes[1] += 1
            buffer.clear()

    n, elapsed = _drive(_simulation(scale), seconds, sink)
    return {
        "readings": n,
        "seconds": round(elapsed, 2),
        "readings_per_s": round(n / elapsed),
        "batch": BATCH,
        "mean_message_bytes": round(sizes[0] / max(sizes[1], 1)),
    }


def bench_publish(scale: str, seconds: float, mqtt_url: str) -> dict[str, Any]:
    sim = _simulation(scale)
    prefix = f"uwbench-{uuid.uuid4().hex[:8]}"
    publisher = Publisher(mqtt_url, prefix, client_id=f"{prefix}-sim", batch=BATCH)
    publisher.connect()
    began = time.perf_counter()
    try:
        _drive(sim, seconds, publisher.add)
    finally:
        publisher.close(timeout=60)
    elapsed = time.perf_counter() - began
    return {
        "readings": publisher.readings,
        "messages": publisher.messages,
        "acked_messages": publisher.acked,
        "seconds": round(elapsed, 2),
        "readings_per_s": round(publisher.readings / elapsed),
        "qos": 1,
        "batch": BATCH,
        "broker": mqtt_url,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--mqtt-url",
        default=os.environ.get("MQTT_URL", "mqtt://127.0.0.1:1883"),
        help="broker for the publish figure (default $MQTT_URL or local 1883)",
    )
    parser.add_argument("--scale", default="city", help="fleet scale (default city)")
    parser.add_argument("--seconds", type=float, default=10.0, help="wall seconds per figure")
    parser.add_argument("--no-publish", action="store_true", help="skip the broker figure")
    args = parser.parse_args()
    figures = {
        "generate": bench_generate(args.scale, args.seconds),
        "generate_serialize_batched": bench_serialize(args.scale, args.seconds),
    }
    if not args.no_publish:
        figures["publish_qos1_batched"] = bench_publish(args.scale, args.seconds, args.mqtt_url)
    result = {
        "benchmark": "simulator",
        "at": datetime.now(LOCAL).isoformat(timespec="seconds"),
        "scale": args.scale,
        "target_readings_per_s": TARGET,
        "figures": figures,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'figure':30} {'readings':>10} {'seconds':>8} {'readings/s':>11}")
    for name, f in figures.items():
        mark = "ok" if f["readings_per_s"] >= TARGET else "below target"
        print(f"{name:30} {f['readings']:>10} {f['seconds']:>8} {f['readings_per_s']:>11}  {mark}")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
