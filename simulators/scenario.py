"""Scenario files: scripted events (storms, bursts, faults) at known times, so that tests and
demos get exactly the alerts they expect. Format: docs/simulators.md."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from simulators.devices import Lamp
from simulators.faults import circuits
from simulators.fleet import Fleet
from simulators.sun import LOCAL, LampClock, utc
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
    "relay_stuck_open",
    "relay_stuck_closed",
    "driver_fault",
    "driver_derating",
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
    every: str | float | None = None  # recur this often until the end of the run
    only: Literal["day", "night"] | None = None  # happen only if lamps are off / on at `at`
    # A target, or with `every` a list the occurrences take in turn.
    device: str | list[str] | None = None
    circuit: str | list[str] | None = None  # lamp faults: every lamp on this circuit
    dma: str | list[str] | None = None
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
        lists = [t for t in (self.device, self.circuit, self.dma) if isinstance(t, list)]
        if lists and self.every is None:
            raise ValueError("a list of targets needs `every` (occurrences take them in turn)")
        if self.every is not None:
            if self.duration is None:
                raise ValueError("a recurring event needs a duration")
            every, duration = parse_duration(self.every), parse_duration(self.duration)
            if every <= 0:
                raise ValueError("`every` must be positive")
            turn = len(lists[0]) if lists else 1
            if self.type != "storm" and duration > every * turn:
                raise ValueError(
                    f"occurrences would overlap on one target: {self.type} lasts longer than "
                    f"`every` × {turn} target(s)"
                )
        return self

    def targets(self) -> list[str | None]:
        """The target of each turn: occurrence k takes turn k mod len (one turn if fixed)."""
        target = self.circuit or self.device or self.dma
        return list(target) if isinstance(target, list) else [target]

    def occurrences(self, start_ms: int, end_ms: int | None) -> Iterator[tuple[int, int | None]]:
        """(start, end) of each occurrence that starts before end_ms: one, or with `every`
        one per period (without end_ms: the first only)."""
        t0 = resolve_at(self.at, start_ms)
        length = None if self.duration is None else parse_duration(self.duration)
        every = None if self.every is None else parse_duration(self.every)
        while end_ms is None or t0 < end_ms:
            yield t0, None if length is None else t0 + length
            if every is None or end_ms is None:
                return
            t0 += every


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


def apply_scenario(
    scenario: Scenario, fleet: Fleet, world: World, start_ms: int, end_ms: int | None = None
) -> None:
    """Put the scenario's storms, bursts and faults that start before end_ms into the world
    (so the ground truth lists only what a run of that length shows); unknown targets raise.
    Recurring events repeat until end_ms (None: they happen once). An occurrence of an event
    marked `only: day` (`night`) is skipped unless most of it falls where the lamps are
    expected off (on): a day-burn shows by day, a supply loss at night."""
    devices = fleet.by_id()
    lamp_circuits = circuits([d for d in fleet.devices if isinstance(d, Lamp)])
    dmas = {d.dma_id for d in fleet.dmas}
    storms = list(world.weather.storms)
    for i, ev in enumerate(scenario.events):
        where = f"{scenario.name}: event {i + 1} ({ev.type})"
        turns = ev.targets()
        for target in turns:
            _check(ev, target, devices, lamp_circuits, dmas, where)
        for k, (t0, t1) in enumerate(ev.occurrences(start_ms, end_ms)):
            if ev.only is not None and (lit_share(world.clock, t0, t1) > 0.5) != (
                ev.only == "night"
            ):
                continue
            target = turns[k % len(turns)]
            if ev.type == "storm":
                assert t1 is not None
                districts = frozenset(ev.districts) if ev.districts else None
                storms.append(Storm(t0, t1, ev.peak_mm_h, ev.shape, ev.peak_at, districts))
            elif ev.type == "burst":
                assert t1 is not None and target is not None
                drop = ev.pressure_drop_mpa
                if drop is None:
                    drop = world.params.burst_pressure_drop_mpa
                world.add_burst(Burst(target, t0, t1, ev.flow_m3_h, drop, "scenario"))
            else:
                assert target is not None
                group = target if ev.circuit else None
                for device_id in lamp_circuits[target] if group else [target]:
                    world.add_fault(Fault(ev.type, device_id, t0, t1, "scenario", group=group))
    world.weather = Weather(storms)


def lit_share(clock: LampClock, t0: int, t1: int | None) -> float:
    """The share of [t0, t1) in the lamps' expected-on window (at t0 if there is no end)."""
    if t1 is None or t1 <= t0:
        return 1.0 if clock.is_on(t0) else 0.0
    lit, t = 0, t0
    while t < t1:
        nxt = min(clock.next_switch(t), t1)
        lit += nxt - t if clock.is_on(t) else 0
        t = nxt
    return lit / (t1 - t0)


def _check(
    ev: Event,
    target: str | None,
    devices: dict[str, Any],
    lamp_circuits: dict[str, list[str]],
    dmas: set[str],
    where: str,
) -> None:
    """Raise if the target is not in this fleet or cannot have this event."""
    if ev.type == "storm":
        return
    if ev.type == "burst":
        if target not in dmas:
            raise ValueError(f"{where}: no DMA {target!r} in this fleet")
        return
    if ev.circuit:
        if target not in lamp_circuits:
            raise ValueError(f"{where}: no circuit {target!r} in this fleet")
        if ev.type not in FAULTS_BY_KIND["streetlight"]:
            raise ValueError(f"{where}: a streetlight cannot have a {ev.type} fault")
        return
    device = devices.get(target or "")
    if device is None:
        raise ValueError(f"{where}: no device {target!r} in this fleet")
    if ev.type not in FAULTS_BY_KIND[device.kind]:
        raise ValueError(f"{where}: a {device.kind} cannot have a {ev.type} fault")
