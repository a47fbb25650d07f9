"""Physics and cadence parameters of the simulated devices, in one place.

Defaults follow docs/domain.md (section and evidence tag in each comment). A scenario file can
override any of them under `params:` (docs/simulators.md); fleet-level ranges (lamp powers,
ponding capacities, DMA leakage shares) are constants at the top of the fleet modules.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from urbanwatch.kinds import SPECS

# Reporting cadences are the kinds' own (urbanwatch/kinds/): the simulated devices send
# what ingest and offline detection expect.
_COVER = SPECS["manhole"].cadence
_PONDING = SPECS["waterlog"].cadence
_LAMP = SPECS["streetlight"].cadence
_METER = SPECS["watermeter"].cadence


@dataclass(frozen=True)
class Params:
    # --- streetlights (docs/domain.md §4.2, §4.3) ---
    lamp_on_interval_s: int = _LAMP.report_s  # metering every 15 min while on [P]
    lamp_off_interval_s: int = _LAMP.heartbeat_s  # heartbeat every 60 min while off [P]
    lamp_on_after_sunset_min: float = 10.0  # switch on at sunset + 10 min [P]
    lamp_off_before_sunrise_min: float = 10.0  # switch off at sunrise − 10 min [P]
    lamp_dim_level: float = 0.5  # part-night dimming of LED lamps [P]
    lamp_dim_from_h: int = 23  # local hour dimming starts
    lamp_dim_to_h: int = 5  # local hour dimming ends
    lamp_standby_w: float = 0.6  # controller's own draw with the lamp off or failed
    supply_v: float = 228.0  # measured supply on 220 V circuits (EXEDRA example 241 V) [V]
    supply_noise_v: float = 1.5
    # --- manhole covers (docs/domain.md §2.2) ---
    cover_module_interval_s: int = _COVER.report_s  # level/gas modules: every 15–60 min [P]
    cover_tilt_noise_deg: float = 0.15
    cover_open_tilt_deg: tuple[float, float] = (14.0, 35.0)  # a lifted cover, > 10° (MH_TILT)
    cover_battery_drain_v_per_year: float = 0.02  # Li-SOCl₂ stays flat for years
    cover_low_battery_v: float = 3.22  # a drained cell (MH_LOW_BATT < 3.3 V)
    cover_gas_lel: float = 30.0  # %LEL of a gas event (MH_GAS_L1 ≥ 10, L2 ≥ 50)
    # --- waterlogging (docs/domain.md §3.2) ---
    waterlog_dry_interval_s: int = _PONDING.heartbeat_s  # dry heartbeat 60 min [P]
    waterlog_rain_interval_s: int = _PONDING.fast_s or 300  # rain mode: every 5 min [P]
    waterlog_flood_interval_s: int = _PONDING.urgent_s or 60  # depth ≥ 15 cm: every minute [P]
    waterlog_flood_cm: float = 15.0
    waterlog_rain_mode_exit_min: float = 30.0  # leave rain mode after 30 min dry [P]
    rain_gauge_dry_interval_s: int = _PONDING.heartbeat_s  # hourly totals when dry [P]
    rain_gauge_rain_interval_s: int = _PONDING.fast_s or 300  # 5-min totals in rain [P]
    rain_bucket_mm: float = 0.1  # tipping-bucket resolution [V]
    # --- water (docs/domain.md §5.4) ---
    water_inlet_interval_s: int = _METER.report_s  # 15-min logging (UK practice) [S]
    water_pressure_interval_s: int = _METER.report_s
    water_customer_interval_s: int = _METER.heartbeat_s
    water_flow_noise: float = 0.005  # relative noise on reported interval flow
    water_pressure_noise_mpa: float = 0.002
    burst_pressure_drop_mpa: float = 0.08  # WS_PRESSURE_DROP fires above 0.05 MPa


def with_overrides(params: Params, overrides: dict[str, Any]) -> Params:
    known = {f.name for f in fields(Params)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ValueError(f"params: unknown parameter(s) {', '.join(unknown)}")
    return replace(params, **overrides)
