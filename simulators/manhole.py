"""Smart cover monitor physics (docs/domain.md §2.2–2.3): tilt noise around a baseline, open
and flip events, storm water rising in the well, gas events, battery drain, heartbeat cadence."""

from __future__ import annotations

import math
import random
from typing import Any

from simulators.devices import Cover
from simulators.weather import STEP_MS
from simulators.world import World

WELL_DRAIN_TAU_H = 0.5  # storm water leaves a drainage well with this time constant [P]
ALARM_REPEAT_S = 600  # while in alarm, report every 10 min until it clears [P]
RAIN_REPORT_S = 300  # level modules report every 5 min while it rains [P]
DAY_MS = 86_400_000
YEAR_MS = 365.25 * DAY_MS


def step(
    cover: Cover, t_ms: int, world: World, rng: random.Random
) -> tuple[dict[str, Any] | None, int]:
    p = world.params
    fault = world.fault(cover.device_id, t_ms) if world.faults else None
    if cover.has_level:
        _update_well(cover, t_ms, world)
    is_open = fault in ("cover_open", "cover_flip")
    tilt = cover.baseline_deg + rng.gauss(0, p.cover_tilt_noise_deg)
    if fault == "cover_open":
        tilt = cover.baseline_deg + rng.uniform(*p.cover_open_tilt_deg)
    elif fault == "cover_flip":
        tilt = rng.uniform(95, 175)
    battery = _battery(cover, t_ms, fault, world, rng)
    payload: dict[str, Any] = {
        "device_id": cover.device_id,
        "ts": t_ms,
        "msg_type": "periodic",
        "tilt_deg": round(min(max(tilt, 0.0), 180.0), 1),
        "tilt_baseline_deg": cover.baseline_deg,
        "cover_open": is_open,
        "temp_c": round(_ground_temp(t_ms) + rng.gauss(0, 0.3), 1),
        "battery_v": round(battery, 3),
        "battery_pct": round(min(max((battery - 3.0) / 0.65, 0), 1) * 100),
        "rsrp_dbm": round(cover.rsrp + rng.gauss(0, 2)),
        "snr_db": round(rng.uniform(2, 15), 1),
    }
    distance = None
    if cover.has_level:
        distance = max(cover.well_depth_m - cover.base_level_m - cover.wet_m, 0.0)
        measured = round(distance + rng.gauss(0, 0.005), 3) if distance > 0.01 else 0.0
        payload["water_distance_m"] = max(measured, 0.0)
    if cover.has_gas or fault == "gas":
        payload.update(_gas(fault == "gas", p.cover_gas_lel, rng))
    alarm = is_open or fault == "gas" or (distance is not None and distance < 0.5)
    if alarm != cover.alarm:
        payload["msg_type"] = "alarm" if alarm else "alarm_clear"
    elif battery < 3.3:
        payload["msg_type"] = "low_battery"
    cover.alarm, cover.last_ms = alarm, t_ms
    return (None if fault == "comm_loss" else payload), _next(cover, t_ms, alarm, world)


def _update_well(cover: Cover, t_ms: int, world: World) -> None:
    """Advance the storm water in the well from the last report to t (linear reservoir)."""
    start = cover.last_ms or t_ms
    if not world.weather.raining(start, t_ms):
        cover.wet_m *= math.exp(-(t_ms - start) / 3_600_000 / WELL_DRAIN_TAU_H)
        return
    decay = math.exp(-STEP_MS / 3_600_000 / WELL_DRAIN_TAU_H)
    t = start
    while t < t_ms:
        rain = world.weather.intensity(t + STEP_MS // 2, cover.district)
        inflow = cover.runoff * rain  # m/h
        cover.wet_m = cover.wet_m * decay + inflow * WELL_DRAIN_TAU_H * (1 - decay)
        t += STEP_MS


def _battery(cover: Cover, t_ms: int, fault: str | None, world: World, rng: random.Random) -> float:
    if fault == "low_battery":
        return world.params.cover_low_battery_v + rng.gauss(0, 0.01)
    years = max(0.0, (t_ms / DAY_MS - cover.installed_at.toordinal() + 719163) / 365.25)
    drained = world.params.cover_battery_drain_v_per_year * years
    return cover.battery_v0 - drained + rng.gauss(0, 0.005)


def _gas(event: bool, lel: float, rng: random.Random) -> dict[str, float]:
    if event:
        return {
            "ch4_pct_lel": round(lel * rng.uniform(0.8, 1.2), 1),
            "h2s_ppm": round(rng.uniform(8, 15), 1),
            "co_ppm": round(rng.uniform(5, 15), 1),
            "o2_pct_vol": round(rng.uniform(19.0, 19.8), 1),
        }
    return {
        "ch4_pct_lel": round(rng.uniform(0, 2), 1),
        "h2s_ppm": round(rng.uniform(0, 1), 1),
        "co_ppm": round(rng.uniform(0, 5), 1),
        "o2_pct_vol": round(rng.uniform(20.6, 20.9), 1),
    }


def _ground_temp(t_ms: int) -> float:
    """Seasonal temperature inside a well: ~6 °C in January to ~22 °C in July."""
    day_of_year = (t_ms / DAY_MS) % 365.25
    return 14.0 + 8.0 * math.sin(2 * math.pi * (day_of_year - 105) / 365.25)


def _next(cover: Cover, t_ms: int, alarm: bool, world: World) -> int:
    p = world.params
    interval = p.cover_module_interval_s if cover.has_level or cover.has_gas else cover.heartbeat_s
    if alarm:
        interval = min(interval, ALARM_REPEAT_S)
    if cover.has_level and world.weather.raining(t_ms, t_ms + interval * 1000):
        interval = min(interval, RAIN_REPORT_S)
    nxt = t_ms + interval * 1000
    if cover.has_level and not alarm:
        start = world.weather.next_start(t_ms)
        nxt = min(nxt, start) if start else nxt
    edge = world.next_edge(cover.device_id, t_ms) if world.faults.get(cover.device_id) else None
    return min(nxt, edge) if edge else nxt
