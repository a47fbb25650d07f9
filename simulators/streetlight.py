"""Single-lamp controller physics (docs/domain.md §4.2–4.3): dusk-to-dawn switching, power by lamp
type and dimming, and the faults the alert rules look for."""

from __future__ import annotations

import random
from typing import Any

from simulators.devices import Lamp
from simulators.sun import LOCAL_OFFSET_MS
from simulators.world import World

# Draw at full output relative to rated power: ballast and driver losses [V/P].
DRAW = {"LED": 1.0, "HPS": 1.12, "MH": 1.1, "CFL": 1.05, "other": 1.05}
# What each fault does to power, power factor and voltage (docs/domain.md §4.3 thresholds).
POWER_LOW = 0.5  # SL_POWER_LOW below 0.75 × expected
POWER_HIGH = 1.45  # SL_POWER_HIGH above 1.30 × expected
PF_LOW = 0.42  # SL_PF_LOW below 0.5
V_HIGH = 251.0  # SL_V_HIGH above 242 V
V_LOW = 189.0  # SL_V_LOW below 198 V
DERATED = 0.6  # a DALI driver in thermal derating cuts its output [P]
# A relay stuck in one position whatever the controller commands (SL_RELAY_FAIL): its
# feedback contact tells the truth, so the mismatch with the command is visible [V EXEDRA].
STUCK = {"relay_stuck_open": False, "relay_stuck_closed": True}
HOUR_MS = 3_600_000
# The hot path uses uniform noise (random() is ~20x cheaper than gauss()); a uniform on
# (-0.5, 0.5) scaled by √12 has unit standard deviation.
UNIFORM_SD = 12**0.5


def dim_level(lamp: Lamp, t_ms: int, world: World) -> float:
    """Commanded output 0–1: LED lamps dim for the quiet part of the night."""
    p = world.params
    if lamp.lamp_type != "LED":
        return 1.0
    hour = ((t_ms + LOCAL_OFFSET_MS) // HOUR_MS) % 24
    if p.lamp_dim_from_h <= hour or hour < p.lamp_dim_to_h:
        return p.lamp_dim_level
    return 1.0


def step(
    lamp: Lamp, t_ms: int, world: World, rng: random.Random
) -> tuple[dict[str, Any] | None, int]:
    p = world.params
    fault = world.fault(lamp.device_id, t_ms) if world.faults else None
    # What the controller commands: its schedule (a day-burning controller's own clock or
    # photocell is wrong, so it commands on); the relay follows unless it is stuck.
    commanded = world.clock.is_on(t_ms) or fault == "day_burn"
    on = STUCK.get(fault, commanded) if fault else commanded
    supply = fault != "supply_loss"
    d = dim_level(lamp, t_ms, world) if on else 0.0
    volts = (
        0.0
        if not supply
        else p.supply_v + lamp.v_offset + (rng.random() - 0.5) * UNIFORM_SD * p.supply_noise_v
    )
    if fault == "voltage_high":
        volts = V_HIGH + rng.uniform(0, 4)
    elif fault == "voltage_low":
        volts = V_LOW + rng.uniform(-4, 3)
    watts, pf = _power(lamp, d, on and supply, fault, rng)
    # Energy and hours accrue over the interval that ends now, at the power it ran at.
    if lamp.last_ms:
        hours = (t_ms - lamp.last_ms) / HOUR_MS
        lamp.energy_kwh += lamp.last_p * hours / 1000
        lamp.hours += hours if lamp.last_on else 0.0
    if not supply and lamp.last_supply:
        lamp.supply_loss_count += 1
    lamp.last_ms, lamp.last_p, lamp.last_on, lamp.last_supply = t_ms, watts, on and supply, supply
    payload = (
        None
        if fault == "comm_loss"
        else {
            "device_id": lamp.device_id,
            "ts": t_ms,
            "power_state": "on" if on and supply else "off",
            "active_power_w": round(watts, 2),
            "supply_voltage_v": round(volts, 1),
            "supply_current_a": round(watts / (volts * (pf or 0.5)), 3) if volts > 0 else 0.0,
            "power_factor": round(pf, 3) if pf else None,
            "light_state_pct": round(d * 100),
            "active_energy_kwh": round(lamp.energy_kwh, 3),
            "lamp_operating_hours": round(lamp.hours, 2),
            "controller_temp_c": round(
                18.0 + (9.0 if watts > 5 else 0.0) + (rng.random() - 0.5) * 2.8, 1
            ),
            "supply_loss_count": lamp.supply_loss_count,
            "rsrp_dbm": round(lamp.rsrp + (rng.random() - 0.5) * 7),
            "commanded_state": "on" if commanded else "off",
            "relay_feedback": "closed" if on else "open",
        }
    )
    if payload is not None and on and supply:  # DALI diagnostics need a powered driver [V]
        payload["driver_thermal_derating"] = fault == "driver_derating"
        payload["driver_thermal_shutdown"] = False
        payload["driver_gear_failure"] = fault == "driver_fault"
    # metering at the lit cadence while the lamp burns or should
    return payload, _next(lamp, t_ms, on or commanded, world)


def _power(
    lamp: Lamp, d: float, lit: bool, fault: str | None, rng: random.Random
) -> tuple[float, float | None]:
    """Active power (W) and power factor for dim level d."""
    if not lit:
        return 0.0, None
    if fault in ("lamp_out", "driver_fault"):  # the controller still draws a little
        return 0.6 + rng.uniform(0, 0.8), None
    output = 0.05 + 0.95 * d if lamp.lamp_type == "LED" else d
    watts = lamp.rated_power_w * DRAW[lamp.lamp_type] * lamp.efficiency * output
    watts *= 1 + (rng.random() - 0.5) * 0.035
    pf = lamp.pf - (0.05 if d < 1 else 0.0)
    if fault == "power_low":
        watts *= POWER_LOW
    elif fault == "power_high":
        watts *= POWER_HIGH
    elif fault == "driver_derating":
        watts *= DERATED
    elif fault == "pf_low":
        pf = PF_LOW + rng.uniform(-0.03, 0.03)
    return max(watts, 0.0), min(max(pf, 0.05), 1.0)


def _next(lamp: Lamp, t_ms: int, on: bool, world: World) -> int:
    p = world.params
    interval = (p.lamp_on_interval_s if on else p.lamp_off_interval_s) * 1000
    # Each controller's clock and photocell differ a little: it switches `clock_offset_ms` late.
    switch = world.clock.next_switch(t_ms) + lamp.clock_offset_ms
    nxt = min(t_ms + interval, switch)
    edge = world.next_edge(lamp.device_id, t_ms) if world.faults.get(lamp.device_id) else None
    return min(nxt, edge) if edge else nxt
