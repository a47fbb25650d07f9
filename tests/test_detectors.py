"""The group detectors as pure functions: circuits, dark segments, suspected bursts, flooding
episodes and storm incidents (docs/alerts.md "Group detectors")."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.detectors import DetectorConfig, Site
from alerts.detectors.common import order_along
from alerts.detectors.lighting import CIRCUIT_RULE, DARK_RULE, LightingDetector
from alerts.detectors.water import BURST_RULE, BurstDetector
from alerts.detectors.waterlog import EVENT_RULE, STORM_RULE, WaterlogDetector
from tests.detectors_support import device, lamp, meter, topology, tr

T = 1_780_000_000.0


# --- circuits ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "out", "escalated"),
    [
        (10, 1, False),
        (10, 2, False),  # 20 %, fewer than 3
        (10, 3, True),  # ≥ 3 lamps
        (4, 2, True),  # ≥ 50 %
        (5, 2, False),  # 40 %
        (2, 2, True),
        (1, 1, False),  # one lamp is not a circuit fault
    ],
)
def test_circuit_escalates_at_three_lamps_or_half_the_circuit(size, out, escalated) -> None:
    lamps = [lamp(i) for i in range(size)]
    det = LightingDetector(topology(*lamps))
    changes = []
    for i in range(out):
        changes += det.on_transition(tr(lamps[i], "SL_SUPPLY_LOSS", "open", T + i))
    opened = [c for c in changes if c.rule_id == CIRCUIT_RULE and c.action == "open"]
    assert len(opened) == (1 if escalated else 0)
    if escalated:
        assert opened[0].subject == "CIR-1"
        assert opened[0].suppress_children
        assert opened[0].children == tuple(("SL_SUPPLY_LOSS", f"SL-{i}") for i in range(out))
        assert opened[0].started.timestamp() == T  # when the first lamp lost supply


def test_circuit_alert_grows_then_clears_and_releases_the_lamps_still_out() -> None:
    lamps = [lamp(i) for i in range(10)]
    det = LightingDetector(topology(*lamps))
    for i in range(3):
        det.on_transition(tr(lamps[i], "SL_SUPPLY_LOSS", "open", T + i))
    (update,) = [c for c in det.on_transition(tr(lamps[3], "SL_SUPPLY_LOSS", "open", T + 5))
                 if c.rule_id == CIRCUIT_RULE]  # fmt: skip
    assert (update.action, update.detail["lamps_out"]) == ("update", 4)
    assert ("SL_SUPPLY_LOSS", "SL-3") in update.children
    assert det.on_transition(tr(lamps[0], "SL_SUPPLY_LOSS", "clear", T + 60))[0].action == "update"
    (clear,) = det.on_transition(tr(lamps[1], "SL_SUPPLY_LOSS", "clear", T + 61))
    assert clear.action == "clear" and not clear.suppress_children
    assert set(clear.children) == {("SL_SUPPLY_LOSS", "SL-2"), ("SL_SUPPLY_LOSS", "SL-3")}
    assert det.on_transition(tr(lamps[2], "SL_SUPPLY_LOSS", "clear", T + 62)) == []


def test_circuits_are_kept_apart_and_cabinet_is_the_fallback() -> None:
    a = [lamp(i, circuit="CIR-A") for i in range(2)]
    b = [
        Site(f"SL-B{i}", "streetlight", None, None, None, {"cabinet_id": "CAB-9"}) for i in range(3)
    ]
    det = LightingDetector(topology(*a, *b))
    changes = [c for s in a + b for c in det.on_transition(tr(s, "SL_SUPPLY_LOSS", "open", T))]
    assert sorted((c.subject, c.action) for c in changes if c.rule_id == CIRCUIT_RULE) == [
        ("CAB-9", "open"),  # 2 of 3
        ("CAB-9", "update"),
        ("CIR-A", "open"),  # 2 of 2
    ]


def test_other_lamp_rules_do_not_count_as_supply_loss() -> None:
    lamps = [lamp(i, segment=f"S{i}") for i in range(5)]
    det = LightingDetector(topology(*lamps))
    changes = [c for s in lamps for c in det.on_transition(tr(s, "SL_POWER_LOW", "open", T))]
    changes += [c for s in lamps for c in det.on_transition(tr(s, "SL_LAMP_OUT", "open", T))]
    assert [c for c in changes if c.rule_id == CIRCUIT_RULE] == []


# --- dark segments -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("out", "after_s", "dark"),
    [
        ((0, 1), 900, True),  # two adjacent
        ((0, 2), 900, False),  # not adjacent
        ((1, 2, 3), 900, True),
        ((0, 1), 800, False),  # not out long enough yet
        ((3,), 3600, False),  # one lamp
    ],
)
def test_dark_segment_needs_two_adjacent_lamps_out_long_enough(out, after_s, dark) -> None:
    lamps = [lamp(i, circuit=f"CIR-{i}") for i in range(5)]
    det = LightingDetector(topology(*lamps), DetectorConfig(dark_after_s=900))
    for i in out:
        det.on_transition(tr(lamps[i], "SL_LAMP_OUT", "open", T, T))
    changes = det.on_reading(device(lamps[4]), {"active_power_w": 60}, T + after_s)
    opened = [c for c in changes if c.rule_id == DARK_RULE and c.action == "open"]
    assert len(opened) == (1 if dark else 0)
    if dark:
        assert opened[0].subject == "R1-S00"
        assert set(opened[0].children) == {("SL_LAMP_OUT", f"SL-{i}") for i in out}
        assert not opened[0].suppress_children


def test_dark_segment_clears_when_a_lamp_of_the_pair_is_lit_again() -> None:
    lamps = [lamp(i, circuit=f"CIR-{i}") for i in range(3)]
    det = LightingDetector(topology(*lamps), DetectorConfig(dark_after_s=0))
    det.on_transition(tr(lamps[0], "SL_LAMP_OUT", "open", T))
    assert [c.action for c in det.on_transition(tr(lamps[1], "SL_LAMP_OUT", "open", T))] == ["open"]
    assert det.on_reading(device(lamps[2]), {}, T + 10) == []  # still dark: nothing new
    (clear,) = det.on_transition(tr(lamps[1], "SL_LAMP_OUT", "clear", T + 20))
    assert (clear.rule_id, clear.action) == (DARK_RULE, "clear")


def test_a_dark_segment_from_a_circuit_fault_goes_under_the_circuit_alert() -> None:
    lamps = [lamp(i) for i in range(4)]
    det = LightingDetector(topology(*lamps), DetectorConfig(dark_after_s=600))
    for s in lamps:
        det.on_transition(tr(s, "SL_SUPPLY_LOSS", "open", T))
    changes = det.on_reading(device(lamps[0]), {}, T + 600)
    assert [(c.rule_id, c.action) for c in changes] == [
        (DARK_RULE, "open"),
        (CIRCUIT_RULE, "update"),
    ]
    assert changes[1].children == ((DARK_RULE, "R1-S00"),) and changes[1].suppress_children
    assert changes[0].children == ()  # supply-loss lamps stay under the circuit


@pytest.mark.parametrize(
    ("sites", "expected"),
    [
        (  # explicit position wins over pole numbers
            [Site("a", "streetlight", attrs={"position": 2, "pole_id": "P-1"}),
             Site("b", "streetlight", attrs={"position": 1, "pole_id": "P-2"})],
            ["b", "a"],
        ),
        (  # pole numbers
            [Site("a", "streetlight", attrs={"pole_id": "P-7-010"}),
             Site("b", "streetlight", attrs={"pole_id": "P-7-002"}),
             Site("c", "streetlight", attrs={"pole_id": "P-7-005"})],
            ["b", "c", "a"],
        ),
        (  # no order attributes: along the road from the locations (a north-south road)
            [Site("a", "streetlight", lat=36.103, lon=114.30),
             Site("b", "streetlight", lat=36.101, lon=114.30),
             Site("c", "streetlight", lat=36.102, lon=114.30)],
            ["b", "c", "a"],
        ),
    ],
)  # fmt: skip
def test_lamps_are_ordered_along_the_segment(sites, expected) -> None:
    got = order_along(sites)
    assert got in (expected, expected[::-1])


# --- suspected bursts --------------------------------------------------------------------

IN, P1, P2 = (
    meter("IN", "DMA-01", "inlet"),
    meter("P1", "DMA-01", "pressure"),
    meter("P2", "DMA-01", "pressure"),
)


@pytest.mark.parametrize(
    ("events", "burst"),
    [
        ([("IN", "WS_FLOW_ANOMALY", 0), ("P1", "WS_PRESSURE_DROP", 60), ("P2", "WS_PRESSURE_DROP", 90)], True),
        ([("P1", "WS_PRESSURE_DROP", 0), ("P2", "WS_PRESSURE_DROP", 0), ("IN", "WS_FLOW_ANOMALY", 1700)], True),
        ([("IN", "WS_FLOW_ANOMALY", 0), ("P1", "WS_PRESSURE_DROP", 60)], False),  # one point of two
        ([("P1", "WS_PRESSURE_DROP", 0), ("P2", "WS_PRESSURE_DROP", 0)], False),  # no flow anomaly
        ([("IN", "WS_FLOW_ANOMALY", 0), ("P1", "WS_PRESSURE_DROP", 0), ("P2", "WS_PRESSURE_DROP", 4000)], False),
    ],
)  # fmt: skip
def test_flow_anomaly_and_pressure_drops_within_the_window_are_one_burst(events, burst) -> None:
    sites = {"IN": IN, "P1": P1, "P2": P2}
    det = BurstDetector(topology(IN, P1, P2), DetectorConfig(burst_window_s=1800))
    changes = [c for name, rule, dt in events
               for c in det.on_transition(tr(sites[name], rule, "open", T + dt))]  # fmt: skip
    opened = [c for c in changes if c.action == "open"]
    assert len(opened) == (1 if burst else 0)
    if burst:
        (c,) = opened
        assert (c.rule_id, c.subject, c.severity, c.kind) == (
            BURST_RULE,
            "DMA-01",
            "critical",
            "watermeter",
        )
        assert len(c.children) == 3 and c.suppress_children


def test_a_dma_with_one_pressure_point_needs_only_that_one() -> None:
    inlet, point = meter("IN", "DMA-02", "inlet"), meter("P1", "DMA-02", "pressure")
    det = BurstDetector(topology(inlet, point))
    det.on_transition(tr(inlet, "WS_FLOW_ANOMALY", "open", T))
    assert [c.action for c in det.on_transition(tr(point, "WS_PRESSURE_DROP", "open", T + 5))] == [
        "open"
    ]


def test_burst_clears_when_flow_and_pressure_are_back() -> None:
    det = BurstDetector(topology(IN, P1, P2))
    for s, rule in ((IN, "WS_FLOW_ANOMALY"), (P1, "WS_PRESSURE_DROP"), (P2, "WS_PRESSURE_DROP")):
        det.on_transition(tr(s, rule, "open", T))
    assert det.on_transition(tr(IN, "WS_FLOW_ANOMALY", "clear", T + 99))[0].action == "update"
    assert det.on_transition(tr(P1, "WS_PRESSURE_DROP", "clear", T + 99))[0].action == "update"
    (clear,) = det.on_transition(tr(P2, "WS_PRESSURE_DROP", "clear", T + 100))
    assert (clear.action, clear.rule_id) == ("clear", BURST_RULE)
    assert det.on_transition(tr(IN, "WS_FLOW_ANOMALY", "open", T + 200)) == []  # needs both again


# --- flooding episodes and storms --------------------------------------------------------

POINT = Site("WL-D-001", "waterlog", "wenfeng", attrs={"role": "depth", "point_id": "WLP-001"})
POINT2 = Site("WL-D-002", "waterlog", "beiguan", attrs={"role": "depth", "point_id": "WLP-002"})
GAUGE = Site("WL-R-001", "waterlog", "wenfeng", attrs={"role": "rain"})


def run_series(det: WaterlogDetector, series):  # type: ignore[no-untyped-def]
    out = []
    for site, minute, fields in series:
        out += det.on_reading(device(site), fields, T + minute * 60)
    return out


def test_an_episode_records_depth_duration_drain_and_rain() -> None:
    det = WaterlogDetector(topology(POINT, GAUGE))
    series = [(GAUGE, 0, {"rain_mm": 0.0}), (GAUGE, 5, {"rain_mm": 5.0})]
    series += [(POINT, 6, {"depth_cm": 8.0}), (POINT, 10, {"depth_cm": 16.0})]
    series += [
        (GAUGE, 10, {"rain_mm": 4.0}),
        (POINT, 11, {"depth_cm": 22.0}),
        (POINT, 12, {"depth_cm": 30.0}),
    ]
    series += [
        (POINT, 20, {"depth_cm": 14.0}),
        (POINT, 40, {"depth_cm": 4.0}),
        (GAUGE, 60, {"rain_mm": 0.0}),
    ]
    series += [(POINT, 65, {"depth_cm": 2.0}), (POINT, 70, {"depth_cm": 1.0})]  # 30 min < 5 cm
    changes = [c for c in run_series(det, series) if c.rule_id == EVENT_RULE]
    assert (changes[0].action, changes[0].subject) == ("open", "WL-D-001@20260529T0436")
    assert changes[-2].action == "update" and changes[-1].action == "clear"
    final = changes[-2].detail
    assert final["max_depth_cm"] == 30.0
    assert final["duration_above_15cm_min"] == 10.0  # readings at 10, 11, 12 min held it to 20
    assert final["time_to_drain_min"] == 28.0  # peak at 12 min, < 5 cm at 40 min
    assert final["rain_acc_event_mm"] == 9.0  # the rain episode began at minute 5
    assert final["max_intensity_mm_h"] == 60.0  # 5 mm in 5 min
    assert final["end"] is not None and final["point_id"] == "WLP-001"


@pytest.mark.parametrize(
    ("depths", "opened", "closed"),
    [
        ([10, 14.9, 12], 0, 0),  # never reaches 15 cm
        ([15, 3, 3, 3], 1, 1),  # < 5 cm held 30 min
        ([15, 3, 3, 6, 3], 1, 0),  # back above 5 cm restarts the 30 min
        ([20, 4, 4, 4, 18, 4], 2, 1),  # a second episode
    ],
)
def test_episode_open_and_close(depths, opened, closed) -> None:
    det = WaterlogDetector(topology(POINT))
    series = [(POINT, i * 15, {"depth_cm": float(d)}) for i, d in enumerate(depths)]
    changes = [c for c in run_series(det, series) if c.rule_id == EVENT_RULE]
    assert sum(c.action == "open" for c in changes) == opened
    assert sum(c.action == "clear" for c in changes) == closed


def test_one_storm_incident_groups_every_point_and_alert_then_ends_when_dry() -> None:
    det = WaterlogDetector(topology(POINT, POINT2, GAUGE), DetectorConfig(storm_dry_s=3600))
    det.on_transition(tr(POINT, "WL_LEVEL_L0", "open", T))  # before the incident
    changes = run_series(det, [(GAUGE, 0, {"rain_mm": 3.0}), (POINT, 1, {"depth_cm": 16.0})])
    (storm,) = [c for c in changes if c.rule_id == STORM_RULE]
    assert storm.action == "open" and storm.suppress_children
    assert set(storm.children) == {
        (EVENT_RULE, "WL-D-001@20260529T0427"),
        ("WL_LEVEL_L0", "WL-D-001"),
    }
    assert storm.subject == "STORM-20260529T0426"  # from the start of the rain
    changes = run_series(det, [(POINT2, 2, {"depth_cm": 21.0})])
    (update,) = [c for c in changes if c.rule_id == STORM_RULE]
    assert update.action == "update" and update.detail["events"] == 2 and update.severity == "alarm"
    (more,) = det.on_transition(tr(POINT2, "WL_LEVEL_L2", "open", T + 300))
    assert more.children == (("WL_LEVEL_L2", "WL-D-002"),) and more.suppress_children
    series = [(p, m, {"depth_cm": 1.0}) for m in (10, 45) for p in (POINT, POINT2)]
    changes = [c for c in run_series(det, series) if c.rule_id == STORM_RULE]
    assert all(c.action == "update" for c in changes)  # episodes closed, rain too recent
    (end,) = [
        c for c in run_series(det, [(GAUGE, 61, {"rain_mm": 0.0})]) if c.rule_id == STORM_RULE
    ]
    assert end.action == "clear" and not end.suppress_children
    changes = run_series(det, [(GAUGE, 300, {"rain_mm": 2.0}), (POINT, 301, {"depth_cm": 15.0})])
    assert [c.subject for c in changes if c.rule_id == STORM_RULE and c.action == "open"] == [
        "STORM-20260529T0926"  # a new rain episode, a new incident
    ]


def test_rain_alone_opens_no_incident() -> None:
    det = WaterlogDetector(topology(POINT, GAUGE))
    changes = run_series(det, [(GAUGE, m, {"rain_mm": 10.0}) for m in range(0, 60, 5)])
    changes += det.on_transition(tr(GAUGE, "RAIN_HEAVY_1H", "open", T + 3600))
    changes += run_series(det, [(POINT, 61, {"depth_cm": 9.0})])
    assert changes == []


def test_a_dark_segment_seen_before_the_circuit_escalates_goes_under_it_when_it_does() -> None:
    lamps = [lamp(i) for i in range(10)]
    det = LightingDetector(topology(*lamps), DetectorConfig(dark_after_s=600))
    det.on_transition(tr(lamps[0], "SL_SUPPLY_LOSS", "open", T + 900, T))
    (dark,) = det.on_transition(tr(lamps[1], "SL_SUPPLY_LOSS", "open", T + 900, T))
    assert (dark.rule_id, dark.action) == (DARK_RULE, "open")  # 2 of 10: no circuit yet
    changes = det.on_transition(tr(lamps[2], "SL_SUPPLY_LOSS", "open", T + 900, T))
    (circuit,) = [c for c in changes if c.rule_id == CIRCUIT_RULE]
    assert circuit.action == "open" and (DARK_RULE, "R1-S00") in circuit.children


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans(), st.booleans()), max_size=40))
def test_any_lamp_sequence_keeps_circuit_and_dark_alerts_consistent(steps) -> None:
    """Random supply losses, lamp failures and recoveries on a 6-lamp circuit: the circuit
    alert is open exactly while the escalation rule holds, opens and clears alternate, and a
    dark segment is open exactly while two adjacent lamps are out."""
    lamps = [lamp(i) for i in range(6)]
    det = LightingDetector(topology(*lamps), DetectorConfig(dark_after_s=0))
    out: dict[str, set[int]] = {"SL_SUPPLY_LOSS": set(), "SL_LAMP_OUT": set()}
    state = {CIRCUIT_RULE: False, DARK_RULE: False}
    for n, (i, supply, fail) in enumerate(steps):
        rule = "SL_SUPPLY_LOSS" if supply else "SL_LAMP_OUT"
        action = "open" if fail else "clear"
        if (i in out[rule]) == fail:
            continue  # the engine never repeats a transition
        (out[rule].add if fail else out[rule].discard)(i)
        for c in det.on_transition(tr(lamps[i], rule, action, T + n)):
            if c.action in ("open", "clear"):
                assert state[c.rule_id] == (c.action == "clear")  # alternate
                state[c.rule_id] = c.action == "open"
            else:
                assert state[c.rule_id]  # updates only while open
        assert state[CIRCUIT_RULE] == det.escalated(len(out["SL_SUPPLY_LOSS"]), 6)
        dark = out["SL_SUPPLY_LOSS"] | out["SL_LAMP_OUT"]
        assert state[DARK_RULE] == any(j in dark and j + 1 in dark for j in range(5))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["IN", "P1", "P2"]), st.booleans(), st.integers(0, 900)),
                max_size=40))  # fmt: skip
def test_any_meter_sequence_keeps_the_burst_alert_consistent(steps) -> None:
    """Random flow anomalies and pressure drops in one DMA: the burst opens only with a flow
    anomaly and both pressure points down, clears only when no meter alert is left, and
    alternates open/clear."""
    sites = {"IN": IN, "P1": P1, "P2": P2}
    det = BurstDetector(topology(IN, P1, P2), DetectorConfig(burst_window_s=1800))
    down: set[str] = set()
    is_open, t = False, T
    for name, fail, dt in steps:
        t += dt
        if (name in down) == fail:
            continue
        (down.add if fail else down.discard)(name)
        rule = "WS_FLOW_ANOMALY" if name == "IN" else "WS_PRESSURE_DROP"
        for c in det.on_transition(tr(sites[name], rule, "open" if fail else "clear", t)):
            if c.action == "open":
                assert not is_open and down == {"IN", "P1", "P2"}
                is_open = True
            elif c.action == "clear":
                assert is_open and not down
                is_open = False
            else:
                assert is_open
        assert ("DMA-01" in det.bursts) == is_open
        if not down:
            assert not is_open
