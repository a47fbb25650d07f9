"""The simulation loop: every device reports when its own cadence says, in time order.

`Simulation.advance(until_ms)` yields (device, payload) for every report due up to a time;
it has no clock and does no I/O, so live runs, backfills, tests and benchmarks all drive the
same code. Payloads are plain dicts with the reading models' field names and `ts` in epoch
milliseconds (UTC).
"""

from __future__ import annotations

import heapq
import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

from simulators import manhole, streetlight, water, waterlog
from simulators.devices import Cover, Device, Lamp, Meter, WaterlogSensor
from simulators.faults import plan_faults
from simulators.fleet import Fleet
from simulators.params import Params, with_overrides
from simulators.scenario import Scenario, apply_scenario
from simulators.street_assets import SHARDS
from simulators.world import World

Step = Callable[[Any, int, World, random.Random], tuple[dict[str, Any] | None, int]]
STEPS: dict[str, Step] = {
    "streetlight": streetlight.step,
    "manhole": manhole.step,
    "waterlog": waterlog.step,
    "watermeter": water.step,
}


def build_world(
    fleet: Fleet,
    start_ms: int,
    end_ms: int,
    scenario: Scenario | None = None,
    background: bool = True,
) -> World:
    """The world for a run over [start, end): scenario events plus, unless turned off by the
    caller or the scenario, background faults drawn from the fleet's seed."""
    params = with_overrides(Params(), scenario.params) if scenario else Params()
    world = World(params=params)
    if background and (scenario is None or scenario.background_faults):
        plan_faults(fleet, world, start_ms, end_ms, fleet.seed)
    if scenario is not None:
        apply_scenario(scenario, fleet, world, start_ms, end_ms)
    return world


def typical_interval_s(device: Device, world: World) -> int:
    p = world.params
    if isinstance(device, Lamp):
        return p.lamp_on_interval_s
    if isinstance(device, Cover):
        return (
            p.cover_module_interval_s if device.has_level or device.has_gas else device.heartbeat_s
        )
    if isinstance(device, Meter):
        return (
            p.water_customer_interval_s if device.role == "customer" else p.water_inlet_interval_s
        )
    return p.waterlog_dry_interval_s


def wakes_in_rain(device: Device) -> bool:
    """Waterlogging sensors and covers with a level module wake when rain starts."""
    return isinstance(device, WaterlogSensor) or (isinstance(device, Cover) and device.has_level)


class Simulation:
    def __init__(
        self,
        fleet: Fleet,
        world: World,
        start_ms: int,
        *,
        stagger_s: float | None = None,
        devices: list[Device] | None = None,
    ):
        """Each device first reports at a fixed phase within its interval (or within
        `stagger_s`, so a demo shows every device quickly), or earlier if a fault edge or,
        for devices that wake in rain, a storm comes first; phases and random streams are
        fixed by seed and device id, so a subset of devices behaves as in the whole fleet."""
        self.world = world
        self.devices = devices if devices is not None else fleet.devices
        self.rngs = [random.Random(f"{fleet.seed}:{shard}") for shard in range(SHARDS)]
        self.heap: list[tuple[int, int]] = []
        for i, d in enumerate(self.devices):
            span = typical_interval_s(d, world) * 1000
            if stagger_s is not None:
                span = min(span, int(stagger_s * 1000))
            phase = zlib.crc32(f"{fleet.seed}:{d.device_id}".encode()) % max(span, 1)
            first = start_ms + phase
            for wake in (
                world.next_edge(d.device_id, start_ms - 1)
                if world.faults.get(d.device_id)
                else None,
                world.weather.next_start(start_ms - 1) if wakes_in_rain(d) else None,
            ):
                first = min(first, wake) if wake else first
            self.heap.append((first, i))
        heapq.heapify(self.heap)
        self.counts: Counter[str] = Counter()

    def next_due(self) -> int | None:
        return self.heap[0][0] if self.heap else None

    def advance(self, until_ms: int) -> Iterator[tuple[Device, dict[str, Any]]]:
        """Reports due at or before `until_ms`, in time order."""
        heap, devices, world, rngs = self.heap, self.devices, self.world, self.rngs
        counts = self.counts
        while heap and heap[0][0] <= until_ms:
            t_ms, i = heap[0]
            device = devices[i]
            payload, nxt = STEPS[device.kind](device, t_ms, world, rngs[device.shard])
            heapq.heapreplace(heap, (max(nxt, t_ms + 1), i))
            if payload is not None:
                counts[device.kind] += 1
                yield device, payload
