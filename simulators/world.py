"""What the devices share: the sun, the weather, the faults and bursts in force, parameters."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from simulators.params import Params
from simulators.sun import LampClock
from simulators.weather import Weather

# Fault types per kind, as scenario files name them.
LAMP_FAULTS = (
    "lamp_out",
    "day_burn",
    "power_low",
    "power_high",
    "pf_low",
    "voltage_high",
    "voltage_low",
    "supply_loss",
    "comm_loss",
    "relay_stuck_open",
    "relay_stuck_closed",
    "driver_fault",
    "driver_derating",
)
COVER_FAULTS = ("cover_open", "cover_flip", "gas", "low_battery", "comm_loss")
WATERLOG_FAULTS = ("comm_loss",)
METER_FAULTS = ("comm_loss",)
FAULTS_BY_KIND = {
    "streetlight": LAMP_FAULTS,
    "manhole": COVER_FAULTS,
    "waterlog": WATERLOG_FAULTS,
    "watermeter": METER_FAULTS,
}


@dataclass(frozen=True)
class Fault:
    type: str
    device_id: str
    start_ms: int
    end_ms: int | None  # None: lasts to the end of the run
    source: str  # "scenario" or "background"
    group: str | None = None  # e.g. the circuit of a supply loss

    def active(self, t_ms: int) -> bool:
        return self.start_ms <= t_ms and (self.end_ms is None or t_ms < self.end_ms)


@dataclass(frozen=True)
class Burst:
    dma_id: str
    start_ms: int
    end_ms: int
    flow_m3_h: float
    pressure_drop_mpa: float
    source: str

    def volume_m3(self, t0_ms: int, t1_ms: int) -> float:
        lo, hi = max(t0_ms, self.start_ms), min(t1_ms, self.end_ms)
        return self.flow_m3_h * max(0, hi - lo) / 3_600_000


@dataclass
class World:
    params: Params = field(default_factory=Params)
    weather: Weather = field(default_factory=Weather)
    faults: dict[str, list[Fault]] = field(default_factory=lambda: defaultdict(list))
    bursts: dict[str, list[Burst]] = field(default_factory=lambda: defaultdict(list))
    clock: LampClock = field(init=False)

    def __post_init__(self) -> None:
        self.clock = LampClock(
            self.params.lamp_on_after_sunset_min, self.params.lamp_off_before_sunrise_min
        )

    def add_fault(self, fault: Fault) -> None:
        self.faults[fault.device_id].append(fault)

    def add_burst(self, burst: Burst) -> None:
        self.bursts[burst.dma_id].append(burst)

    def fault(self, device_id: str, t_ms: int) -> str | None:
        """The fault in force on a device at t (the earliest-starting one wins)."""
        found = self.faults.get(device_id)
        if not found:
            return None
        for f in found:
            if f.active(t_ms):
                return f.type
        return None

    def next_edge(self, device_id: str, t_ms: int) -> int | None:
        """The next fault start or end strictly after t: devices report immediately then."""
        edges = [
            e
            for f in self.faults.get(device_id, ())
            for e in (f.start_ms, f.end_ms)
            if e is not None and e > t_ms
        ]
        return min(edges) if edges else None

    def all_faults(self) -> list[Fault]:
        return sorted(
            (f for fs in self.faults.values() for f in fs), key=lambda f: (f.start_ms, f.device_id)
        )

    def all_bursts(self) -> list[Burst]:
        return sorted((b for bs in self.bursts.values() for b in bs), key=lambda b: b.start_ms)
