"""KPI formulas (urbanwatch/kpi/*) against hand-computed fixtures, and target status cases.
Pure: no database, no clock."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from urbanwatch.kpi import hidden, manhole, status, waterlog
from urbanwatch.kpi.base import load_all, ratio
from urbanwatch.queries.kpi import CoverFact, DefectFact, HazardFact, MonitorFact, PointFact

D = date.fromisoformat


def defect(cover, kind, found, fixed=None, verified=None, *, base=False, st="confirmed"):
    return DefectFact(
        cover_id=cover, district="wenfeng", defect_type=kind, status=st,
        discovered_on=D(found), remediated_on=fixed and D(fixed),
        verified_on=verified and D(verified), baseline_2021=base,
    )  # fmt: skip


# Baseline census: 5 defects (one of them NO_ANTIFALL, not counted), 2021.
DEFECTS = [
    defect("A", "BROKEN", "2021-03-01", "2021-06-01", "2021-06-05", base=True),
    defect("B", "MISSING", "2021-03-01", "2021-09-01", "2021-09-02", base=True),
    defect("C", "HEIGHT", "2021-03-02", "2021-11-30", None, base=True),  # not verified
    defect("D", "LOOSE", "2021-03-02", None, None, base=True),
    defect("E", "NO_ANTIFALL", "2021-03-02", None, None, base=True),
    defect("F", "BROKEN", "2021-07-01", "2021-08-01", "2021-08-01"),  # found later in 2021
    defect("G", "BROKEN", "2021-07-01", None, None, st="candidate"),  # sensor, unconfirmed
    defect("H", "BROKEN", "2022-02-01", None, None),  # found in 2022
]
CONFIG = manhole.DEFECT_DEFAULTS


@pytest.mark.parametrize(
    ("as_of", "baseline", "numerator", "denominator"),
    [
        ("2021-05-31", True, 0, 4),  # nothing fixed yet: 0 of the 4 counted baseline defects
        ("2021-06-05", True, 1, 4),  # A verified on the day counts that day
        ("2021-06-04", True, 0, 4),  # A fixed but not yet verified
        ("2021-12-31", True, 2, 4),  # A, B; C never verified; D open -> 50 %
        ("2021-12-31", False, 3, 5),  # + F found in 2021 and fixed -> 60 %
        ("2022-03-01", False, 2, 5),  # 2022: baseline 4 + H; F was found in 2021 -> out
        ("2022-03-01", True, 2, 4),  # the baseline denominator does not drift
    ],
)
def test_defect_remediation_rate(as_of, baseline, numerator, denominator):
    v = manhole.defect_remediation_rate(DEFECTS, D(as_of), CONFIG, baseline=baseline)
    assert (v.numerator, v.denominator) == (numerator, denominator)
    assert v.value == pytest.approx(numerator / denominator * 100)


def test_defect_rate_lists_what_it_left_out_and_the_defaults_it_used():
    v = manhole.defect_remediation_rate(DEFECTS, D("2021-12-31"), CONFIG, baseline=True)
    assert v.exclusions == (
        "E/NO_ANTIFALL/2021-03-02 (confirmed, NO_ANTIFALL)",
        "G/BROKEN/2021-07-01 (candidate, BROKEN)",
    )
    assert v.defaults == CONFIG


def test_all_defects_since_the_census_when_configured():
    config = {**CONFIG, "all_window": "all"}
    v = manhole.defect_remediation_rate(DEFECTS, D("2022-03-01"), config, baseline=False)
    assert (v.numerator, v.denominator) == (3, 6)  # A, B, F of A B C D F H


def test_zero_denominator_is_no_data_never_zero_percent():
    assert manhole.defect_remediation_rate([], D("2021-12-31"), CONFIG, baseline=True).value is None
    assert manhole.anti_fall_install_rate([], D("2021-12-31")).value is None
    assert manhole.smart_coverage_rate_core([]).value is None
    assert hidden.rectification_rate([], D("2021-12-31")).value is None
    assert (
        waterlog.remediation_rate([], D("2021-12-31"), baseline=True, verified=False).value is None
    )
    assert ratio(0, 0).value is None and ratio(0, 3).value == 0.0


def cover(cid, *, core=False, required=False, net=None, monitor=None, installed=None):
    return CoverFact(
        cover_id=cid, district="wenfeng", installed_on=installed and D(installed),
        in_core_area=core, anti_fall_required=required,
        anti_fall_installed_on=net and D(net), smart_monitor_id=monitor,
    )  # fmt: skip


COVERS = [
    cover("A", core=True, required=True, net="2021-04-01", monitor="MH-1"),
    cover("B", core=True, required=True, net="2022-01-10"),
    cover("C", core=True, monitor="MH-3"),
    cover("D", required=True),
    cover("E"),
    cover("F", installed="2022-06-01"),  # not yet there in 2021
]


def test_anti_fall_install_rate():
    assert manhole.anti_fall_install_rate(COVERS, D("2021-12-31")).value == pytest.approx(100 / 3)
    v = manhole.anti_fall_install_rate(COVERS, D("2022-01-10"))
    assert (v.numerator, v.denominator) == (2, 3)


def test_intact_rate_counts_covers_with_an_open_defect_once():
    # 2021-12-31, 5 covers exist (F not yet): open confirmed defects on C (fixed 11-30 counts
    # as fixed: intact is about remediation, not verification), D, E -> D, E broken: 3/5.
    v = manhole.intact_rate(COVERS, DEFECTS, D("2021-12-31"))
    assert (v.numerator, v.denominator) == (3, 5)
    v = manhole.intact_rate(COVERS, DEFECTS, D("2021-03-01"))  # A, B open
    assert (v.numerator, v.denominator) == (3, 5)


def test_smart_coverage_in_the_core_area():
    v = manhole.smart_coverage_rate_core(COVERS)
    assert (v.numerator, v.denominator) == (2, 3)


def test_online_rate_uses_two_heartbeats_plus_grace():
    at = datetime(2021, 12, 31, 16, tzinfo=UTC)
    limit = manhole.ONLINE_DEFAULTS["offline_after_s"]
    assert limit == 2 * 86400 + 3600

    def mon(did, ago_s, hb=None, installed=None):
        seen = None if ago_s is None else at - timedelta(seconds=ago_s)
        return MonitorFact(device_id=did, district="wenfeng", installed_at=installed,
                           heartbeat_s=hb, last_seen=seen)  # fmt: skip

    monitors = [
        mon("a", 60),
        mon("b", limit),  # exactly at the limit: online
        mon("c", limit + 1),
        mon("d", None),  # never heard from
        mon("e", 3 * 3600, hb=3600),  # hourly heartbeat: offline after 2 h + 1 h grace
        mon("f", 60, installed=date(2022, 1, 1)),  # not installed yet
    ]
    v = manhole.online_rate(monitors, at, manhole.ONLINE_DEFAULTS)
    assert (v.numerator, v.denominator) == (3, 5)


def point(pid, accepted=None, *, ver="pending", verified=None, base=False):
    return PointFact(
        point_id=pid, name=pid, district="wenfeng", accepted_on=accepted and D(accepted),
        verification=ver, verified_on=verified and D(verified), baseline_2021=base,
        sensor_id=None,
    )  # fmt: skip


POINTS = [
    point("人民公园", "2021-09-30", ver="verified", verified="2022-07-10", base=True),
    point("同乐花园", "2021-10-15", ver="regressed", verified="2022-07-10", base=True),
    point("P3", "2021-12-31", base=True),
    point("P4", base=True),
    point("P5", "2022-05-01"),  # added to the ledger after 2021
    point("P6"),
]


def test_points_remediated_per_year():
    assert waterlog.points_remediated_count(POINTS, D("2021-12-31")).value == 3
    assert waterlog.points_remediated_count(POINTS, D("2021-12-30")).value == 2
    assert waterlog.points_remediated_count(POINTS, D("2022-12-31")).value == 1


@pytest.mark.parametrize(
    ("as_of", "baseline", "verified", "numerator", "denominator"),
    [
        ("2021-12-31", False, False, 3, 6),
        ("2021-12-31", True, False, 3, 4),  # against the frozen 2021 ledger
        ("2022-12-31", False, False, 4, 6),
        ("2022-12-31", True, False, 3, 4),
        ("2022-12-31", False, True, 1, 6),  # verified by data: 人民公园 only
        ("2022-07-09", False, True, 0, 6),
    ],
)
def test_remediation_rate(as_of, baseline, verified, numerator, denominator):
    v = waterlog.remediation_rate(POINTS, D(as_of), baseline=baseline, verified=verified)
    assert (v.numerator, v.denominator) == (numerator, denominator)


def test_verified_rate_names_regressed_points():
    v = waterlog.remediation_rate(POINTS, D("2022-12-31"), baseline=False, verified=True)
    assert v.exclusions == ("同乐花园 同乐花园 (regressed)",)


def _series(device, start, depths, step_min=5):
    t0 = datetime.fromisoformat(start)
    return [(device, t0 + timedelta(minutes=step_min * i), d) for i, d in enumerate(depths)]


def test_events_open_at_15_cm_and_close_after_30_min_below_5_cm():
    readings = (
        # one event: peaks 22, dips to 4 for only 10 min (stays open), then < 5 for 30 min
        _series("S1", "2021-07-20T08:00+08:00", [0, 10, 16, 22, 4, 4, 8, 3, 3, 3, 3, 3, 3, 3, 20])
        # 14.9 never opens an event
        + _series("S2", "2021-07-20T08:00+08:00", [14.9, 14.9, 0])
        # opens and is still open at the last reading
        + _series("S3", "2021-07-20T08:00+08:00", [15, 30])
    )
    events = waterlog.segment_events(readings, waterlog.EVENT_DEFAULTS)
    assert [(e.device_id, e.max_depth_cm, e.end is None) for e in events] == [
        ("S1", 22, False),
        ("S1", 20, True),  # a second event after the first closed
        ("S3", 30, True),
    ]
    first = events[0]
    assert first.start == datetime.fromisoformat("2021-07-20T08:10+08:00")
    assert first.end == datetime.fromisoformat("2021-07-20T08:35+08:00")  # low since 08:35
    v = waterlog.events_in_season(events, D("2021-06-01"), D("2021-09-30"))
    assert v.value == 3


def test_rectification_rate_and_overdue():
    def hz(hid, found, deadline=None, fixed=None):
        return HazardFact(hazard_id=hid, district="linzhou", category="燃气", found_on=D(found),
                          deadline=deadline and D(deadline), rectified_on=fixed and D(fixed),
                          verified_on=None)  # fmt: skip

    hazards = [
        hz("1", "2022-01-01", "2022-03-01", "2022-02-01"),
        hz("2", "2022-01-01", "2022-03-01"),
        hz("3", "2022-01-01", "2022-06-01", "2022-05-01"),
        hz("4", "2022-05-01"),
        hz("5", "2023-01-01", "2023-01-02"),
    ]
    v = hidden.rectification_rate(hazards, D("2022-04-01"))
    assert (v.numerator, v.denominator) == (1, 3)
    assert hidden.overdue_count(hazards, D("2022-04-01")).value == 1  # '2'
    assert hidden.overdue_count(hazards, D("2022-03-01")).value == 0  # due that day: not yet
    assert [h.hazard_id for h in hidden.overdue(hazards, D("2023-02-01"))] == ["2", "5"]


def test_the_registry_finds_every_area_module():
    keys = load_all()
    assert {k.split(".")[0] for k in keys} >= {"manhole", "waterlog", "hidden"}
    assert "manhole.defect_remediation_rate_baseline" in keys
    assert all(spec.key.startswith(spec.area + ".") for spec in keys.values())


# --- status against the target ---------------------------------------------------------------


def hist(start, values, step_days=30):
    return [(D(start) + timedelta(days=step_days * i), v) for i, v in enumerate(values)]


@pytest.mark.parametrize(
    ("case", "comparator", "target", "deadline", "as_of", "value", "history", "expected"),
    [
        (
            "met early",
            ">=",
            40,
            "2021-12-31",
            "2021-10-01",
            45.0,
            hist("2021-07-01", [20, 35, 45]),
            "met",
        ),
        (
            "on track",
            ">=",
            40,
            "2021-12-31",
            "2021-09-28",
            30.0,
            hist("2021-06-30", [0, 10, 20, 30]),
            "on_track",
        ),
        (
            "at risk",
            ">=",
            40,
            "2021-12-31",
            "2021-09-28",
            12.0,
            hist("2021-06-30", [0, 4, 8, 12]),
            "at_risk",
        ),
        (
            "no trend yet",
            ">=",
            40,
            "2021-12-31",
            "2021-09-28",
            12.0,
            [(D("2021-09-28"), 12.0)],
            "at_risk",
        ),
        (
            "missed",
            ">=",
            40,
            "2021-12-31",
            "2022-02-01",
            60.0,
            hist("2021-11-01", [30, 35, 39, 60]),
            "missed",
        ),
        (
            "met on the deadline",
            ">=",
            40,
            "2021-12-31",
            "2022-02-01",
            60.0,
            hist("2021-11-01", [30, 41]),
            "met",
        ),
        (
            "lower is better",
            "<=",
            9.7,
            "2023-12-31",
            "2023-06-01",
            11.0,
            hist("2023-01-01", [13, 12.5, 12, 11.5, 11.2, 11.0]),
            "on_track",
        ),
        ("ongoing met", ">=", 96, None, "2022-01-01", 97.0, [], "met"),
        ("ongoing not met", ">=", 96, None, "2022-01-01", 95.0, [], "missed"),
        ("no data", ">=", 100, "2022-12-31", "2022-01-01", None, [], "no_data"),
        (
            "deadline passed without data",
            ">=",
            100,
            "2021-12-31",
            "2022-01-05",
            50.0,
            hist("2022-01-02", [50]),
            "no_data",
        ),
    ],
)
def test_status(case, comparator, target, deadline, as_of, value, history, expected):
    a = status.assess(comparator, target, deadline and D(deadline), D(as_of), value, history)
    assert a.status == expected, (case, a.reasoning)
    assert a.reasoning


def test_projection_and_pace_are_explained():
    # +10 per 30 days = 10.14/month; 94 days left from 30 -> 30 + 10/30*94 = 61.3 >= 40
    a = status.assess(
        ">=", 40, D("2021-12-31"), D("2021-09-28"), 30.0, hist("2021-06-30", [0, 10, 20, 30])
    )
    assert a.projection == pytest.approx(30 + 10 / 30 * 94)
    assert a.trend_per_month == pytest.approx(10 / 30 * 30.4375)
    assert a.required_per_month == pytest.approx(10 / 94 * 30.4375)
    assert "projects 61.3 on 2021-12-31, which meets >= 40" in a.reasoning
