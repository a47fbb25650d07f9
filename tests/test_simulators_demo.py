"""The `demo` scenario as `make demo` runs it (small fleet, seed 42, --stagger 20), in
simulated time without a broker: every event shows within two minutes, by day and by night,
something faulty is reported every minute after that, and the ground truth lists what the
readings show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from simulators.devices import Device, Meter
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet
from simulators.scenario import load_scenario
from simulators.sun import LOCAL, to_ms
from simulators.truth import ground_truth
from simulators.world import World

SEED, STAGGER_S = 42, 20  # scripts/demo.sh
MINUTE = 60_000
HORIZON = 7 * 86_400_000  # an open `simulate run` plans this far ahead (cli.py)
SOON = 2 * MINUTE  # every event must show within this
CIRCUIT = "CIR-0003"


def run_demo(hour: int, minutes: int, *, without_burst: bool = False):
    """The demo from hour:00 local on 1 July 2024, simulated for `minutes`."""
    scenario = load_scenario("demo")
    if without_burst:
        events = [e for e in scenario.events if not (e.type == "burst" and e.dma == "DMA-02")]
        scenario = scenario.model_copy(update={"events": events})
    fleet = make_fleet(SEED, "small")
    start = to_ms(datetime(2024, 7, 1, hour, 0, tzinfo=LOCAL))
    world = build_world(fleet, start, start + HORIZON, scenario)
    sim = Simulation(fleet, world, start, stagger_s=STAGGER_S)
    return fleet, world, start, list(sim.advance(start + minutes * MINUTE))


def shows_fault(device: Device, p: dict[str, Any], world: World) -> bool:
    """Whether a reading by itself shows something wrong (the alert thresholds of
    docs/domain.md), or for a DMA meter, a burst in force in its zone."""
    if device.kind == "manhole":
        tilted = abs(p["tilt_deg"] - p["tilt_baseline_deg"]) > 10
        return p["cover_open"] or tilted or (p.get("ch4_pct_lel") or 0) >= 10
    if device.kind == "waterlog":
        return (p.get("depth_cm") or 0) >= 15
    if device.kind == "streetlight":
        day_burn = p["active_power_w"] > 5 and not world.clock.is_on(p["ts"])
        return p["supply_voltage_v"] == 0 or day_burn
    assert isinstance(device, Meter)
    bursts = world.bursts.get(device.dma.dma_id, ())
    return device.role != "customer" and any(b.start_ms <= p["ts"] < b.end_ms for b in bursts)


def first(out, start, device_id, test):
    """Seconds after the start of the device's first reading that passes `test`."""
    return next(
        ((p["ts"] - start) / 1000 for d, p in out if d.device_id == device_id and test(p)), None
    )


@pytest.mark.parametrize(("hour", "lamps"), [(3, "supply_loss"), (14, "day_burn")])
def test_every_demo_event_shows_within_two_minutes(hour, lamps):
    fleet, world, start, out = run_demo(hour, 2)
    soon = [(d, p) for d, p in out if p["ts"] - start <= SOON]

    cover = first(
        soon,
        start,
        "MH-000012",
        lambda p: p["cover_open"] and p["tilt_deg"] - p["tilt_baseline_deg"] > 10,
    )
    assert cover == 20
    assert first(soon, start, "MH-000030", lambda p: (p.get("ch4_pct_lel") or 0) >= 10) == 50

    unremediated = {f"WL-D-{p.point_id[4:]}" for p in fleet.points if not p.remediated}
    flooded = {d.device_id for d, p in soon if (p.get("depth_cm") or 0) >= 15}
    assert flooded == unremediated == {"WL-D-009", "WL-D-010"}

    # The circuit shows the fault its hour makes visible, on every lamp, at +40 s.
    circuit = {d.device_id for d in fleet.devices if d.attrs.get("circuit_id") == CIRCUIT}
    at_40 = {
        d.device_id: p for d, p in soon if p["ts"] == start + 40_000 and d.device_id in circuit
    }
    assert set(at_40) == circuit
    for p in at_40.values():
        if lamps == "supply_loss":  # at night: 0 V and dark while the lamps should be lit
            assert world.clock.is_on(p["ts"])
            assert p["supply_voltage_v"] == 0 and p["active_power_w"] == 0
        else:  # by day: lit while they should be off
            assert not world.clock.is_on(p["ts"])
            assert p["power_state"] == "on" and p["active_power_w"] > 5
    scripted = {f.type for f in world.all_faults() if f.group == CIRCUIT}
    assert scripted == {lamps}


