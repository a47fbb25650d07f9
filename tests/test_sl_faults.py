"""SL_RELAY_FAIL, SL_DRIVER_DERATING and SL_DRIVER_FAULT (docs/domain.md §4.3), evaluated
purely with the shipped rules: trigger, debounce (2 reports for the relay, immediate for the
driver), clear, and what readings without the new fields do (nothing)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_alerts_rules import DAY, NIGHT, RULES, run
from urbanwatch.kinds import READING_MODELS

OPEN, CLEAR = "open", "clear"
ON = {"commanded_state": "on", "supply_voltage_v": 226.0}
OFF = {"commanded_state": "off", "supply_voltage_v": 226.0}
STUCK_OPEN = {**ON, "active_power_w": 0.4, "relay_feedback": "open"}
STUCK_CLOSED = {**OFF, "active_power_w": 96.0, "relay_feedback": "closed"}


def every(step: float, *readings: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    return [(i * step, r) for i, r in enumerate(readings)]


RELAY_CASES = [
    ("stuck closed by day: 2 reports", DAY, [STUCK_CLOSED, STUCK_CLOSED], [(OPEN, 900)]),
    (
        "stuck closed: one report is not enough",
        DAY,
        [STUCK_CLOSED, {**OFF, "active_power_w": 0.3}],
        [],
    ),
    ("stuck open at night: 2 reports", NIGHT, [STUCK_OPEN, STUCK_OPEN, STUCK_OPEN], [(OPEN, 900)]),
    (
        "stuck closed, then obeys on 2 reports",
        DAY,
        [
            STUCK_CLOSED,
            STUCK_CLOSED,
            {**OFF, "active_power_w": 0.3},
            {**OFF, "active_power_w": 0.2},
        ],
        [(OPEN, 900), (CLEAR, 2700)],
    ),
    (
        "one obeying report between faults does not clear",
        DAY,
        [
            STUCK_CLOSED,
            STUCK_CLOSED,
            {**OFF, "active_power_w": 0.3},
            STUCK_CLOSED,
            {**OFF, "active_power_w": 0.3},
        ],
        [(OPEN, 900)],
    ),
    (
        "stuck open clears when the feedback closes on 2 reports",
        NIGHT,
        [
            STUCK_OPEN,
            STUCK_OPEN,
            {**ON, "active_power_w": 95.0, "relay_feedback": "closed"},
            {**ON, "active_power_w": 95.0, "relay_feedback": "closed"},
        ],
        [(OPEN, 900), (CLEAR, 2700)],
    ),
    (
        "commanded on, no power, relay closed: the lamp, not the relay",
        NIGHT,
        [{**ON, "active_power_w": 0.4, "relay_feedback": "closed"}] * 3,
        [],
    ),
    (
        "commanded on, no power, no supply: a supply loss, not the relay",
        NIGHT,
        [{**STUCK_OPEN, "supply_voltage_v": 0.0}] * 3,
        [],
    ),
    (
        "commanded on, no power, feedback not reported: unknown",
        NIGHT,
        [{**ON, "active_power_w": 0.4}] * 3,
        [],
    ),
    ("commanded off and dark", DAY, [{**OFF, "active_power_w": 0.3}] * 3, []),
    (
        "no commanded_state: neither triggers nor resets",
        DAY,
        [STUCK_CLOSED, {"active_power_w": 96.0, "supply_voltage_v": 226.0}, STUCK_CLOSED],
        [(OPEN, 1800)],
    ),
]


@pytest.mark.parametrize(
    ("case", "start", "readings", "expected"), RELAY_CASES, ids=[c[0] for c in RELAY_CASES]
)
def test_relay_fail(case: str, start: float, readings: list[Any], expected: list[Any]) -> None:
    assert run("SL_RELAY_FAIL", every(900, *readings), start=start) == expected


DERATE = {"driver_thermal_derating": True}
FINE = {"driver_thermal_derating": False, "driver_thermal_shutdown": False,
        "driver_gear_failure": False}  # fmt: skip
DRIVER_CASES = [
    ("SL_DRIVER_DERATING", "immediate", [DERATE], [(OPEN, 0)]),
    (
        "SL_DRIVER_DERATING",
        "clears after 2 clean reports",
        [DERATE, FINE, FINE],
        [(OPEN, 0), (CLEAR, 1800)],
    ),
    (
        "SL_DRIVER_DERATING",
        "one clean report is not enough",
        [DERATE, FINE, DERATE, FINE],
        [(OPEN, 0)],
    ),
    (
        "SL_DRIVER_DERATING",
        "absent flag changes nothing",
        [DERATE, {"active_power_w": 40.0}] * 2,
        [(OPEN, 0)],
    ),
    ("SL_DRIVER_DERATING", "shutdown is not derating", [{"driver_thermal_shutdown": True}], []),
    (
        "SL_DRIVER_FAULT",
        "thermal shutdown, immediate",
        [{"driver_thermal_shutdown": True}],
        [(OPEN, 0)],
    ),
    ("SL_DRIVER_FAULT", "gear failure, immediate", [{"driver_gear_failure": True}], [(OPEN, 0)]),
    ("SL_DRIVER_FAULT", "derating alone is not a fault", [DERATE, DERATE], []),
    (
        "SL_DRIVER_FAULT",
        "clears after 2 reports with neither flag",
        [{"driver_gear_failure": True}, FINE, FINE],
        [(OPEN, 0), (CLEAR, 1800)],
    ),
    (
        "SL_DRIVER_FAULT",
        "a controller reporting only the gear bit clears on it",
        [
            {"driver_gear_failure": True},
            {"driver_gear_failure": False},
            {"driver_gear_failure": False},
        ],
        [(OPEN, 0), (CLEAR, 1800)],
    ),
    (
        "SL_DRIVER_FAULT",
        "still shut down: no clear",
        [{"driver_thermal_shutdown": True}, {**FINE, "driver_thermal_shutdown": True}, FINE],
        [(OPEN, 0)],
    ),
    (
        "SL_DRIVER_FAULT",
        "readings without driver flags change nothing",
        [{"driver_gear_failure": True}, {"active_power_w": 0.0}, {"active_power_w": 0.0}],
        [(OPEN, 0)],
    ),
]


@pytest.mark.parametrize(
    ("rule_id", "case", "readings", "expected"),
    DRIVER_CASES,
    ids=[f"{c[0]}-{c[1]}" for c in DRIVER_CASES],
)
def test_driver_rules(rule_id: str, case: str, readings: list[Any], expected: list[Any]) -> None:
    assert run(rule_id, every(900, *readings), start=NIGHT) == expected


def test_severities_and_debounce_are_the_domain_table() -> None:
    rules = {r.id: r for r in RULES.rules}
    relay, derating, fault = (
        rules["SL_RELAY_FAIL"],
        rules["SL_DRIVER_DERATING"],
        rules["SL_DRIVER_FAULT"],
    )
    assert (relay.severity, relay.count, relay.for_s) == ("alarm", 2, 0)
    assert (derating.severity, derating.count, derating.for_s) == ("warning", 1, 0)
    assert (fault.severity, fault.count, fault.for_s) == ("alarm", 1, 0)


def test_a_lamp_commanded_off_at_night_is_not_out() -> None:
    """SL_LAMP_OUT needs the lamp commanded on (domain.md §4.3): part-night switching off
    is a schedule, not a fault; without commanded_state the lamp counts as commanded on."""
    dark = {"supply_voltage_v": 226.0, "active_power_w": 0.4, "power_state": "off"}
    assert run("SL_LAMP_OUT", every(300, *[{**dark, "commanded_state": "off"}] * 3)) == []
    assert run("SL_LAMP_OUT", every(300, *[{**dark, "commanded_state": "on"}] * 3)) == [(OPEN, 600)]
    assert run("SL_LAMP_OUT", every(300, *[dark] * 3)) == [(OPEN, 600)]


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("commanded_state", "dim", "literal_error"),
        ("commanded_state", True, "literal_error"),
        ("relay_feedback", "stuck", "literal_error"),
        ("driver_gear_failure", 1, "bool_type"),
        ("driver_thermal_shutdown", "true", "bool_type"),
    ],
)
def test_the_model_refuses_bad_values(field: str, value: Any, code: str) -> None:
    from pydantic import ValidationError

    model = READING_MODELS["streetlight"]
    with pytest.raises(ValidationError) as err:
        model.model_validate(
            {"ts": "2026-05-01T21:00:00+08:00", "active_power_w": 1.0, field: value}
        )
    assert [(e["loc"], e["type"]) for e in err.value.errors()] == [((field,), code)]
