"""Lighting KPIs (urbanwatch/kpi/lighting.py) against hand-computed fixtures, and the
ledger-to-KPI path (facilities and segments imported, alarms in `alerts`) on the database."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from urbanwatch import audit
from urbanwatch.kpi import lighting_formulas as k
from urbanwatch.kpi.base import Scope, load_all, ratio
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.queries.lighting_ledger import FacilityFact, FaultFact, SampleFact, SegmentFact

LOCAL = k.LOCAL
DAY = date(2023, 5, 10)
AT = datetime(2023, 5, 10, 22, 0, tzinfo=LOCAL)


def lamp(fid: str, **kw) -> FacilityFact:
    base = {"facility_id": fid, "facility_type": "lamp", "district": "wenfeng",
            "lamp_type": "LED", "rated_power_w": 100.0, "device_id": f"SL-{fid}"}  # fmt: skip
    return FacilityFact(**(base | kw))


def fault(device: str | None, opened: datetime, closed: datetime | None = None, **kw) -> FaultFact:
    return FaultFact(rule_id=kw.get("rule", "SL_LAMP_OUT"), subject=kw.get("subject", device or ""),
                     device_id=device, opened_at=opened, closed_at=closed)  # fmt: skip


def test_intact_rate_lamps_and_all_facilities():
    facilities = [
        lamp("1"), lamp("2"), lamp("3", circuit_id="C1"), lamp("4"),
        lamp("5", defect="灯罩破损", defect_found_on=date(2023, 5, 1)),
        lamp("6", defect="倾斜", defect_found_on=date(2023, 5, 1), defect_repaired_on=DAY),
        lamp("7", installed_on=date(2023, 6, 1)),  # not yet in service
        FacilityFact(facility_id="P1", facility_type="pole", district="wenfeng"),
        FacilityFact(facility_id="K1", facility_type="cabinet", district="wenfeng",
                     defect="缺门", defect_found_on=date(2023, 4, 1)),
    ]  # fmt: skip
    faults = [
        fault("SL-1", AT - timedelta(hours=3)),  # open: broken
        fault("SL-2", AT - timedelta(hours=3), AT - timedelta(hours=1)),  # cleared before 22:00
        fault(None, AT - timedelta(hours=1), subject="C1", rule="SL_CIRCUIT_SUPPLY_LOSS"),
        fault("SL-4", AT + timedelta(minutes=1)),  # opened after the snapshot
    ]
    lamps = k.intact_rate(facilities, faults, AT, lamps_only=True)
    # 6 lamps in service; 1 (alarm), 3 (its circuit), 5 (open defect) broken -> 3/6.
    assert (lamps.numerator, lamps.denominator, lamps.value) == (3, 6, 50.0)
    everything = k.intact_rate(facilities, faults, AT, lamps_only=False)
    assert (everything.numerator, everything.denominator) == (4, 8)  # + P1 intact, K1 not


def test_monthly_is_the_mean_of_daily_snapshots_and_zero_denominator_is_no_data():
    days = [ratio(9, 10), ratio(10, 10), ratio(0, 0)]
    assert k.monthly_mean(days).value == pytest.approx(95.0)
    assert k.monthly_mean([ratio(0, 0)]).value is None
    assert k.intact_rate([], [], AT, lamps_only=True).value is None


def test_lighting_rate_excludes_part_night_lamps_and_lamps_without_a_reading():
    at = datetime(2023, 5, 11, 1, 0, tzinfo=LOCAL)
    lamps = [
        lamp("1"), lamp("2"), lamp("3"), lamp("4"),
        lamp("5", part_night_off_from=time(23, 0), part_night_off_to=time(5, 0)),
        lamp("6", part_night_off_from=time(2, 0), part_night_off_to=time(4, 0)),  # on at 01:00
        lamp("7"),
    ]  # fmt: skip
    samples = {
        "SL-1": SampleFact(device_id="SL-1", active_power_w=50.0, light_state_pct=50.0),
        "SL-2": SampleFact(device_id="SL-2", active_power_w=4.0, light_state_pct=50.0),  # < 5 W
        "SL-3": SampleFact(device_id="SL-3", active_power_w=5.0, light_state_pct=50.0),  # = 5 W
        "SL-4": SampleFact(device_id="SL-4", active_power_w=0.0, light_state_pct=None),
        "SL-5": SampleFact(device_id="SL-5", active_power_w=0.0, light_state_pct=0.0),
        "SL-6": SampleFact(device_id="SL-6", active_power_w=98.0, light_state_pct=100.0),
    }
    v = k.lighting_rate(lamps, samples, at, k.RATE_DEFAULTS)
    # should be lit: 1, 2, 3, 4, 6 (5 part-night, 7 no reading); lit: 1, 3, 6.
    assert (v.numerator, v.denominator) == (3, 5)
    assert v.exclusions == ("5 (part-night)", "7 (no reading)")
    evening = k.lighting_rate(lamps, samples, at - timedelta(hours=4), k.RATE_DEFAULTS)
    assert evening.denominator == 6  # at 21:00 the part-night lamp 5 should be lit


def test_night_samples_are_21_00_the_evening_before_and_01_00():
    got = k.night_samples(DAY, k.RATE_DEFAULTS)
    assert got == [
        datetime(2023, 5, 9, 21, 0, tzinfo=LOCAL),
        datetime(2023, 5, 10, 1, 0, tzinfo=LOCAL),
    ]


def test_led_share_by_count_and_power_respects_retrofit_dates():
    lamps = [
        lamp("1", lamp_type="LED", rated_power_w=60.0, retrofit_on=date(2023, 6, 1),
             previous_lamp_type="HPS", previous_power_w=250.0),
        lamp("2", lamp_type="LED", rated_power_w=100.0),
        lamp("3", lamp_type="HPS", rated_power_w=150.0),
        lamp("4", lamp_type="LED", rated_power_w=90.0, retired_on=date(2023, 1, 1)),
    ]  # fmt: skip
    assert k.led_share(lamps, DAY, by_power=False).value == pytest.approx(100 / 3)
    assert k.led_share(lamps, DAY, by_power=True).value == pytest.approx(100 / 500 * 100)
    after = date(2023, 7, 1)
    assert k.led_share(lamps, after, by_power=False).value == pytest.approx(200 / 3)
    assert k.led_share(lamps, after, by_power=True).value == pytest.approx(160 / 310 * 100)
    assert k.led_share([], DAY, by_power=False).value is None


def seg(sid: str, **kw) -> SegmentFact:
    base = {"segment_id": sid, "district": "wenfeng", "road_name": "人民大道",
            "road_class": "trunk", "length_m": 500.0}  # fmt: skip
    return SegmentFact(**(base | kw))


def test_dark_segments_no_lamp_adjacent_outages_across_segments_and_low_lux():
    segments = [seg("A", next_segment_id="B"), seg("B"), seg("C", length_m=250.0),
                seg("D", measured_lux=12.0), seg("E", road_class="branch", measured_lux=12.0),
                seg("F", opened_on=date(2024, 1, 1))]  # fmt: skip
    long_ago = AT - timedelta(hours=30)
    lamps = [
        lamp("a1", segment_id="A", road_side="R", position_m=0),
        lamp("a2", segment_id="A", road_side="R", position_m=30),
        lamp("a3", segment_id="A", road_side="R", position_m=60),  # out, and b1 next: dark A
        lamp("b1", segment_id="B", road_side="R", position_m=0),
        lamp("b2", segment_id="B", road_side="L", position_m=30),  # out, alone on its side
        lamp("d1", segment_id="D"), lamp("e1", segment_id="E"),
    ]  # fmt: skip
    faults = [
        fault("SL-a3", long_ago),
        fault("SL-b1", long_ago),
        fault("SL-b2", long_ago),
        fault("SL-a1", AT - timedelta(hours=2)),
        fault("SL-a2", AT - timedelta(hours=2)),
    ]
    found = {
        d["segment_id"]: d for d in k.dark_segments(segments, lamps, faults, AT, k.DARK_DEFAULTS)
    }
    # A: a3 and b1 out > 24 h (a1, a2 out only 2 h); B: b1 is alone in B on side R;
    # C: no lamp; D: 12 lx on a trunk road (< 20); E: 12 lx on a branch road is enough.
    assert sorted(found) == ["A", "C", "D"]
    assert found["C"]["reasons"] == ["有路无灯 no lamp"] and found["C"]["length_km"] == 0.25
    assert found["A"]["reasons"][0].startswith("有灯不亮")


def dark_reference(segments, facilities, faults, at, config) -> list[str]:
    """The dark-segment walk without the shortcut for segments with no lamp out."""
    day = at.astimezone(k.LOCAL).date()
    lamps = [f for f in facilities if f.facility_type == "lamp" and k.in_service(f, day)]
    by_segment: dict[str, list[FacilityFact]] = {}
    for f in lamps:
        by_segment.setdefault(f.segment_id or "", []).append(f)
    since = at - timedelta(hours=float(config["outage_hours"]))
    index = k.FaultIndex(faults)
    out = {f.facility_id for f in lamps
           if any(a.opened_at <= since for a in index.open_at(f, at, k.DARK_RULES))}  # fmt: skip
    need = int(config["adjacent_lamps"])
    found = []
    for s in segments:
        if (s.opened_on and s.opened_on > day) or (s.closed_on and s.closed_on <= day):
            continue
        runs = k._side_runs(s, by_segment)
        floor = config["min_lux"].get(s.road_class)
        if (not by_segment.get(s.segment_id)
                or any(k._longest_out(r, out) >= need for r in runs)
                or (s.measured_lux is not None and floor is not None
                    and s.measured_lux < floor)):  # fmt: skip
            found.append(s.segment_id)
    return found


@settings(max_examples=200, deadline=None)
@given(
    lamps=st.lists(
        st.tuples(
            st.sampled_from("ABCD"),
            st.sampled_from("LR"),
            st.integers(0, 5),
            st.booleans(),
            st.sampled_from([None, 2, 30]),
        ),
        max_size=14,
    ),
    nxt=st.lists(st.sampled_from([None, "A", "B", "C", "D"]), min_size=4, max_size=4),
    need=st.integers(0, 3),
)
def test_dark_segments_equal_the_walk_over_every_segment(lamps, nxt, need):
    """Any lamps, sides, positions and outages over four linked segments: the open dark
    segments are those of the walk that runs every segment (the shortcut changes nothing)."""
    segments = [seg(sid, next_segment_id=n) for sid, n in zip("ABCD", nxt, strict=True)]
    facilities, faults = [], []
    for i, (sid, side, pos, lit_road, out_h) in enumerate(lamps):
        facilities.append(lamp(f"x{i}", segment_id=sid, road_side=side if lit_road else None,
                               position_m=pos * 10))  # fmt: skip
        if out_h is not None:
            faults.append(fault(f"SL-x{i}", AT - timedelta(hours=out_h)))
    config = k.DARK_DEFAULTS | {"adjacent_lamps": need}
    got = [d["segment_id"] for d in k.dark_segments(segments, facilities, faults, AT, config)]
    assert got == dark_reference(segments, facilities, faults, AT, config)


SEGMENTS_CSV = """路段编号,所属区县,道路名称,道路等级,路段长度(米),相邻下一路段
S1,文峰区,人民大道,主干路,800,S2
S2,文峰区,人民大道,主干路,"1,200",
S3,文峰区,光明路,胡同,300,
S4,北关区,红旗路,branch,0,
"""
FACILITIES_CSV = """设施编号,设施类型,所属区县,路段编号,道路侧,桩号位置(米),景观照明,光源类型,额定功率(W),单灯控制器编号
L1,灯具,文峰区,S1,右,0,否,LED,120,SL-1
L2,路灯,文峰区,S1,右,35,,HPS,250,SL-2
L3,灯具,文峰区,S1,右,70,是,LED,30,
L4,灯具,文峰区,S9,右,0,否,LED,120,
L5,灯具,文峰区,S1,右,0,否,,120,
P1,灯杆,文峰区,S1,右,0,否,,,
"""


def test_ledgers_to_kpis_on_the_database(conn):
    actor = audit.Actor("user:tester", "operator", "test")
    for name, text, created, bad in (
        ("lighting_segments", SEGMENTS_CSV, 2, [4, 5]),
        ("lighting_facilities", FACILITIES_CSV, 4, [5, 6]),
    ):
        spec = get_ledger(name)
        report = store.import_rows(conn, spec, files.read_csv(spec, text.encode()), actor)
        assert report.created == created and [line for line, _ in report.errors] == bad
    kpis = load_all()
    city = Scope("city", None)
    led = kpis["lighting.led_share"].compute(conn, DAY, city, {})
    assert (led.numerator, led.denominator) == (1, 2)  # L3 is landscape lighting
    power = kpis["lighting.led_share_power"].compute(conn, DAY, city, {})
    assert power.value == pytest.approx(120 / 370 * 100)
    dark = kpis["lighting.dark_segments_open"]
    assert dark.compute(conn, DAY, city, dict(dark.defaults)).value == 1  # S2 has no lamp
    km = kpis["lighting.dark_segments_km"].compute(conn, DAY, city, dict(dark.defaults))
    assert km.value == pytest.approx(1.2)
    intact = kpis["lighting.facility_intact_rate"]
    v = intact.compute(conn, DAY, city, dict(intact.defaults))
    assert v.value == pytest.approx(100.0) and v.denominator == DAY.day  # 10 daily snapshots
    assert kpis["lighting.led_share"].items(conn, DAY, city, {}) == [
        {"facility_id": "L2", "district": "wenfeng", "lamp_type": "HPS", "rated_power_w": 250.0}
    ]
    assert intact.items(conn, DAY, city, dict(intact.defaults)) == []
    conn.execute(
        "INSERT INTO alerts (rule_id, subject, device_id, kind, severity, opened_at, title)"
        " VALUES ('SL_LAMP_OUT', 'SL-1', 'SL-1', 'streetlight', 'alarm', %s, '灭灯')",
        (datetime(2023, 5, 10, 12, 0, tzinfo=LOCAL),),
    )
    assert intact.items(conn, DAY, city, dict(intact.defaults)) == [
        {"facility_id": "L1", "type": "lamp", "district": "wenfeng",
         "alarms": ["SL_LAMP_OUT"], "defect": None}
    ]  # fmt: skip
    month = intact.compute(conn, DAY, city, dict(intact.defaults))
    assert month.value == pytest.approx((9 * 100 + 50) / 10)  # 1 of 2 lamps out on the 10th
    rate = kpis["lighting.lighting_rate"]
    assert rate.compute(conn, DAY, city, dict(rate.defaults)).value is None  # no readings
    nowhere = Scope("huaxian", ("huaxian",))
    assert kpis["lighting.led_share"].compute(conn, DAY, nowhere, {}).value is None


def test_daily_snapshot_stores_the_lighting_kpis(conn):
    from urbanwatch.kpi import snapshot

    actor = audit.Actor("user:tester", "operator", "test")
    for name, text in (
        ("lighting_segments", SEGMENTS_CSV),
        ("lighting_facilities", FACILITIES_CSV),
    ):
        spec = get_ledger(name)
        store.import_rows(conn, spec, files.read_csv(spec, text.encode()), actor)
    keys = [k for k in load_all() if k.startswith("lighting.")]
    written = snapshot.snapshot_day(conn, date(2023, 5, 3), kpis=keys)
    assert written == len(keys) * (conn.execute("SELECT count(*) FROM districts").fetchone()[0] + 3)
    rows = dict(
        conn.execute(
            "SELECT kpi, value FROM kpi_daily WHERE scope = 'wenfeng' AND day = '2023-05-03'"
        ).fetchall()
    )
    assert rows["lighting.led_share"] == pytest.approx(50.0)
    assert rows["lighting.dark_segments_open"] == 1 and rows["lighting.lighting_rate"] is None
    assert rows["lighting.facility_intact_rate"] == pytest.approx(100.0)