@pytest.mark.parametrize("hour", [3, 14])
def test_the_dma_burst_shows_at_the_next_minute_logs(hour):
    _, _, start, out = run_demo(hour, 2)
    _, _, _, calm = run_demo(hour, 2, without_burst=True)

    def at(readings, device_id, seconds):
        return next(
            p for d, p in readings if d.device_id == device_id and p["ts"] == start + seconds * 1000
        )

    # The burst starts at +30 s: the inlet's 1-min mean carries half of it at +60 s, all at +120 s.
    for seconds, share in ((60, 0.5), (120, 1.0)):
        rise = (
            at(out, "WM-DMA02-IN1", seconds)["flow_m3_h"]
            - at(calm, "WM-DMA02-IN1", seconds)["flow_m3_h"]
        )
        assert rise == pytest.approx(25 * share, rel=0.03)
    for point in ("WM-DMA02-P1", "WM-DMA02-P2", "WM-DMA02-P3"):
        drop = at(calm, point, 120)["pressure_mpa"] - at(out, point, 120)["pressure_mpa"]
        assert drop > 0.05  # WS_PRESSURE_DROP


def test_after_the_first_minute_every_minute_shows_a_fault():
    _, world, start, out = run_demo(14, 11)
    by_minute: dict[int, set[str]] = {m: set() for m in range(1, 11)}
    for d, p in out:
        minute = (p["ts"] - start) // MINUTE
        if minute in by_minute and shows_fault(d, p, world):
            by_minute[minute].add(d.kind)
    assert all(by_minute.values()), by_minute
    # Not only the burst's meters: floods are reported every minute from minute 2 on.
    assert all("waterlog" in kinds for m, kinds in by_minute.items() if m >= 2), by_minute


@pytest.mark.parametrize(("hour", "lamps"), [(3, "supply_loss"), (14, "day_burn")])
def test_recurring_events_are_in_the_truth_and_show_when_they_start(hour, lamps):
    fleet, world, start, out = run_demo(hour, 11)
    truth = ground_truth(fleet, world, start, start + HORIZON, "demo")
    devices = fleet.by_id()
    begun = [
        f for f in world.all_faults() if f.source == "scenario" and f.start_ms < start + 11 * MINUTE
    ]
    # Covers open at +20 s, +4 min, +10 min; gas at +50 s, +9 min; CIR-0003 (26 lamps) at +40 s.
    assert sorted({(f.device_id, f.type) for f in begun if f.group is None}) == [
        ("MH-000004", "cover_open"),
        ("MH-000009", "cover_open"),
        ("MH-000012", "cover_open"),
        ("MH-000022", "gas"),
        ("MH-000030", "gas"),
    ]
    assert len([f for f in begun if f.group == CIRCUIT]) == 26
    for f in begun:
        reading = next(p for d, p in out if d.device_id == f.device_id and p["ts"] == f.start_ms)
        assert shows_fault(devices[f.device_id], reading, world), (f, reading)
    on_circuit = [f for f in truth["faults"] if f.get("group") == CIRCUIT]
    assert len(on_circuit) == 26 and {f["type"] for f in on_circuit} == {lamps}
    # Every 6 min another cover opens, for the whole planned week, taking six covers in turn.
    opens = sorted(
        f["start"]
        for f in truth["faults"]
        if f["type"] == "cover_open" and f["source"] == "scenario"
    )
    assert len(opens) == 1 + (HORIZON - 4 * MINUTE - 1) // (6 * MINUTE) + 1
    storms = truth["storms"]
    assert storms[0]["peak_mm_h"] == 300 and storms[0]["total_mm"] == 20.0
    assert len(storms) == 1 + (HORIZON - 60 * MINUTE - 1) // (120 * MINUTE) + 1
    bursts = [b["dma_id"] for b in truth["bursts"] if b["source"] == "scenario"]
    assert bursts[:4] == ["DMA-02", "DMA-01", "DMA-02", "DMA-01"]
    assert len(bursts) == 1 + (HORIZON - 120 * MINUTE - 1) // (60 * MINUTE) + 1
