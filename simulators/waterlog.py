"""Road ponding sensors and rain gauges (docs/domain.md §3.2). Rain drives the depth at each ledger
point through a linear reservoir: water ponds at the rate rain exceeds the point's drainage
capacity and drains with a time constant. Unremediated points have little capacity and drain
slowly; remediated ones carry the design storm away. Cadence tightens in rain and in floods,
and the depth sensor sends extra reports (加报) when water appears and as a flood moves."""

from __future__ import annotations

import math
import random
from typing import Any

from simulators.devices import DepthReports, WaterlogPoint, WaterlogSensor
from simulators.params import Params
from simulators.weather import STEP_MS
from simulators.world import World

MAX_DEPTH_CM = 120.0  # the road overflows sideways beyond this [P]
SENSOR_NOISE_CM = 0.3  # ±1 cm class sensor (docs/domain.md §3.2)
PRESENT_CM = 0.5  # the conductivity electrodes see water above this
HOUR_MS = 3_600_000
SAMPLE_S = 10  # in rain mode the sensor measures every 10 s; only the radio is costly [P]
CHANGE_CM = 2.0  # at or above L1, a change this large is reported at once (docs/domain.md §3.2) [P]


def advance_point(point: WaterlogPoint, t_ms: int, world: World) -> float:
    """Bring the point's depth forward to t and return it (cm), in steps of at most a
    minute with the rain at each step's middle (a sensor sampling every few seconds moves
    it in short steps)."""
    start = point.depth_ms or t_ms
    if t_ms <= start:
        point.depth_ms = max(point.depth_ms, t_ms)
        return point.depth_cm
    if not world.weather.raining(start, t_ms):
        point.depth_cm *= math.exp(-(t_ms - start) / HOUR_MS / point.drain_tau_h)
    else:
        t = start
        while t < t_ms:
            step = min(STEP_MS, t_ms - t)
            rain = world.weather.intensity(t + step // 2, point.district) * point.rain_factor
            inflow = point.gain_cm_per_mm * max(0.0, rain - point.capacity_mm_h)  # cm/h
            decay = math.exp(-step / HOUR_MS / point.drain_tau_h)
            point.depth_cm = point.depth_cm * decay + inflow * point.drain_tau_h * (1 - decay)
            t += step
    point.depth_cm = min(point.depth_cm, MAX_DEPTH_CM)
    point.depth_ms = t_ms
    return point.depth_cm


def step(
    sensor: WaterlogSensor, t_ms: int, world: World, rng: random.Random
) -> tuple[dict[str, Any] | None, int]:
    faults = world.faults.get(sensor.device_id)
    payload: dict[str, Any] | None
    if sensor.role == "rain":
        payload, nxt = _gauge(sensor, t_ms, world)
        sensor.last_ms = t_ms
    else:
        # A fault's start or end wakes the sensor and it reports (e.g. back from a comm loss).
        at_edge = bool(faults) and any(t_ms in (f.start_ms, f.end_ms) for f in faults or ())
        payload, nxt = _depth(sensor, t_ms, world, rng, at_edge)
    if payload is not None:
        payload.update(
            {
                "temp_c": round(15.0 + rng.gauss(0, 0.5), 1),
                "battery_v": round(sensor.battery_v0 + rng.gauss(0, 0.005), 3),
                "rsrp_dbm": round(sensor.rsrp + rng.gauss(0, 2)),
            }
        )
    if faults:
        edge = world.next_edge(sensor.device_id, t_ms)
        nxt = min(nxt, edge) if edge else nxt
        if world.fault(sensor.device_id, t_ms) == "comm_loss":
            return None, nxt
    return payload, nxt


def decide(
    r: DepthReports,
    p: Params,
    t_ms: int,
    depth_cm: float,
    present: bool,
    raining: bool,
    force: bool = False,
) -> tuple[bool, int]:
    """A depth sensor takes a sample at t: whether it reports it, and when it samples next.

    docs/domain.md §3.2: a heartbeat every hour when dry; rain mode (rain, or water on the road, in
    the last 30 min) reports every 5 min; at or above L1 (15 cm) every minute. Extra reports
    (加报) go out at once when the sensor enters rain mode, when water is detected, when the
    depth reaches L1, and on any change of 2 cm or more at or above L1. In rain mode the
    sensor samples every SAMPLE_S; when dry it sleeps until its heartbeat (the caller also
    wakes it when rain starts)."""
    if raining or present:
        r.wet_ms = t_ms
    rain_mode = t_ms - r.wet_ms < p.waterlog_rain_mode_exit_min * 60_000
    flood = p.waterlog_flood_cm
    if depth_cm >= flood:
        interval_ms = p.waterlog_flood_interval_s * 1000
    elif rain_mode:
        interval_ms = p.waterlog_rain_interval_s * 1000
    else:
        interval_ms = p.waterlog_dry_interval_s * 1000
    report = (
        force
        or r.last_ms is None
        or t_ms - r.last_ms >= interval_ms
        or (rain_mode and not r.rain_mode)
        or (present and not r.present)
        or r.last_cm < flood <= depth_cm
        or (max(depth_cm, r.last_cm) >= flood and abs(depth_cm - r.last_cm) >= CHANGE_CM)
    )
    r.present, r.rain_mode = present, rain_mode
    if report:
        r.last_ms, r.last_cm = t_ms, depth_cm
    assert r.last_ms is not None
    nxt = r.last_ms + interval_ms
    return report, min(nxt, t_ms + SAMPLE_S * 1000) if rain_mode else nxt


def _depth(
    sensor: WaterlogSensor, t_ms: int, world: World, rng: random.Random, force: bool
) -> tuple[dict[str, Any] | None, int]:
    p, point = world.params, sensor.point
    assert point is not None
    depth = advance_point(point, t_ms, world)
    present = depth >= PRESENT_CM  # the electrodes, not the ranging, tell water is there
    measured = round(max(depth + rng.gauss(0, SENSOR_NOISE_CM), 0.0), 1) if present else 0.0
    raining = world.weather.raining(t_ms, t_ms + SAMPLE_S * 1000, point.district)
    report, nxt = decide(sensor.reports, p, t_ms, measured, present, raining, force)
    sensor.last_ms = sensor.reports.last_ms or 0
    start = world.weather.next_start(t_ms)
    nxt = min(nxt, start) if start else nxt
    if not report:
        return None, nxt
    payload = {
        "device_id": sensor.device_id,
        "ts": t_ms,
        "depth_cm": measured,
        "water_present": present,
    }
    return payload, nxt


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
