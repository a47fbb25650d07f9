"""DMA water physics (docs/domain.md §5.4–5.6) in closed form.

Customer demand follows a diurnal curve (piecewise linear between hourly factors, mean 1),
so every meter register is an exact integral of its flow: customer totals are q × ∫f, and a
DMA's inflow is Σ customers + its true background leakage + any burst. Inflow − Σ customer
meters is therefore the leakage exactly, night flow bottoms out between 02:00 and 04:00, and
a burst raises night flow and pulls pressure down.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from simulators.devices import Dma, Meter
from simulators.sun import LOCAL, LOCAL_OFFSET_MS
from simulators.world import World

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
# Hourly demand factors from 00:00 local: morning and evening peaks, minimum at 03:00 [P,
# shaped like the MNF literature in docs/domain.md §5.5]. Normalised to a mean of 1 below.
RESIDENTIAL_RAW = (
    0.45,
    0.33,
    0.28,
    0.27,
    0.32,
    0.55,
    1.05,
    1.55,
    1.45,
    1.2,
    1.05,
    1.1,
    1.25,
    1.1,
    0.95,
    0.92,
    1.0,
    1.2,
    1.5,
    1.65,
    1.5,
    1.2,
    0.9,
    0.62,
)
COMMERCIAL_RAW = (
    0.2,
    0.15,
    0.12,
    0.12,
    0.15,
    0.3,
    0.7,
    1.2,
    1.6,
    1.75,
    1.8,
    1.7,
    1.5,
    1.6,
    1.7,
    1.7,
    1.6,
    1.45,
    1.2,
    1.0,
    0.8,
    0.6,
    0.4,
    0.3,
)
# Register readings count from here, so a meter's totals do not depend on when a run starts.
REFERENCE_MS = int(datetime(2020, 1, 1, tzinfo=LOCAL).timestamp() * 1000)
BURST_INLET_DROP = 0.3  # the inlet sees a third of the pressure drop at the zone's points


class Pattern:
    """A 24-hour demand curve with an exact running integral (hours × factor)."""

    def __init__(self, raw: tuple[float, ...]):
        mean = sum(raw) / len(raw)
        self.values = [v / mean for v in raw]
        self.cum = [0.0]
        for h in range(24):
            self.cum.append(self.cum[-1] + (self.values[h] + self.values[(h + 1) % 24]) / 2)
        self.peak = max(self.values)
        self._ref = 0.0
        self._ref = self.integral(REFERENCE_MS)

    def factor(self, t_ms: int) -> float:
        hours = ((t_ms + LOCAL_OFFSET_MS) % DAY_MS) / HOUR_MS
        h = int(hours)
        x = hours - h
        return self.values[h] + (self.values[(h + 1) % 24] - self.values[h]) * x

    def integral(self, t_ms: int) -> float:
        """∫ factor dt in hours, from the reference epoch to t."""
        local = t_ms + LOCAL_OFFSET_MS
        day, rest = divmod(local, DAY_MS)
        hours = rest / HOUR_MS
        h = int(hours)
        x = hours - h
        v0, v1 = self.values[h], self.values[(h + 1) % 24]
        return day * self.cum[24] + self.cum[h] + v0 * x + (v1 - v0) * x * x / 2 - self._ref


PATTERNS = {"residential": Pattern(RESIDENTIAL_RAW), "commercial": Pattern(COMMERCIAL_RAW)}


def inflow_volume(dma: Dma, t_ms: int, world: World) -> float:
    """m³ that entered the DMA from the reference epoch to t."""
    volume = (
        dma.residential_m3_h * PATTERNS["residential"].integral(t_ms)
        + dma.commercial_m3_h * PATTERNS["commercial"].integral(t_ms)
        + dma.leakage_m3_h * (t_ms - REFERENCE_MS) / HOUR_MS
    )
    for b in world.bursts.get(dma.dma_id, ()):
        volume += b.volume_m3(REFERENCE_MS, t_ms)
    return volume


def inflow_rate(dma: Dma, t_ms: int, world: World) -> tuple[float, float]:
    """Instantaneous inflow (m³/h) and the pressure drop of any burst in force (MPa)."""
    q = (
        dma.residential_m3_h * PATTERNS["residential"].factor(t_ms)
        + dma.commercial_m3_h * PATTERNS["commercial"].factor(t_ms)
        + dma.leakage_m3_h
    )
    drop = 0.0
    for b in world.bursts.get(dma.dma_id, ()):
        if b.start_ms <= t_ms < b.end_ms:
            q += b.flow_m3_h
            drop += b.pressure_drop_mpa
    return q, drop


def peak_flow(dma: Dma) -> float:
    return (
        dma.residential_m3_h * PATTERNS["residential"].peak
        + dma.commercial_m3_h * PATTERNS["commercial"].peak
        + dma.leakage_m3_h
    )


def register(meter: Meter, t_ms: int, world: World) -> float:
    """The meter's forward total (m³) at t."""
    if meter.role == "inlet":
        return meter.total0 + meter.share * inflow_volume(meter.dma, t_ms, world)
    return meter.total0 + meter.share * PATTERNS[meter.pattern].integral(t_ms)


def pressure(meter: Meter, t_ms: int, world: World) -> float:
    q, drop = inflow_rate(meter.dma, t_ms, world)
    loss = meter.headloss_mpa * (q / peak_flow(meter.dma)) ** 2
    if meter.role == "inlet":
        drop *= BURST_INLET_DROP
    return meter.dma.inlet_mpa - meter.elevation_mpa - loss - drop


def step(
    meter: Meter, t_ms: int, world: World, rng: random.Random
) -> tuple[dict[str, Any] | None, int]:
    p = world.params
    interval_s = {"inlet": p.water_inlet_interval_s, "pressure": p.water_pressure_interval_s}.get(
        meter.role, p.water_customer_interval_s
    )
    interval = interval_s * 1000
    payload: dict[str, Any] = {"device_id": meter.device_id, "ts": t_ms}
    if meter.role in ("inlet", "customer", "outlet"):
        total = register(meter, t_ms, world)
        mean = (total - register(meter, t_ms - interval, world)) / (interval / HOUR_MS)
        payload["flow_m3_h"] = round(max(mean * (1 + rng.gauss(0, p.water_flow_noise)), 0.0), 3)
        payload["fwd_total_m3"] = round(total, 3)
    if meter.role in ("inlet", "pressure"):
        noisy = pressure(meter, t_ms, world) + rng.gauss(0, p.water_pressure_noise_mpa)
        payload["pressure_mpa"] = round(max(noisy, 0.0), 4)
    payload["battery_v"] = round(3.6 + rng.gauss(0, 0.005), 3)
    payload["rsrp_dbm"] = round(meter.rsrp + rng.gauss(0, 2))
    meter.last_ms = t_ms
    nxt = (t_ms // interval + 1) * interval  # loggers report on the clock: :00, :15, …
    if world.faults.get(meter.device_id) and world.fault(meter.device_id, t_ms) == "comm_loss":
        return None, nxt
    return payload, nxt
