"""Scenario files: the shipped ones load, times resolve, and bad targets are named."""

from __future__ import annotations

from datetime import datetime

import pytest

from simulators.engine import build_world
from simulators.fleet import make_fleet
from simulators.scenario import (
    SCENARIO_DIR,
    Scenario,
    apply_scenario,
    load_scenario,
    parse_duration,
    resolve_at,
)
from simulators.sun import LOCAL, to_ms
from simulators.world import World

START = to_ms(datetime(2024, 7, 1, 16, 30, tzinfo=LOCAL))


@pytest.mark.parametrize("path", sorted(SCENARIO_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_scenarios_apply_to_the_small_fleet(path):
    scenario = load_scenario(path.stem)
    assert scenario.description
    world = build_world(
        make_fleet(1, "small"), START, START + 86_400_000, scenario, background=False
    )
    assert world.all_faults() or world.all_bursts() or world.weather.storms


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+90s", START + 90_000),
        ("+10m", START + 600_000),
        ("+2h", START + 7_200_000),
        ("18:00", to_ms(datetime(2024, 7, 1, 18, 0, tzinfo=LOCAL))),
        ("03:00", to_ms(datetime(2024, 7, 2, 3, 0, tzinfo=LOCAL))),
        ("16:30", START),
        ("2024-07-03T12:00:00+08:00", to_ms(datetime(2024, 7, 3, 12, 0, tzinfo=LOCAL))),
        ("2024-07-03T12:00:00", to_ms(datetime(2024, 7, 3, 12, 0, tzinfo=LOCAL))),
    ],
)
def test_event_times_resolve(text, expected):
    assert resolve_at(text, START) == expected


@pytest.mark.parametrize(
    ("text", "ms"), [("30s", 30_000), ("1.5h", 5_400_000), ("1d", 86_400_000), (120, 120_000)]
)
def test_durations_parse(text, ms):
    assert parse_duration(text) == ms


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "cover_open", "at": "+1m", "device": "MH-999999"}, "no device 'MH-999999'"),
        ({"type": "supply_loss", "at": "+1m", "circuit": "CIR-9999"}, "no circuit 'CIR-9999'"),
        ({"type": "burst", "at": "+1m", "dma": "DMA-99", "duration": "1h"}, "no DMA 'DMA-99'"),
        (
            {"type": "lamp_out", "at": "+1m", "device": "MH-000001"},
            "a manhole cannot have a lamp_out fault",
        ),
    ],
)
def test_unknown_targets_are_named(event, message):
    scenario = Scenario.model_validate({"name": "bad", "events": [event]})
    with pytest.raises(ValueError, match=message):
        apply_scenario(scenario, make_fleet(1, "small"), World(), START)


@pytest.mark.parametrize(
    "event",
    [
        {"type": "storm", "at": "18:00"},
        {"type": "burst", "at": "03:00", "duration": "1h"},
        {"type": "gas", "at": "+1m"},
        {"type": "meteor", "at": "+1m", "device": "MH-000001"},
    ],
)
def test_incomplete_events_are_refused(event):
    with pytest.raises(ValueError):
        Scenario.model_validate({"name": "bad", "events": [event]})


def test_scenario_params_override_the_physics():
    scenario = Scenario.model_validate({"name": "p", "params": {"lamp_on_interval_s": 300}})
    assert (
        build_world(make_fleet(1, "small"), START, START + 1, scenario).params.lamp_on_interval_s
        == 300
    )
    with pytest.raises(ValueError, match="unknown parameter"):
        build_world(
            make_fleet(1, "small"),
            START,
            START + 1,
            Scenario.model_validate({"name": "p", "params": {"nope": 1}}),
        )


def test_unknown_scenario_names_list_the_shipped_ones():
    with pytest.raises(ValueError, match="storm"):
        load_scenario("no-such-scenario")


def test_scenario_event_types_are_the_storm_burst_and_every_fault_the_world_knows():
    from typing import get_args

    from simulators.scenario import FAULT_TYPES, EventType

    assert set(get_args(EventType)) == {"storm", "burst", *FAULT_TYPES}
