"""The `demo` scenario as `make demo` runs it (small fleet, seed 42, --stagger 20), in
simulated time without a broker: every event shows within two minutes, by day and by night,
something faulty is reported every minute after that, and the ground truth lists what the
readings show."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators import demo
from simulators.backfill import backfill
from simulators.devices import Device, Meter
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.live import wall_ms
from simulators.plan import run_window
from simulators.scenario import load_scenario
from simulators.sun import LOCAL, LampClock, to_ms, utc
from simulators.truth import ground_truth
from simulators.world import World
from tests.alerts_helpers import publish_through_engine
from urbanwatch import registry
from urbanwatch.errors import UsageError

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


# --- make demo's first minute, through the broker and the engine ---------------------------


def opened_known_at(conn: psycopg.Connection, alert_id: int) -> datetime:
    """When the engine knew the alert was open (simulated time): a group alert's `opened`
    event carries it; a rule's alert opens at the reading that completes it."""
    detail, opened_at = conn.execute(
        "SELECT e.detail, a.opened_at FROM alerts a JOIN alert_events e ON e.alert_id = a.id "
        "WHERE a.id = %s AND e.event = 'opened' ORDER BY e.id LIMIT 1",
        (alert_id,),
    ).fetchone()
    return datetime.fromisoformat(detail["at"]) if detail.get("at") else opened_at


def test_make_demos_five_alerts_are_known_within_its_first_minute(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    """scripts/demo.sh as it runs today: the clock `simulators.demo.plan` gives, 4 days of
    DMA history ending 3 days ago, then the demo scenario's first simulated minutes published
    through the broker to an engine with the shipped rules and detectors."""
    now = wall_ms()
    start, behind = demo.plan(now)
    assert start + demo.PREROLL_S * 1000 + behind * 1000 <= now
    fleet = make_fleet(SEED, "small")
    registry.import_rows(conn, registry_rows(fleet))
    conn.commit()
    history_end = now - (3 * 86_400 + 600) * 1000
    history_start = history_end - 4 * 86_400_000
    meters = [d for d in fleet.devices if d.kind == "watermeter"]
    history = build_world(fleet, history_start, history_end)
    with psycopg.connect(database_url, autocommit=True) as auto:
        sim = Simulation(fleet, history, history_start, devices=meters)
        backfill(auto, sim, history_start, history_end, progress=False)

    world = build_world(fleet, start, start + HORIZON, load_scenario("demo"))
    assert world.clock.is_on(start) and world.clock.is_on(start + demo.NIGHT_S * 1000)
    sim = Simulation(fleet, world, start, stagger_s=STAGGER_S)
    readings = sim.advance(start + demo.PREROLL_S * 1000 - 1)
    publish_through_engine(
        database_url, mqtt_url, topic_prefix, readings, client_id=f"demo-{topic_prefix}"
    )

    found = demo.find(conn)
    assert set(found) == {e.name for e in demo.FIRST_MINUTE}
    begun = utc(start)
    for name, row in found.items():
        known = opened_known_at(conn, row["id"])
        after_s = (known - begun).total_seconds()
        assert 0 <= after_s <= demo.PREROLL_S, (name, after_s)
        assert demo.wall_after(after_s) <= demo.WITHIN_S, (name, after_s)
    assert found["burst"]["severity"] == "critical"
    # the circuit alert holds back its lamps' SL_SUPPLY_LOSS alerts (inhibited, not notified)
    circuit = found["circuit"]
    lamps = conn.execute(
        "SELECT subject, suppressed, parent_id FROM alerts WHERE rule_id = 'SL_SUPPLY_LOSS'"
    ).fetchall()
    on_circuit = {d.device_id for d in fleet.devices if d.attrs.get("circuit_id") == CIRCUIT}
    assert len(lamps) >= 3 and {s for s, _, _ in lamps} <= on_circuit
    assert all(sup and parent == circuit["id"] for _, sup, parent in lamps)
    assert circuit["held_back"] >= len(lamps)
    under_burst = conn.execute(
        "SELECT DISTINCT rule_id FROM alerts WHERE parent_id = %s", (found["burst"]["id"],)
    ).fetchall()
    assert {r for (r,) in under_burst} == {"WS_FLOW_ANOMALY", "WS_PRESSURE_DROP"}


# --- the demo's clock ---------------------------------------------------------------------

YEAR_2000, YEAR_2100 = 946_684_800_000, 4_102_444_800_000


@settings(max_examples=300, deadline=None)
@given(now=st.integers(YEAR_2000, YEAR_2100))
def test_the_demo_clock_starts_in_the_small_hours_at_most_a_day_back(now):
    start, behind = demo.plan(now)
    lead = demo.PREROLL_S * 1000
    assert start % 1000 == 0 and behind >= 0
    # the fast replay ends where the run then stays, behind the wall clock
    assert start + lead + behind * 1000 <= now < start + lead + (behind + 2) * 1000
    assert behind < 24 * 3600
    local = utc(start).astimezone(LOCAL)
    assert (1, 0) <= (local.hour, local.minute) < (3, 30)
    clock = LampClock()
    assert clock.is_on(start) and clock.is_on(start + (demo.PREROLL_S + demo.NIGHT_S) * 1000)
    assert demo.wall_after(demo.PREROLL_S) == demo.PREROLL_S / demo.SPEED


@settings(max_examples=300, deadline=None)
@given(
    speed=st.floats(1, 100),
    lead_s=st.integers(0, 3600),
    behind_s=st.integers(0, 71 * 3600 - 3600),
    elapsed_s=st.lists(st.floats(0, 86_400), min_size=1, max_size=10),
)
def test_a_run_behind_the_wall_clock_catches_up_with_it_minus_behind(
    speed, lead_s, behind_s, elapsed_s
):
    now = wall_ms()
    start = now - (behind_s + lead_s) * 1000
    clock, end = run_window(utc(start), speed, None, now, behind_s)
    assert clock.start_ms == start and end > start
    last = None
    for e in sorted(elapsed_s):
        wall = now + int(e * 1000)
        t = clock.now(wall)
        assert start <= t <= wall - behind_s * 1000  # never passes the wall clock − behind
        assert last is None or t >= last
        last = t
        if e * (speed - 1) >= lead_s + 0.01:  # caught up: real time, exactly that far behind
            assert t == wall - behind_s * 1000


@given(behind_s=st.integers(1, 71 * 3600), early_s=st.integers(0, 3600))
def test_a_start_later_than_the_wall_clock_minus_behind_is_refused(behind_s, early_s):
    now = wall_ms()
    start = now - behind_s * 1000 + (early_s + 1) * 1000
    with pytest.raises(UsageError, match="--behind"):
        run_window(utc(min(start, now)), 1, None, now, behind_s)
