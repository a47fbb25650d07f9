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


def test_the_demo_applies_to_fleets_from_scale_100_up():
    for scale in ("100", "small"):
        world = build_world(
            make_fleet(42, scale),
            START,
            START + 86_400_000,
            load_scenario("demo"),
            background=False,
        )
        groups = {f.group for f in world.all_faults() if f.group}
        assert groups == {"CIR-0003", "CIR-0006", "CIR-0009", "CIR-0011"}


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


def _applied(events, end_ms=START + 86_400_000):
    world = World()
    scenario = Scenario.model_validate({"name": "t", "events": events})
    apply_scenario(scenario, make_fleet(1, "small"), world, START, end_ms)
    return world


def test_a_recurring_event_takes_its_targets_in_turn_until_the_end():
    world = _applied(
        [
            {
                "type": "cover_open",
                "at": "+4m",
                "every": "6m",
                "duration": "4m",
                "device": ["MH-000045", "MH-000067"],
            },
            {"type": "storm", "at": "+1h", "every": "2h", "duration": "40m"},
            {"type": "cover_flip", "at": "+40m", "device": "MH-000020", "duration": "5m"},
        ],
        end_ms=START + 30 * 60_000,
    )
    assert [(f.device_id, (f.start_ms - START) // 60_000) for f in world.all_faults()] == [
        ("MH-000045", 4),
        ("MH-000067", 10),
        ("MH-000045", 16),
        ("MH-000067", 22),
        ("MH-000045", 28),
    ]
    assert all(f.end_ms == f.start_ms + 4 * 60_000 for f in world.all_faults())
    assert world.weather.storms == []  # events that would start after the end are left out
    once = World()
    apply_scenario(
        Scenario.model_validate(
            {
                "name": "t",
                "events": [
                    {
                        "type": "gas",
                        "at": "+1m",
                        "every": "5m",
                        "duration": "1m",
                        "device": "MH-000003",
                    }
                ],
            }
        ),
        make_fleet(1, "small"),
        once,
        START,
    )
    assert len(once.all_faults()) == 1  # no end given: the first occurrence only


@pytest.mark.parametrize(
    ("at", "duration", "applied"),
    [
        ("+0s", "30m", "day_burn"),  # 16:30 on 1 July: daylight
        ("03:00", "30m", "supply_loss"),
        ("19:40", "1h", "supply_loss"),  # lamps on at ~19:51: most of the hour is dark
        ("19:00", "1h", "day_burn"),  # most of it before the lamps come on
    ],
)
def test_only_day_or_night_keeps_the_fault_the_hour_makes_visible(at, duration, applied):
    world = _applied(
        [
            {"type": t, "at": at, "duration": duration, "circuit": "CIR-0003", "only": only}
            for t, only in (("day_burn", "day"), ("supply_loss", "night"))
        ]
    )
    assert {f.type for f in world.all_faults()} == {applied}
    assert {f.group for f in world.all_faults()} == {"CIR-0003"}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"type": "gas", "at": "+1m", "device": ["MH-000001", "MH-000002"]}, "needs `every`"),
        ({"type": "gas", "at": "+1m", "every": "5m", "device": "MH-000001"}, "needs a duration"),
        (
            {"type": "gas", "at": "+1m", "every": "5m", "duration": "6m", "device": "MH-000001"},
            "overlap",
        ),
        (
            {"type": "gas", "at": "+1m", "every": "5m", "duration": "1m", "device": []},
            "needs a device",
        ),
    ],
)
def test_recurring_events_are_checked(event, message):
    with pytest.raises(ValueError, match=message):
        Scenario.model_validate({"name": "bad", "events": [event]})


def test_every_target_of_a_recurring_event_must_exist():
    event = {
        "type": "burst",
        "at": "+1m",
        "every": "1h",
        "duration": "30m",
        "dma": ["DMA-01", "DMA-99"],
    }
    with pytest.raises(ValueError, match="no DMA 'DMA-99'"):
        _applied([event])
