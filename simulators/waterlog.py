"""Road ponding sensors and rain gauges (docs/domain.md §3.2). Rain drives the depth at each ledger
point through a linear reservoir: water ponds at the rate rain exceeds the point's drainage
capacity and drains with a time constant. Unremediated points have little capacity and drain
slowly; remediated ones carry the design storm away. Cadence tightens in rain and in floods."""

from __future__ import annotations

import math
import random
from typing import Any

from simulators.devices import WaterlogPoint, WaterlogSensor
from simulators.weather import STEP_MS
from simulators.world import World

MAX_DEPTH_CM = 120.0  # the road overflows sideways beyond this [P]
SENSOR_NOISE_CM = 0.3  # ±1 cm class sensor (docs/domain.md §3.2)
PRESENT_CM = 0.5  # the conductivity electrodes see water above this
HOUR_MS = 3_600_000


def advance_point(point: WaterlogPoint, t_ms: int, world: World) -> float:
    """Bring the point's depth forward to t and return it (cm)."""
    start = point.depth_ms or t_ms
    if t_ms <= start:
        point.depth_ms = max(point.depth_ms, t_ms)
        return point.depth_cm
    if not world.weather.raining(start, t_ms):
        point.depth_cm *= math.exp(-(t_ms - start) / HOUR_MS / point.drain_tau_h)
    else:
        decay = math.exp(-STEP_MS / HOUR_MS / point.drain_tau_h)
        t = start
        while t < t_ms:
            rain = world.weather.intensity(t + STEP_MS // 2, point.district) * point.rain_factor
            inflow = point.gain_cm_per_mm * max(0.0, rain - point.capacity_mm_h)  # cm/h
            point.depth_cm = point.depth_cm * decay + inflow * point.drain_tau_h * (1 - decay)
            t += STEP_MS
    point.depth_cm = min(point.depth_cm, MAX_DEPTH_CM)
    point.depth_ms = t_ms
    return point.depth_cm


def step(
    sensor: WaterlogSensor, t_ms: int, world: World, rng: random.Random
) -> tuple[dict[str, Any] | None, int]:
    if sensor.role == "rain":
        payload, nxt = _gauge(sensor, t_ms, world)
    else:
        payload, nxt = _depth(sensor, t_ms, world, rng)
    payload.update(
        {
            "temp_c": round(15.0 + rng.gauss(0, 0.5), 1),
            "battery_v": round(sensor.battery_v0 + rng.gauss(0, 0.005), 3),
            "rsrp_dbm": round(sensor.rsrp + rng.gauss(0, 2)),
        }
    )
    sensor.last_ms = t_ms
    if world.faults.get(sensor.device_id):
        edge = world.next_edge(sensor.device_id, t_ms)
        nxt = min(nxt, edge) if edge else nxt
        if world.fault(sensor.device_id, t_ms) == "comm_loss":
            return None, nxt
    return payload, nxt


def _depth(
    sensor: WaterlogSensor, t_ms: int, world: World, rng: random.Random
) -> tuple[dict[str, Any], int]:
    p, point = world.params, sensor.point
    assert point is not None
    depth = advance_point(point, t_ms, world)
    ahead = t_ms + p.waterlog_rain_interval_s * 1000
    raining = world.weather.raining(t_ms, ahead, point.district)
    if raining or depth >= 1.0:
        sensor.wet_ms = t_ms
    wet_recently = t_ms - sensor.wet_ms < p.waterlog_rain_mode_exit_min * 60_000
    measured = max(depth + rng.gauss(0, SENSOR_NOISE_CM), 0.0) if depth >= PRESENT_CM else 0.0
    payload = {
        "device_id": sensor.device_id,
        "ts": t_ms,
        "depth_cm": round(measured, 1),
        "water_present": depth >= PRESENT_CM,
    }
    if depth >= p.waterlog_flood_cm:
        interval = p.waterlog_flood_interval_s
    elif raining or wet_recently:
        interval = p.waterlog_rain_interval_s
    else:
        interval = p.waterlog_dry_interval_s
    nxt = t_ms + interval * 1000
    start = world.weather.next_start(t_ms)
    return payload, min(nxt, start) if start else nxt


def _gauge(sensor: WaterlogSensor, t_ms: int, world: World) -> tuple[dict[str, Any], int]:
    p = world.params
    start = sensor.last_ms or t_ms - p.rain_gauge_dry_interval_s * 1000
    fallen = sensor.rain_residual_mm + world.weather.rain_mm(start, t_ms, sensor.district)
    tips = math.floor(fallen / p.rain_bucket_mm + 1e-9)
    rain = tips * p.rain_bucket_mm
    sensor.rain_residual_mm = fallen - rain
    hours = (t_ms - start) / HOUR_MS
    payload = {
        "device_id": sensor.device_id,
        "ts": t_ms,
        "rain_mm": round(rain, 1),
        "rain_intensity_mm_h": round(rain / hours, 1) if hours > 0 else 0.0,
    }
    interval = p.rain_gauge_dry_interval_s
    if world.weather.raining(t_ms, t_ms + p.rain_gauge_rain_interval_s * 1000, sensor.district):
        interval = p.rain_gauge_rain_interval_s
    nxt = t_ms + interval * 1000
    storm = world.weather.next_start(t_ms)
    return payload, min(nxt, storm) if storm else nxt
