"""功能照明 single-lamp streetlight controllers (docs/domain.md §4)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from urbanwatch.kinds.base import Attrs, Cadence, KindSpec, Reading, agg, bounded


class StreetlightReading(Reading):
    """Single-lamp controller, docs/domain.md §4.2."""

    PRIMARY: ClassVar[tuple[str, ...]] = (
        "power_state",
        "active_power_w",
        "supply_voltage_v",
        "supply_current_a",
    )
    power_state: Literal["on", "off", "low", "bootingUp"] | None = None
    active_power_w: float | None = bounded(0, 2000)
    supply_voltage_v: float | None = bounded(0, 300)
    supply_current_a: float | None = bounded(0, 20)
    power_factor: float | None = bounded(0, 1)
    light_state_pct: float | None = bounded(0, 100)
    active_energy_kwh: float | None = bounded(0, 1e9)
    lamp_operating_hours: float | None = bounded(0, 1e6)
    controller_temp_c: float | None = bounded(-60, 150)
    leakage_current_ma: float | None = bounded(0, 1000)
    supply_loss_count: int | None = bounded(0, 2_000_000_000)
    rsrp_dbm: float | None = bounded(-160, -20)
    # Added by migration 030 (SL_RELAY_FAIL, SL_DRIVER_FAULT): what the schedule or the last
    # command asks of the lamp, the relay's own feedback contact, and the DALI driver's
    # diagnostic flags (Part 253 memory bank 205 `errorThermalDerating`,
    # `errorThermalShutDown`; the IEC 62386-102 status byte's control gear failure bit) [V].
    commanded_state: Literal["on", "off"] | None = None
    relay_feedback: Literal["closed", "open"] | None = None
    driver_thermal_derating: bool | None = None
    driver_thermal_shutdown: bool | None = None
    driver_gear_failure: bool | None = None


class StreetlightAttrs(Attrs):
    lamp_type: Literal["LED", "HPS", "MH", "CFL", "other"] | None = None
    rated_power_w: float | None = Field(None, gt=0, le=2000)
    road_class: str | None = None
    circuit_id: str | None = None
    cabinet_id: str | None = None
    pole_id: str | None = None


SPEC = KindSpec(
    name="streetlight",
    title="路灯 street lighting",
    reading=StreetlightReading,
    attrs=StreetlightAttrs,
    # Metering every 15 min while the lamp is on, a 60-min heartbeat while it is off; state
    # changes and faults at once [P]. Offline (SL_COMM_LOSS) after 2 missed cycles [P].
    cadence=Cadence(report_s=900, heartbeat_s=3600, fast_s=None, grace_s=0, source="§4.2 [P]"),
    rollups=(
        agg("on_count", "count(*) FILTER (WHERE power_state IN ('on', 'low'))"),
        agg("avg_active_power_w"),
        agg("max_active_power_w"),
        agg("min_supply_voltage_v"),
        agg("max_supply_voltage_v"),
        agg("avg_power_factor"),
        agg("max_active_energy_kwh", device_only=True),
    ),
)
