"""Simulated devices: registry attributes plus the hidden parameters and small state the
physics needs. One class per kind; `row()` is the registry row (CSV columns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any


@dataclass(slots=True, kw_only=True)
class Device:
    device_id: str
    kind: str
    district: str
    lat: float
    lon: float
    installed_at: date
    attrs: dict[str, Any]
    gateway: str  # gateway batches group readings by this id
    shard: int  # which random stream drives this device (fixed by id, not by process)
    last_ms: int = 0  # time of the previous report (0: none yet)

    def row(self) -> dict[str, Any]:
        return {
            "device_id": self.device_id,
            "kind": self.kind,
            "district": self.district,
            "lat": self.lat,
            "lon": self.lon,
            "status": "active",
            "installed_at": self.installed_at.isoformat(),
            "gateway_id": self.gateway,  # batches come through it (docs/mqtt.md)
            **self.attrs,
        }


@dataclass(slots=True, kw_only=True)
class Lamp(Device):
    """Single-lamp controller on one luminaire (docs/domain.md §4.2)."""

    lamp_type: str
    rated_power_w: float
    circuit_id: str
    efficiency: float  # actual draw / nominal, per luminaire (ageing, driver tolerance)
    pf: float  # power factor at full output
    v_offset: float  # line drop or rise at this pole, V
    rsrp: float
    clock_offset_ms: int  # this controller switches a little after the astronomical time
    energy_kwh: float
    hours: float
    supply_loss_count: int = 0
    last_p: float = 0.0
    last_on: bool = False
    last_supply: bool = True


@dataclass(slots=True, kw_only=True)
class Cover(Device):
    """Smart cover monitor (docs/domain.md §2.2), with optional level and gas modules."""

    baseline_deg: float
    heartbeat_s: int
    well_depth_m: float
    base_level_m: float
    has_level: bool
    has_gas: bool
    runoff: float  # metres of well level per mm of rain, before drainage
    battery_v0: float
    rsrp: float
    wet_m: float = 0.0  # storm water currently in the well above its base level
    alarm: bool = False  # the previous report was an alarm


@dataclass
class WaterlogPoint:
    """A ledger point (积水点台账, docs/domain.md §3.4) and its ponding physics."""

    point_id: str
    name: str
    district: str
    lat: float
    lon: float
    point_type: str
    remediation_status: str
    remediated_at: date | None
    capacity_mm_h: float  # rain the drainage carries away without ponding
    gain_cm_per_mm: float  # ponding depth per mm of excess rain (catchment concentration)
    drain_tau_h: float  # time constant of draining
    rain_factor: float  # local rain relative to the district's
    depth_cm: float = 0.0
    depth_ms: int = 0  # time `depth_cm` refers to

    @property
    def remediated(self) -> bool:
        return self.remediation_status in ("remediated", "verified")


@dataclass(slots=True)
class DepthReports:
    """What a depth sensor remembers between samples to decide when to report
    (docs/domain.md §3.2)."""

    last_ms: int | None = None  # time of the last report (None: none yet)
    last_cm: float = 0.0  # the depth it reported then
    present: bool = False  # water_present at the previous sample
    rain_mode: bool = False  # in rain mode at the previous sample
    wet_ms: int = -(10**15)  # the last sample that saw rain or water


@dataclass(slots=True, kw_only=True)
class WaterlogSensor(Device):
    """Road ponding sensor (role depth) or tipping-bucket rain gauge (role rain)."""

    role: str
    point: WaterlogPoint | None
    battery_v0: float
    rsrp: float
    rain_residual_mm: float = 0.0  # rain gauge: rain in the bucket not yet tipped
    reports: DepthReports = field(default_factory=DepthReports)  # depth sensor


@dataclass
class Dma:
    """District metered area: its demand, its true leakage and its pressure regime."""

    dma_id: str
    district: str
    households: int
    residential_m3_h: float  # mean residential consumption
    commercial_m3_h: float  # mean non-residential consumption
    leakage_m3_h: float  # true background leakage (ground truth)
    inlet_mpa: float  # pressure at the inlet with no flow
    mains_km: float
    inlet_shares: list[float] = field(default_factory=list)

    @property
    def consumption_m3_h(self) -> float:
        return self.residential_m3_h + self.commercial_m3_h


@dataclass(slots=True, kw_only=True)
class Meter(Device):
    """Inlet flow meter, customer (bulk) meter or pressure point of one DMA
    (docs/domain.md §5.4)."""

    role: str
    dma: Dma
    share: float  # inlet: share of the DMA's inflow; customer: mean m³/h
    pattern: str  # customer demand pattern: residential or commercial
    headloss_mpa: float  # pressure lost to friction at peak flow (pressure points and inlets)
    elevation_mpa: float  # static difference from the inlet
    total0: float  # register reading at the reference epoch
    rsrp: float
