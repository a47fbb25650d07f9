"""Background faults: what goes wrong in a real fleet without anyone scripting it.

`plan_faults` draws them for a time window from the seed; they go into the world and the
ground-truth file like scenario faults, marked `source: background`.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass

from simulators.devices import Device, Lamp
from simulators.fleet import Fleet
from simulators.world import Burst, Fault, World

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
ALREADY_BROKEN = 0.6  # of persistent faults, the share already present when the window opens


@dataclass(frozen=True)
class Rule:
    kind: str
    fault: str
    per: str  # "share": a share of devices; "day": events per device-day
    value: float
    hours: tuple[float, float] | None  # duration range; None: persists


# Rates [P]: chosen so a city fleet shows a lighting rate around 97–98 % and a few cover
# events a day, in line with the targets the plan tracks (docs/domain.md §1).
RULES = (
    Rule("streetlight", "lamp_out", "share", 0.015, None),
    Rule("streetlight", "day_burn", "share", 0.003, None),
    Rule("streetlight", "power_low", "share", 0.005, None),
    Rule("streetlight", "power_high", "share", 0.002, None),
    Rule("streetlight", "pf_low", "share", 0.004, None),
    Rule("streetlight", "comm_loss", "day", 0.001, (2, 12)),
    Rule("manhole", "low_battery", "share", 0.015, None),
    Rule("manhole", "cover_open", "day", 0.0002, (0.2, 1.0)),
    Rule("manhole", "cover_flip", "day", 0.00002, (0.5, 4.0)),
    Rule("manhole", "comm_loss", "day", 0.0005, (6, 48)),
    Rule("waterlog", "comm_loss", "day", 0.002, (2, 24)),
    Rule("watermeter", "comm_loss", "day", 0.002, (1, 12)),
)
CIRCUIT_RULES = (
    ("supply_loss", 0.003, (1, 8)),
    ("voltage_high", 0.001, (1, 4)),
    ("voltage_low", 0.001, (1, 4)),
)  # events per circuit-day
GAS_PER_DAY = 0.005  # gas events per gas-module cover-day, 20–90 min
BURSTS_PER_DMA_DAY = 0.005
BURST_M3_H = (10.0, 40.0)
BURST_HOURS = (2.0, 10.0)


def _count(rng: random.Random, expected: float) -> int:
    whole = int(expected)
    return whole + (1 if rng.random() < expected - whole else 0)


def _window(
    rng: random.Random,
    start: int,
    end: int,
    hours: tuple[float, float] | None,
    persistent_early: bool,
) -> tuple[int, int | None]:
    if hours is None:
        t0 = (
            start
            if persistent_early and rng.random() < ALREADY_BROKEN
            else rng.randrange(start, end)
        )
        return t0, None
    t0 = rng.randrange(start, end)
    return t0, t0 + int(rng.uniform(*hours) * HOUR_MS)


def plan_faults(fleet: Fleet, world: World, start_ms: int, end_ms: int, seed: int) -> None:
    rng = random.Random(f"{seed}:faults:{start_ms}")
    days = max((end_ms - start_ms) / DAY_MS, 1 / 24)
    by_kind: dict[str, list[Device]] = defaultdict(list)
    for d in fleet.devices:
        by_kind[d.kind].append(d)
    for rule in RULES:
        pool = by_kind[rule.kind]
        if rule.fault == "pf_low":
            pool = [d for d in pool if isinstance(d, Lamp) and d.lamp_type != "LED"]
        expected = rule.value * len(pool) * (days if rule.per == "day" else 1)
        for d in rng.sample(pool, min(_count(rng, expected), len(pool))):
            t0, t1 = _window(rng, start_ms, end_ms, rule.hours, True)
            world.add_fault(Fault(rule.fault, d.device_id, t0, t1, "background"))
    _circuit_faults(rng, by_kind["streetlight"], world, start_ms, end_ms, days)
    _gas_and_bursts(rng, fleet, by_kind["manhole"], world, start_ms, end_ms, days)


def circuits(lamps: list[Device]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for lamp in lamps:
        if isinstance(lamp, Lamp):
            out[lamp.circuit_id].append(lamp.device_id)
    return out


def _circuit_faults(
    rng: random.Random, lamps: list[Device], world: World, start: int, end: int, days: float
) -> None:
    by_circuit = circuits(lamps)
    names = sorted(by_circuit)
    for fault, rate, hours in CIRCUIT_RULES:
        for circuit in rng.sample(names, min(_count(rng, rate * len(names) * days), len(names))):
            t0, t1 = _window(rng, start, end, hours, False)
            for device_id in by_circuit[circuit]:
                world.add_fault(Fault(fault, device_id, t0, t1, "background", group=circuit))


def _gas_and_bursts(
    rng: random.Random,
    fleet: Fleet,
    covers: list[Device],
    world: World,
    start: int,
    end: int,
    days: float,
) -> None:
    gas = [c for c in covers if getattr(c, "has_gas", False)]
    for c in rng.sample(gas, min(_count(rng, GAS_PER_DAY * len(gas) * days), len(gas))):
        t0, t1 = _window(rng, start, end, (0.33, 1.5), False)
        world.add_fault(Fault("gas", c.device_id, t0, t1, "background"))
    dmas = fleet.dmas
    for dma in rng.sample(dmas, min(_count(rng, BURSTS_PER_DMA_DAY * len(dmas) * days), len(dmas))):
        t0, t1 = _window(rng, start, end, BURST_HOURS, False)
        assert t1 is not None
        world.add_burst(
            Burst(
                dma.dma_id,
                t0,
                t1,
                round(rng.uniform(*BURST_M3_H), 1),
                world.params.burst_pressure_drop_mpa,
                "background",
            )
        )
