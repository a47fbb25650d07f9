"""Dusk and dawn at Anyang, and the lamps switching with them."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet
from simulators.sun import LOCAL, LampClock, sun_times, to_ms

# Reference times (Asia/Shanghai) at 36.1° N, 114.35° E, from the NOAA solar equations
# (solar noon 12:22–12:38 by the equation of time; day length by latitude and declination).
REFERENCE = [
    (date(2024, 3, 20), "06:26", "18:34"),
    (date(2024, 6, 21), "05:06", "19:43"),
    (date(2024, 9, 22), "06:10", "18:20"),
    (date(2024, 12, 21), "07:30", "17:12"),
]


def _at(day: date, hhmm: str) -> datetime:
    h, m = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, h, m, tzinfo=LOCAL)


@pytest.mark.parametrize(("day", "rise", "set_"), REFERENCE)
def test_sunrise_and_sunset_match_the_reference(day, rise, set_):
    sunrise, sunset = sun_times(day)
    assert abs(sunrise - _at(day, rise)) <= timedelta(minutes=2)
    assert abs(sunset - _at(day, set_)) <= timedelta(minutes=2)


@pytest.mark.parametrize(("day", "rise", "set_"), REFERENCE)
def test_lamps_are_on_from_dusk_to_dawn(day, rise, set_):
    clock = LampClock(on_after_sunset_min=10, off_before_sunrise_min=10)
    sunrise, sunset = sun_times(day)
    assert clock.is_on(to_ms(sunrise) - 11 * 60_000)
    assert not clock.is_on(to_ms(sunrise) - 9 * 60_000)
    assert not clock.is_on(to_ms(_at(day, "12:00")))
    assert not clock.is_on(to_ms(sunset) + 9 * 60_000)
    assert clock.is_on(to_ms(sunset) + 11 * 60_000)
    assert clock.is_on(to_ms(_at(day, "23:30")))
    assert clock.next_switch(to_ms(_at(day, "12:00"))) == to_ms(sunset) + 10 * 60_000


def test_simulated_lamps_switch_on_at_dusk_within_their_clock_spread():
    fleet = make_fleet(1, "small")
    day = date(2024, 6, 21)
    start = to_ms(_at(day, "12:00"))
    world = build_world(fleet, start, start + 86_400_000, background=False)
    lamps = [d for d in fleet.devices if d.kind == "streetlight"]
    sim = Simulation(fleet, world, start, devices=lamps)
    dusk = to_ms(sun_times(day)[1]) + 10 * 60_000
    first_on: dict[str, int] = {}
    last_off: dict[str, int] = {}
    for device, payload in sim.advance(dusk + 3_600_000):
        if payload["power_state"] == "on":
            first_on.setdefault(device.device_id, payload["ts"])
        else:
            last_off[device.device_id] = payload["ts"]
    assert set(first_on) == {lamp.device_id for lamp in lamps}
    assert all(dusk <= t <= dusk + 20_000 for t in first_on.values())
    assert all(t < dusk for t in last_off.values())
