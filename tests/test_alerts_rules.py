"""Every default rule, evaluated purely: trigger, minimum duration / consecutive readings,
clear with hysteresis and hold time, dedup, late data, timers and overrides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from urbanwatch.alerting import (
    Device,
    DeviceState,
    Override,
    default_rules,
    effective_rule,
    evaluate_offline,
    evaluate_reading,
    evaluate_timers,
    make_plan,
    next_timer,
    note_seen,
)

RULES = default_rules()
NIGHT = datetime(2026, 1, 15, 14, 0, tzinfo=UTC).timestamp()  # 22:00 in Anyang
DAY = datetime(2026, 1, 15, 4, 0, tzinfo=UTC).timestamp()  # 12:00 in Anyang
ATTRS = {
    "manhole": {},
    "waterlog": {"role": "depth"},
    "streetlight": {"rated_power_w": 100.0},
    "watermeter": {"meter_role": "inlet"},
}
LAMP = {"supply_voltage_v": 225.0, "power_factor": 0.95, "power_state": "on"}


def run(
    rule_id: str,
    readings: list[tuple[float, dict[str, Any]]],
    start: float = NIGHT,
    extra: dict[str, Any] | None = None,
    attrs: dict[str, Any] | None = None,
) -> list[tuple[str, float]]:
    """Feed (seconds after start, fields) through one rule; the (action, seconds) it emits."""
    rule = next(r for r in RULES.rules if r.id == rule_id)
    plan = make_plan([rule])
    device = Device("DEV-1", rule.kind, "wenfeng", attrs if attrs is not None else ATTRS[rule.kind])
    state = DeviceState()
    out = []
    for t, fields in readings:
        for tr in evaluate_reading(plan, device, state, fields, start + t, start + t, extra):
            assert tr.rule.id == rule_id
            out.append((tr.action, tr.at - start))
    return out


def steady(values: list[dict[str, Any]], step: float) -> list[tuple[float, dict[str, Any]]]:
    return [(i * step, v) for i, v in enumerate(values)]


OPEN, CLEAR = "open", "clear"
CASES: list[tuple[str, str, list[tuple[float, dict[str, Any]]], list[tuple[str, float]]]] = [
    # id, case, readings, expected transitions
    (
        "MH_TILT",
        "tilt persists 2 s then returns for 60 s",
        [
            (0, {"tilt_deg": 15.0, "tilt_baseline_deg": 2.0}),
            (3, {"tilt_deg": 15.0}),
            (10, {"tilt_deg": 3.0}),
            (71, {"tilt_deg": 3.0}),
        ],
        [(OPEN, 3), (CLEAR, 71)],
    ),
    (
        "MH_TILT",
        "a passing vehicle (one sample) is ignored",
        [(0, {"tilt_deg": 15.0, "tilt_baseline_deg": 2.0}), (1, {"tilt_deg": 2.0})],
        [],
    ),
    (
        "MH_TILT",
        "hysteresis: 11° then 9° keeps it open",
        [
            (0, {"tilt_deg": 13.0, "tilt_baseline_deg": 2.0}),
            (5, {"tilt_deg": 13.0}),
            (10, {"tilt_deg": 11.0}),
            (100, {"tilt_deg": 11.0}),
        ],
        [(OPEN, 5)],
    ),
    (
        "MH_TILT",
        "clear needs its hold time",
        [
            (0, {"tilt_deg": 13.0, "tilt_baseline_deg": 2.0}),
            (5, {"tilt_deg": 13.0}),
            (10, {"tilt_deg": 2.0}),
            (30, {"tilt_deg": 12.0}),
            (40, {"tilt_deg": 2.0}),
            (99, {"tilt_deg": 2.0}),
            (100, {"tilt_deg": 2.0}),
        ],
        [(OPEN, 5), (CLEAR, 100)],
    ),
    (
        "MH_FLIP",
        "immediate",
        [
            (0, {"tilt_deg": 120.0}),
            (10, {"tilt_deg": 121.0}),
            (20, {"tilt_deg": 3.0}),
            (80, {"tilt_deg": 3.0}),
        ],
        [(OPEN, 0), (CLEAR, 80)],
    ),
    (
        "MH_OPEN",
        "open and close",
        [(0, {"cover_open": True}), (5, {"cover_open": True}), (60, {"cover_open": False})],
        [(OPEN, 0), (CLEAR, 60)],
    ),
    (
        "MH_OPEN",
        "a reading without the switch changes nothing",
        [(0, {"cover_open": True}), (60, {"battery_v": 3.6})],
        [(OPEN, 0)],
    ),
    (
        "MH_WATER_HIGH",
        "two readings within 0.5 m",
        [
            (0, {"water_distance_m": 0.4}),
            (60, {"water_distance_m": 0.3}),
            (120, {"water_distance_m": 0.7}),
            (180, {"water_distance_m": 0.7}),
        ],
        [(OPEN, 60), (CLEAR, 180)],
    ),
    (
        "MH_WATER_HIGH",
        "float switch",
        [(0, {"water_over_limit": True}), (60, {"water_over_limit": True})],
        [(OPEN, 60)],
    ),
    (
        "MH_WATER_HIGH",
        "one reading is not enough",
        [(0, {"water_distance_m": 0.4}), (60, {"water_distance_m": 1.2})],
        [],
    ),
    (
        "MH_OVERFLOW",
        "two readings within 0.2 m",
        [
            (0, {"water_distance_m": 0.1}),
            (60, {"water_distance_m": 0.1}),
            (120, {"water_distance_m": 0.5}),
            (180, {"water_distance_m": 0.5}),
        ],
        [(OPEN, 60), (CLEAR, 180)],
    ),
    (
        "MH_GAS_L1",
        "CH4 12 % LEL twice",
        [
            (0, {"ch4_pct_lel": 12.0}),
            (60, {"ch4_pct_lel": 12.0}),
            (120, {"ch4_pct_lel": 2.0}),
            (180, {"ch4_pct_lel": 2.0}),
        ],
        [(OPEN, 60), (CLEAR, 180)],
    ),
    (
        "MH_GAS_L1",
        "O2 below 19.5 %",
        [(0, {"o2_pct_vol": 18.0}), (60, {"o2_pct_vol": 18.0})],
        [(OPEN, 60)],
    ),
    (
        "MH_GAS_L1",
        "hysteresis: 9 % LEL does not clear",
        [
            (0, {"ch4_pct_lel": 12.0}),
            (60, {"ch4_pct_lel": 12.0}),
            (120, {"ch4_pct_lel": 9.0}),
            (180, {"ch4_pct_lel": 9.0}),
        ],
        [(OPEN, 60)],
    ),
    (
        "MH_GAS_L2",
        "immediate at 50 % LEL",
        [(0, {"ch4_pct_lel": 55.0}), (60, {"ch4_pct_lel": 5.0}), (120, {"ch4_pct_lel": 5.0})],
        [(OPEN, 0), (CLEAR, 120)],
    ),
    ("MH_GAS_L2", "H2S 15 ppm", [(0, {"h2s_ppm": 15.0})], [(OPEN, 0)]),
    (
        "MH_LOW_BATT",
        "three readings below 3.3 V",
        [(0, {"battery_v": 3.2}), (60, {"battery_v": 3.2}), (120, {"battery_v": 3.2})],
        [(OPEN, 120)],
    ),
    (
        "MH_LOW_BATT",
        "two are not enough",
        [(0, {"battery_v": 3.2}), (60, {"battery_v": 3.2}), (120, {"battery_v": 3.5})],
        [],
    ),
    (
        "MH_WEAK_SIGNAL",
        "three reports under -115 dBm",
        [
            (0, {"rsrp_dbm": -120.0}),
            (60, {"rsrp_dbm": -120.0}),
            (120, {"rsrp_dbm": -120.0}),
            (180, {"rsrp_dbm": -100.0}),
            (240, {"rsrp_dbm": -100.0}),
            (300, {"rsrp_dbm": -100.0}),
        ],
        [(OPEN, 120), (CLEAR, 300)],
    ),
    (
        "WL_LEVEL_L1",
        "two readings at 16 cm, clear under 12 cm for 10 min",
        [
            (0, {"depth_cm": 16.0}),
            (60, {"depth_cm": 17.0}),
            (120, {"depth_cm": 11.0}),
            (600, {"depth_cm": 10.0}),
            (720, {"depth_cm": 9.0}),
        ],
        [(OPEN, 60), (CLEAR, 720)],
    ),
    (
        "WL_LEVEL_L1",
        "hysteresis: 13 cm keeps it",
        [
            (0, {"depth_cm": 16.0}),
            (60, {"depth_cm": 16.0}),
            (120, {"depth_cm": 13.0}),
            (1200, {"depth_cm": 13.0}),
        ],
        [(OPEN, 60)],
    ),
    ("WL_LEVEL_L2", "20 cm", [(0, {"depth_cm": 21.0}), (60, {"depth_cm": 21.0})], [(OPEN, 60)]),
    ("WL_LEVEL_L3", "27 cm", [(0, {"depth_cm": 28.0}), (60, {"depth_cm": 28.0})], [(OPEN, 60)]),
    ("WL_LEVEL_L4", "40 cm", [(0, {"depth_cm": 41.0}), (60, {"depth_cm": 45.0})], [(OPEN, 60)]),
    ("WL_LEVEL_L4", "39 cm is not L4", [(0, {"depth_cm": 39.0}), (60, {"depth_cm": 39.0})], []),
    (
        "WL_SENSOR_STUCK",
        "a jump of 60 cm",
        [(0, {"depth_cm": 2.0}), (60, {"depth_cm": 62.0}), (120, {"depth_cm": 61.0})],
        [(OPEN, 60), (CLEAR, 120)],
    ),
    (
        "WL_SENSOR_STUCK",
        "constant for more than 24 h",
        [
            (0, {"depth_cm": 7.0}),
            (43200, {"depth_cm": 7.0}),
            (90000, {"depth_cm": 7.0}),
            (90060, {"depth_cm": 6.0}),
        ],
        [(OPEN, 90000), (CLEAR, 90060)],
    ),
    (
        "RAIN_HEAVY_1H",
        "rolling 1 h reaches 20 mm",
        [(i * 300, {"rain_mm": 2.0}) for i in range(12)]
        + [(3600 + 1800, {"rain_mm": 0.0}), (3600 + 3700, {"rain_mm": 0.0})],
        [(OPEN, 2700), (CLEAR, 7300)],
    ),
    (
        "RAIN_SIGNAL_ORANGE",
        "50 mm in 3 h",
        [(i * 300, {"rain_mm": 2.5}) for i in range(24)],
        [(OPEN, 5700)],
    ),
    (
        "RAIN_SIGNAL_RED",
        "100 mm in 3 h",
        [(i * 300, {"rain_mm": 5.0}) for i in range(24)],
        [(OPEN, 5700)],
    ),
    (
        "RAIN_SIGNAL_YELLOW",
        "50 mm in 6 h",
        [(i * 1800, {"rain_mm": 5.0}) for i in range(12)],
        [(OPEN, 16200)],
    ),
    (
        "RAIN_SIGNAL_BLUE",
        "50 mm in 12 h",
        [(i * 3600, {"rain_mm": 5.0}) for i in range(12)],
        [(OPEN, 32400)],
    ),
    (
        "SL_LAMP_OUT",
        "out at night for 10 min",
        [
            (0, {**LAMP, "active_power_w": 1.0}),
            (300, {**LAMP, "active_power_w": 1.0}),
            (600, {**LAMP, "active_power_w": 1.0}),
            (900, {**LAMP, "active_power_w": 95.0}),
        ],
        [(OPEN, 600), (CLEAR, 900)],
    ),
    (
        "SL_LAMP_OUT",
        "dimmed to 50 % is not out",
        [
            (0, {**LAMP, "active_power_w": 48.0, "light_state_pct": 50.0}),
            (900, {**LAMP, "active_power_w": 48.0, "light_state_pct": 50.0}),
        ],
        [],
    ),
    (
        "SL_POWER_LOW",
        "60 % of rated for 15 min",
        [
            (0, {**LAMP, "active_power_w": 60.0}),
            (900, {**LAMP, "active_power_w": 60.0}),
            (1800, {**LAMP, "active_power_w": 95.0}),
        ],
        [(OPEN, 900), (CLEAR, 1800)],
    ),
    (
        "SL_POWER_HIGH",
        "140 % of rated for 15 min",
        [
            (0, {**LAMP, "active_power_w": 140.0}),
            (900, {**LAMP, "active_power_w": 140.0}),
            (1800, {**LAMP, "active_power_w": 100.0}),
        ],
        [(OPEN, 900), (CLEAR, 1800)],
    ),
    (
        "SL_PF_LOW",
        "PF 0.4 for 15 min",
        [
            (0, {**LAMP, "power_factor": 0.4}),
            (900, {**LAMP, "power_factor": 0.4}),
            (1800, {**LAMP, "power_factor": 0.52}),
            (2700, {**LAMP, "power_factor": 0.9}),
        ],
        [(OPEN, 900), (CLEAR, 2700)],
    ),
    (
        "SL_V_HIGH",
        "250 V for 5 min",
        [
            (0, {"supply_voltage_v": 250.0}),
            (300, {"supply_voltage_v": 250.0}),
            (600, {"supply_voltage_v": 240.0}),
            (900, {"supply_voltage_v": 230.0}),
        ],
        [(OPEN, 300), (CLEAR, 900)],
    ),
    (
        "SL_V_LOW",
        "190 V for 5 min",
        [
            (0, {"supply_voltage_v": 190.0}),
            (300, {"supply_voltage_v": 190.0}),
            (600, {"supply_voltage_v": 220.0}),
        ],
        [(OPEN, 300), (CLEAR, 600)],
    ),
    (
        "SL_V_LOW",
        "0 V is supply loss, not low voltage",
        [(0, {"supply_voltage_v": 0.0}), (600, {"supply_voltage_v": 0.0})],
        [],
    ),
    (
        "SL_SUPPLY_LOSS",
        "0 V at night for 2 min",
        [
            (0, {"supply_voltage_v": 0.0}),
            (120, {"supply_voltage_v": 0.0}),
            (900, {"supply_voltage_v": 225.0}),
        ],
        [(OPEN, 120), (CLEAR, 900)],
    ),
    (
        "SL_LEAKAGE",
        "immediate at 30 mA",
        [
            (0, {"leakage_current_ma": 35.0}),
            (60, {"leakage_current_ma": 27.0}),
            (120, {"leakage_current_ma": 10.0}),
        ],
        [(OPEN, 0), (CLEAR, 120)],
    ),
    (
        "SL_CTRL_TEMP",
        "90 °C for 15 min",
        [
            (0, {"controller_temp_c": 90.0}),
            (900, {"controller_temp_c": 90.0}),
            (1800, {"controller_temp_c": 70.0}),
        ],
        [(OPEN, 900), (CLEAR, 1800)],
    ),
    (
        "SL_CYCLING",
        "5 on/off transitions within the hour",
        [(i * 600, {"power_state": "on" if i % 2 else "off"}) for i in range(6)],
        [(OPEN, 3000)],
    ),
    (
        "SL_COUNTER_RESET",
        "energy counter decreases",
        [
            (0, {"active_energy_kwh": 100.0}),
            (900, {"active_energy_kwh": 3.0}),
            (1800, {"active_energy_kwh": 3.1}),
        ],
        [(OPEN, 900), (CLEAR, 1800)],
    ),
    (
        "WS_LOW_PRESSURE",
        "0.12 MPa for 15 min",
        [(0, {"pressure_mpa": 0.12}), (900, {"pressure_mpa": 0.12}), (1800, {"pressure_mpa": 0.3})],
        [(OPEN, 900), (CLEAR, 1800)],
    ),
    (
        "WS_HIGH_PRESSURE",
        "0.7 MPa for 15 min",
        [(0, {"pressure_mpa": 0.7}), (900, {"pressure_mpa": 0.7}), (1800, {"pressure_mpa": 0.4})],
        [(OPEN, 900), (CLEAR, 1800)],
    ),
    (
        "WS_COUNTER_RESET",
        "meter total decreases",
        [(0, {"fwd_total_m3": 500.0}), (900, {"fwd_total_m3": 1.0}), (1800, {"fwd_total_m3": 2.0})],
        [(OPEN, 900), (CLEAR, 1800)],
    ),
]


@pytest.mark.parametrize(
    ("rule_id", "case", "readings", "expected"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES]
)
def test_rule(rule_id: str, case: str, readings: list[Any], expected: list[Any]) -> None:
    assert run(rule_id, readings) == expected


@pytest.mark.parametrize(
    ("rule_id", "readings", "start", "expected"),
    [
        (
            "SL_LAMP_OUT",
            [(0, {**LAMP, "active_power_w": 1.0}), (900, {**LAMP, "active_power_w": 1.0})],
            DAY,
            [],
        ),
        (
            "SL_DAY_BURN",
            [(0, {**LAMP, "active_power_w": 95.0}), (900, {**LAMP, "active_power_w": 95.0})],
            DAY,
            [(OPEN, 900)],
        ),
        (
            "SL_DAY_BURN",
            [(0, {**LAMP, "active_power_w": 95.0}), (900, {**LAMP, "active_power_w": 95.0})],
            NIGHT,
            [],
        ),
        (
            "SL_SUPPLY_LOSS",
            [(0, {"supply_voltage_v": 0.0}), (600, {"supply_voltage_v": 0.0})],
            DAY,
            [],
        ),
        (
            "SL_CYCLING",
            [(i * 600, {"power_state": "on" if i % 2 else "off"}) for i in range(6)],
            DAY,
            [],
        ),
    ],
)
def test_expected_on_window(
    rule_id: str, readings: list[Any], start: float, expected: list[Any]
) -> None:
    """Lamp rules use the sunset/sunrise window at Anyang: noon is day, 22:00 is night."""
    assert run(rule_id, readings, start=start) == expected


def test_flow_anomaly_and_pressure_drop_use_the_profile() -> None:
    profile = {"profile": {"flow_m3_h": 40.0, "pressure_mpa": 0.35}}
    burst = [
        (0, {"flow_m3_h": 70.0, "pressure_mpa": 0.25}),
        (900, {"flow_m3_h": 72.0, "pressure_mpa": 0.26}),
        (1800, {"flow_m3_h": 41.0, "pressure_mpa": 0.35}),
        (2700, {"flow_m3_h": 40.0, "pressure_mpa": 0.35}),
    ]
    assert run("WS_FLOW_ANOMALY", burst, extra=profile) == [(OPEN, 900), (CLEAR, 2700)]
    assert run("WS_PRESSURE_DROP", burst, extra=profile) == [(OPEN, 0), (CLEAR, 2700)]
    assert run("WS_FLOW_ANOMALY", burst) == []  # no profile yet: unknown, never a guess
    assert run("WS_FLOW_ANOMALY", burst, extra=profile, attrs={"meter_role": "customer"}) == []


def test_mh_open_in_a_work_window_is_info() -> None:
    rule = next(r for r in RULES.rules if r.id == "MH_OPEN")
    plan, device = make_plan([rule]), Device("MH-1", "manhole")
    for work, severity in ((True, "info"), (False, "critical")):
        (tr,) = evaluate_reading(
            plan, device, DeviceState(), {"cover_open": True}, NIGHT, NIGHT, {"work_window": work}
        )
        assert tr.severity == severity


def test_dedup_one_open_per_rule_however_many_readings_match() -> None:
    readings = [(i * 60.0, {"ch4_pct_lel": 60.0}) for i in range(50)]
    assert run("MH_GAS_L2", readings) == [(OPEN, 0)]


def test_late_reading_never_resolves_or_reopens() -> None:
    """An old reading (or a redelivery) after a newer state changes nothing."""
    rule = next(r for r in RULES.rules if r.id == "MH_OPEN")
    plan, device, state = make_plan([rule]), Device("MH-1", "manhole"), DeviceState()
    assert [
        t.action
        for t in evaluate_reading(plan, device, state, {"cover_open": True}, NIGHT + 100, NIGHT)
    ] == [OPEN]
    assert (
        evaluate_reading(plan, device, state, {"cover_open": False}, NIGHT + 50, NIGHT) == []
    )  # late
    assert (
        evaluate_reading(plan, device, state, {"cover_open": True}, NIGHT + 100, NIGHT) == []
    )  # repeat
    assert [
        t.action
        for t in evaluate_reading(plan, device, state, {"cover_open": False}, NIGHT + 200, NIGHT)
    ] == [CLEAR]
    assert (
        evaluate_reading(plan, device, state, {"cover_open": True}, NIGHT + 150, NIGHT) == []
    )  # late


def test_late_rain_counts_in_the_window_once() -> None:
    rule = next(r for r in RULES.rules if r.id == "RAIN_HEAVY_1H")
    plan, device, state = make_plan([rule]), Device("WL-R-1", "waterlog"), DeviceState()
    evaluate_reading(plan, device, state, {"rain_mm": 10.0}, NIGHT + 600, NIGHT)
    evaluate_reading(plan, device, state, {"rain_mm": 5.0}, NIGHT + 300, NIGHT)  # late: kept
    evaluate_reading(plan, device, state, {"rain_mm": 5.0}, NIGHT + 300, NIGHT)  # repeat: once
    (tr,) = evaluate_reading(plan, device, state, {"rain_mm": 5.0}, NIGHT + 900, NIGHT)
    assert tr.action == OPEN and tr.detail["win.rain_1h"] == 20.0


def test_minimum_duration_completes_on_a_timer_without_another_reading() -> None:
    rule = next(r for r in RULES.rules if r.id == "SL_LAMP_OUT")
    plan, device, state = (
        make_plan([rule]),
        Device("SL-1", "streetlight", attrs={"rated_power_w": 100.0}),
        DeviceState(),
    )
    assert (
        evaluate_reading(plan, device, state, {**LAMP, "active_power_w": 0.5}, NIGHT, 1000.0) == []
    )
    assert next_timer(plan, state) == 1600.0
    assert evaluate_timers(plan, device, state, 1599.0) == []
    (tr,) = evaluate_timers(plan, device, state, 1600.0)
    assert (tr.action, tr.at, tr.started) == (OPEN, NIGHT + 600, NIGHT)
    assert next_timer(plan, state) is None


def test_state_round_trips_through_json() -> None:
    rule = next(r for r in RULES.rules if r.id == "RAIN_HEAVY_1H")
    plan, device, state = make_plan([rule]), Device("WL-R-1", "waterlog"), DeviceState()
    for i in range(6):
        evaluate_reading(plan, device, state, {"rain_mm": 2.0}, NIGHT + i * 300, NIGHT)
    again = DeviceState.from_json(state.to_json())
    a = evaluate_reading(plan, device, state, {"rain_mm": 9.0}, NIGHT + 1800, NIGHT)
    b = evaluate_reading(plan, device, again, {"rain_mm": 9.0}, NIGHT + 1800, NIGHT)
    assert [t.action for t in a] == [t.action for t in b] == [OPEN]


@pytest.mark.parametrize(
    ("kind", "attrs", "last", "after_s"),
    [
        ("manhole", {}, {"tilt_deg": 1.0}, 2 * 86400 + 3600),
        ("manhole", {"heartbeat_s": 3600}, {"tilt_deg": 1.0}, 2 * 3600 + 3600),
        ("waterlog", {"role": "depth"}, {"depth_cm": 0.0}, 7200),
        ("waterlog", {"role": "depth"}, {"depth_cm": 8.0}, 900),
        ("waterlog", {"role": "rain"}, {"rain_mm": 1.5}, 900),
        ("watermeter", {"meter_role": "inlet"}, {"flow_m3_h": 1.0}, 3600),
        ("watermeter", {"meter_role": "customer"}, {"flow_m3_h": 1.0}, 86400),
    ],
)
def test_offline_fires_at_its_deadline_and_clears_on_return(
    kind: str, attrs: dict[str, Any], last: dict[str, Any], after_s: float
) -> None:
    plan = make_plan(RULES.by_kind(kind))
    device, state = Device("D-1", kind, attrs=attrs), DeviceState()
    evaluate_reading(plan, device, state, last, NIGHT, 5000.0)
    note_seen(plan, device, state, 5000.0)
    assert evaluate_offline(plan, device, state, 5000.0 + after_s - 1) == []
    (tr,) = evaluate_offline(plan, device, state, 5000.0 + after_s + 0.5)
    assert (tr.action, tr.at) == (OPEN, 5000.0 + after_s)
    assert evaluate_offline(plan, device, state, 5000.0 + after_s + 10) == []  # once
    (back,) = note_seen(plan, device, state, 5000.0 + after_s + 20)
    assert back.action == CLEAR


def test_streetlight_offline_is_two_cycles_at_night_three_hours_by_day() -> None:
    plan = make_plan(RULES.by_kind("streetlight"))
    for start, after in ((NIGHT, 1800), (DAY, 10800)):
        device, state = Device("SL-1", "streetlight", attrs={"rated_power_w": 100.0}), DeviceState()
        evaluate_reading(plan, device, state, dict(LAMP), start, 0.0)
        note_seen(plan, device, state, 0.0)
        assert [t.at for t in evaluate_offline(plan, device, state, after)] == [after]


@pytest.mark.parametrize(
    ("overrides", "device_id", "district", "tilt_deg"),
    [
        ([], "MH-1", "wenfeng", 10),
        (
            [Override(rule="MH_TILT", kind="manhole", params={"tilt_deg": 12})],
            "MH-1",
            "wenfeng",
            12,
        ),
        (
            [
                Override(rule="MH_TILT", kind="manhole", params={"tilt_deg": 12}),
                Override(rule="MH_TILT", district="wenfeng", params={"tilt_deg": 8}),
            ],
            "MH-1",
            "wenfeng",
            8,
        ),
        (
            [
                Override(rule="MH_TILT", device="MH-1", params={"tilt_deg": 5}),
                Override(rule="MH_TILT", district="wenfeng", params={"tilt_deg": 8}),
            ],
            "MH-1",
            "wenfeng",
            5,
        ),
        ([Override(rule="MH_TILT", device="MH-1", params={"tilt_deg": 5})], "MH-2", "wenfeng", 10),
        (
            [Override(rule="MH_TILT", district="beiguan", params={"tilt_deg": 8})],
            "MH-1",
            "wenfeng",
            10,
        ),
    ],
)
def test_overrides_most_specific_wins(
    overrides: list[Override], device_id: str, district: str, tilt_deg: float
) -> None:
    rule = next(r for r in RULES.rules if r.id == "MH_TILT")
    eff = effective_rule(rule, overrides, "manhole", district, device_id)
    assert eff.params["tilt_deg"] == tilt_deg
    assert eff.params["hysteresis_deg"] == 2  # keys not overridden stay


def test_an_override_changes_what_fires() -> None:
    rule = next(r for r in RULES.rules if r.id == "MH_TILT")
    eff = effective_rule(
        rule,
        [Override(rule="MH_TILT", device="MH-1", params={"tilt_deg": 5})],
        "manhole",
        None,
        "MH-1",
    )
    plan, device, state = make_plan([eff]), Device("MH-1", "manhole"), DeviceState()
    hits = [
        evaluate_reading(
            plan, device, state, {"tilt_deg": 8.0, "tilt_baseline_deg": 1.0}, NIGHT + t, NIGHT + t
        )
        for t in (0, 5)
    ]
    assert [t.action for t in hits[1]] == [OPEN]
    assert (
        run("MH_TILT", [(0, {"tilt_deg": 8.0, "tilt_baseline_deg": 1.0}), (5, {"tilt_deg": 8.0})])
        == []
    )


def test_every_domain_rule_is_in_the_defaults() -> None:
    wanted = {
        "MH_TILT", "MH_FLIP", "MH_OPEN", "MH_WATER_HIGH", "MH_OVERFLOW", "MH_GAS_L1", "MH_GAS_L2", "MH_LOW_BATT", "MH_WEAK_SIGNAL", "MH_OFFLINE",
        "WL_LEVEL_L1", "WL_LEVEL_L2", "WL_LEVEL_L3", "WL_LEVEL_L4", "WL_SENSOR_STUCK", "RAIN_HEAVY_1H", "RAIN_SIGNAL_BLUE", "RAIN_SIGNAL_YELLOW", "RAIN_SIGNAL_ORANGE", "RAIN_SIGNAL_RED", "WL_OFFLINE",
        "SL_LAMP_OUT", "SL_DAY_BURN", "SL_POWER_LOW", "SL_POWER_HIGH", "SL_PF_LOW", "SL_V_HIGH", "SL_V_LOW", "SL_LEAKAGE", "SL_CTRL_TEMP", "SL_CYCLING", "SL_SUPPLY_LOSS", "SL_COMM_LOSS",
        "WS_FLOW_ANOMALY", "WS_PRESSURE_DROP", "WS_LOW_PRESSURE", "WS_HIGH_PRESSURE", "WS_METER_OFFLINE",
    }  # fmt: skip
    assert wanted <= {r.id for r in RULES.rules}
    for kind in ("manhole", "waterlog", "streetlight", "watermeter"):
        assert sum(r.type == "offline" for r in RULES.by_kind(kind)) == 1
