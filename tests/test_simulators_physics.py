"""Device physics: readings fit the payload contract and behave like docs/domain.md's devices."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from itertools import pairwise

import pytest

from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet
from simulators.scenario import Scenario, load_scenario
from simulators.sun import LOCAL, to_ms
from urbanwatch.kinds import READING_MODELS, missing_measurement

HOUR = 3_600_000
START = to_ms(datetime(2024, 7, 1, 16, 0, tzinfo=LOCAL))


def _run(scale, hours, scenario=None, kinds=None, seed=1, start=START, background=False):
    fleet = make_fleet(seed, scale)
    world = build_world(fleet, start, start + hours * HOUR, scenario, background)
    devices = [d for d in fleet.devices if kinds is None or d.kind in kinds]
    sim = Simulation(fleet, world, start, devices=devices)
    return fleet, list(sim.advance(start + hours * HOUR))


EVERYTHING = Scenario.model_validate(
    {
        "name": "everything",
        "events": [
            {"type": "storm", "at": "18:00", "duration": "2h", "peak_mm_h": 80},
            {"type": "burst", "at": "03:00", "dma": "DMA-01", "duration": "3h"},
            *[
                {"type": t, "at": "+1h", "device": "SL-000001", "duration": "1h"}
                for t in (
                    "lamp_out",
                    "day_burn",
                    "power_low",
                    "power_high",
                    "pf_low",
                    "voltage_high",
                    "voltage_low",
                )
            ],
            {"type": "supply_loss", "at": "21:00", "circuit": "CIR-0002", "duration": "1h"},
            *[
                {"type": t, "at": "+2h", "device": "MH-000003", "duration": "1h"}
                for t in ("cover_open", "cover_flip", "gas", "low_battery")
            ],
        ],
    }
)


def test_every_reading_validates_against_its_model():
    _, out = _run("small", 24, EVERYTHING, background=True)
    assert len(out) > 10_000
    for device, payload in out:
        body = {k: v for k, v in payload.items() if k != "device_id"}
        reading = READING_MODELS[device.kind].model_validate(body)
        assert missing_measurement(device.kind, reading.__dict__) is None, payload


def test_same_seed_same_readings():
    _, first = _run("small", 6, EVERYTHING, background=True)
    _, again = _run("small", 6, EVERYTHING, background=True)
    assert [p for _, p in first] == [p for _, p in again]
    _, other = _run("small", 6, EVERYTHING, background=True, seed=2)
    assert [p for _, p in first] != [p for _, p in other]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_design_storm_floods_unremediated_points_only(seed):
    fleet, out = _run("small", 10, load_scenario("storm"), kinds={"waterlog"}, seed=seed)
    peak: dict[str, float] = defaultdict(float)
    for device, payload in out:
        if "depth_cm" in payload:
            peak[device.attrs["point_id"]] = max(
                peak[device.attrs["point_id"]], payload["depth_cm"]
            )
    remediated = {p.point_id for p in fleet.points if p.remediated}
    assert remediated and set(peak) - remediated
    assert all(peak[p] > 15 for p in peak if p not in remediated)
    assert all(peak[p] < 15 for p in remediated)


def test_reporting_tightens_in_rain_and_the_gauges_catch_the_storm():
    _, out = _run("small", 10, load_scenario("storm"), kinds={"waterlog"})
    storm_start, storm_end = START + 2 * HOUR, START + 4 * HOUR
    times: dict[str, list[int]] = defaultdict(list)
    rain: dict[str, float] = defaultdict(float)
    for device, payload in out:
        times[device.device_id].append(payload["ts"])
        rain[device.device_id] += payload.get("rain_mm") or 0.0
    for device_id, ts in times.items():
        gaps_in_storm = [b - a for a, b in pairwise(ts) if storm_start < b <= storm_end]
        assert max(gaps_in_storm) <= 300_000, device_id
        assert storm_start in ts, device_id  # sleeping sensors wake when rain starts
    gauges = [d for d in rain if d.startswith("WL-R-")]
    assert all(rain[g] == pytest.approx(60.0, abs=0.2) for g in gauges)


def _registers(out, start, end):
    """First and last fwd_total of each meter in [start, end]."""
    at: dict[str, dict[int, float]] = defaultdict(dict)
    for device, payload in out:
        if "fwd_total_m3" in payload and payload["ts"] in (start, end):
            at[device.device_id][payload["ts"]] = payload["fwd_total_m3"]
    return {k: v[end] - v[start] for k, v in at.items()}


def test_dma_water_balance_equals_the_configured_leakage():
    fleet, out = _run("small", 50, kinds={"watermeter"})
    t0 = (START // HOUR + 2) * HOUR
    t1 = t0 + 48 * HOUR
    delta = _registers(out, t0, t1)
    for dma in fleet.dmas:
        tag = dma.dma_id.replace("-", "")
        inflow = sum(v for k, v in delta.items() if k.startswith(f"WM-{tag}-IN"))
        billed = sum(v for k, v in delta.items() if k.startswith(f"WM-{tag}-C"))
        assert (inflow - billed) / 48 == pytest.approx(dma.leakage_m3_h, rel=1e-3)


def test_night_flow_has_its_minimum_between_two_and_four():
    _, out = _run("small", 30, kinds={"watermeter"})
    flows = [(p["ts"], p["flow_m3_h"]) for d, p in out if d.device_id == "WM-DMA01-IN1"]
    night = [(t, f) for t, f in flows if START + 6 * HOUR <= t < START + 30 * HOUR]
    t_min = min(night, key=lambda x: x[1])[0]
    assert 2 <= datetime.fromtimestamp(t_min / 1000, LOCAL).hour < 5


def test_a_burst_raises_night_flow_and_drops_pressure():
    _, calm = _run("small", 14, kinds={"watermeter"})
    _, burst = _run("small", 14, load_scenario("burst"), kinds={"watermeter"})
    at = to_ms(datetime(2024, 7, 2, 4, 0, tzinfo=LOCAL))

    def reading(out, device_id):
        return next(p for d, p in out if d.device_id == device_id and p["ts"] == at)

    inlets = ["WM-DMA01-IN1"] + (
        ["WM-DMA01-IN2"] if any(d.device_id == "WM-DMA01-IN2" for d, _ in calm) else []
    )
    extra = sum(reading(burst, i)["flow_m3_h"] - reading(calm, i)["flow_m3_h"] for i in inlets)
    assert extra == pytest.approx(30.0, rel=0.05)
    for point in ("WM-DMA01-P1", "WM-DMA01-P2", "WM-DMA01-P3"):
        drop = reading(calm, point)["pressure_mpa"] - reading(burst, point)["pressure_mpa"]
        assert drop > 0.05


def test_a_lifted_cover_alarms_then_clears():
    _, out = _run("small", 2, load_scenario("cover-open"), kinds={"manhole"})
    mine = [p for d, p in out if d.device_id == "MH-000012"]
    assert mine[0]["ts"] == START + 60_000
    assert mine[0]["msg_type"] == "alarm" and mine[0]["cover_open"] is True
    assert mine[0]["tilt_deg"] - mine[0]["tilt_baseline_deg"] > 10
    clear = next(p for p in mine if p["msg_type"] == "alarm_clear")
    assert clear["ts"] == START + 21 * 60_000 and clear["cover_open"] is False
    flipped = [p for d, p in out if d.device_id == "MH-000020" and p["cover_open"]]
    assert flipped and all(p["tilt_deg"] >= 90 for p in flipped)


def test_a_circuit_losing_supply_reports_zero_volts_on_every_lamp():
    fleet, out = _run("small", 6, load_scenario("circuit-outage"), kinds={"streetlight"})
    circuit = {d.device_id for d in fleet.devices if d.attrs.get("circuit_id") == "CIR-0012"}
    at_eight = to_ms(datetime(2024, 7, 1, 20, 0, tzinfo=LOCAL))
    during = [(d.device_id, p) for d, p in out if at_eight <= p["ts"] < at_eight + HOUR]
    assert {i for i, _ in during} >= circuit
    for device_id, p in during:
        if device_id in circuit:
            assert p["supply_voltage_v"] == 0.0 and p["active_power_w"] == 0.0
        else:
            assert p["supply_voltage_v"] > 200
