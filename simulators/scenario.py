"""Scenario files: scripted events (storms, bursts, faults) at known times, so that tests and
demos get exactly the alerts they expect. Format: docs/simulators.md."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.devices import Lamp
from simulators.faults import circuits
from simulators.fleet import Fleet
from simulators.sun import LOCAL, utc
from simulators.weather import Storm, Weather
from simulators.world import FAULTS_BY_KIND, Burst, Fault, World

SCENARIO_DIR = Path(__file__).parent / "scenarios"
FAULT_TYPES = sorted({f for fs in FAULTS_BY_KIND.values() for f in fs})
EventType = Literal[
    "storm",
    "burst",
    "lamp_out",
    "day_burn",
    "power_low",
    "power_high",
    "pf_low",
    "voltage_high",
    "voltage_low",
    "supply_loss",
    "comm_loss",
    "cover_open",
    "cover_flip",
    "gas",
    "low_battery",
]
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str | float) -> int:
    """`90s`, `10m`, `2h`, `1d` or a number of seconds, in milliseconds."""
    if isinstance(text, int | float):
        return int(text * 1000)
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 10m, 2h, 1d)")
    return int(float(match.group(1)) * _UNIT_MS[match.group(2)])


def resolve_at(text: str, start_ms: int) -> int:
    """`+10m` after the start, `HH:MM` local (first at or after the start), or ISO-8601."""
    text = text.strip()
    if text.startswith("+"):
        return start_ms + parse_duration(text[1:])
    if re.fullmatch(r"\d{1,2}:\d{2}", text):
        hour, minute = map(int, text.split(":"))
        local = utc(start_ms).astimezone(LOCAL)
        at = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
        if at.timestamp() * 1000 < start_ms:
            at += timedelta(days=1)
        return int(at.timestamp() * 1000)
    at_dt = datetime.fromisoformat(text)
    if at_dt.tzinfo is None:
        at_dt = at_dt.replace(tzinfo=LOCAL)
    return int(at_dt.timestamp() * 1000)


class Event(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: EventType
    at: str
    duration: str | float | None = None  # None: until the end of the run (storms: required)
    device: str | None = None
    circuit: str | None = None  # lamp faults: every lamp on this circuit
    dma: str | None = None
    districts: list[str] | None = None  # storms: where it rains (default everywhere)
    peak_mm_h: float = Field(60.0, gt=0, le=300)
    shape: Literal["triangle", "uniform"] = "triangle"
    peak_at: float = Field(0.4, gt=0, lt=1)
    flow_m3_h: float = Field(25.0, gt=0, le=2000)
    pressure_drop_mpa: float | None = Field(None, ge=0, le=1)

    @model_validator(mode="after")
    def _has_target(self) -> Event:
        if self.type == "storm" and self.duration is None:
            raise ValueError("a storm needs a duration")
        if self.type == "burst" and not (self.dma and self.duration is not None):
            raise ValueError("a burst needs a dma and a duration")
        if self.type not in ("storm", "burst") and not (self.device or self.circuit):
            raise ValueError(f"{self.type} needs a device (or, for lamps, a circuit)")
        return self


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    background_faults: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=list)


def load_scenario(name_or_path: str) -> Scenario:
    """A path to a YAML file, or the name of one shipped in simulators/scenarios/."""
    path = Path(name_or_path)
    if not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        shipped = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.yaml")))
        raise ValueError(f"no scenario {name_or_path!r} (shipped: {shipped})")
    try:
        return Scenario.model_validate(yaml.safe_load(path.read_text("utf-8")))
    except ValidationError as exc:
        raise ValueError(f"{path}: {exc}") from None


def apply_scenario(scenario: Scenario, fleet: Fleet, world: World, start_ms: int) -> None:
    """Put the scenario's storms, bursts and faults into the world; unknown targets raise."""
    devices = fleet.by_id()
    lamp_circuits = circuits([d for d in fleet.devices if isinstance(d, Lamp)])
    dmas = {d.dma_id for d in fleet.dmas}
    storms = list(world.weather.storms)
    for i, ev in enumerate(scenario.events):
        t0 = resolve_at(ev.at, start_ms)
        t1 = None if ev.duration is None else t0 + parse_duration(ev.duration)
        where = f"{scenario.name}: event {i + 1} ({ev.type})"
        if ev.type == "storm":
            assert t1 is not None
            storms.append(
                Storm(
                    t0,
                    t1,
                    ev.peak_mm_h,
                    ev.shape,
                    ev.peak_at,
                    frozenset(ev.districts) if ev.districts else None,
                )
            )
        elif ev.type == "burst":
            if ev.dma not in dmas:
                raise ValueError(f"{where}: no DMA {ev.dma!r} in this fleet")
            assert t1 is not None and ev.dma is not None
            drop = ev.pressure_drop_mpa
            if drop is None:
                drop = world.params.burst_pressure_drop_mpa
            world.add_burst(Burst(ev.dma, t0, t1, ev.flow_m3_h, drop, "scenario"))
        else:
            for device_id in _targets(ev, devices, lamp_circuits, where):
                world.add_fault(Fault(ev.type, device_id, t0, t1, "scenario", group=ev.circuit))
    world.weather = Weather(storms)


def _targets(
    ev: Event, devices: dict[str, Any], lamp_circuits: dict[str, list[str]], where: str
) -> list[str]:
    if ev.circuit:
        if ev.circuit not in lamp_circuits:
            raise ValueError(f"{where}: no circuit {ev.circuit!r} in this fleet")
        return lamp_circuits[ev.circuit]
    device = devices.get(ev.device or "")
    if device is None:
        raise ValueError(f"{where}: no device {ev.device!r} in this fleet")
    if ev.type not in FAULTS_BY_KIND[device.kind]:
        raise ValueError(f"{where}: a {device.kind} cannot have a {ev.type} fault")
    return [device.device_id]
