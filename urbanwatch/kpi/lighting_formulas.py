"""Street-lighting KPI formulas (docs/domain.md §4.4–4.5, proposed definitions: §7.5), pure: no
I/O, no clock. The shell that gathers their inputs and registers the KPIs is kpi/lighting.py.

Functional facilities only (landscape lighting left out). A facility is intact at an instant
when no lamp alarm (severity ≥ alarm) is open on its controller or its circuit and it has no
open inspection defect. 设施完好率 is the daily 22:00 snapshot; the monthly figure is the mean
of the month's daily snapshots to the day. 亮灯率 samples the night ending on the day at
21:00 (the evening before) and 01:00 local; lamps off under an approved part-night schedule at
a sample are out of its denominator, lamps without a reading near it too (listed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from urbanwatch.kpi.base import KpiValue, ratio
from urbanwatch.queries import lighting_ledger as q

LOCAL = ZoneInfo("Asia/Shanghai")
INTACT_DEFAULTS: dict[str, Any] = {"snapshot_at": "22:00"}  # §4.5 [P]
RATE_DEFAULTS: dict[str, Any] = {
    "samples": ["21:00", "01:00"],  # §4.5 [P]
    "lit_fraction": 0.10,  # lit when P ≥ 0.10·Pr·d (§4.5)
    "lookback_min": 70,  # a dark lamp reports hourly (§4.2): its last reading within 70 min
}
# Dark segments: ≥ 2 adjacent lamps out for > 24 h (有灯不亮); CJJ 45-2006 lower average
# illuminance by class (照度不达标) [S*, §4.1].
DARK_DEFAULTS: dict[str, Any] = {
    "outage_hours": 24,
    "adjacent_lamps": 2,
    "min_lux": {"expressway": 20, "trunk": 20, "secondary": 15, "branch": 8, "residential": 8},
}
DARK_RULES = ("SL_LAMP_OUT", "SL_SUPPLY_LOSS", "SL_CIRCUIT_SUPPLY_LOSS")


def in_service(f: q.FacilityFact, day: date) -> bool:
    return (f.installed_on is None or f.installed_on <= day) and (
        f.retired_on is None or f.retired_on > day
    )


class FaultIndex:
    """Lamp alarms by controller and by circuit, so a city's 40,000 lamps find theirs in O(1)."""

    def __init__(self, faults: Sequence[q.FaultFact]) -> None:
        self.by_device: dict[str, list[q.FaultFact]] = {}
        self.by_circuit: dict[str, list[q.FaultFact]] = {}
        for a in faults:
            if a.device_id is not None:
                self.by_device.setdefault(a.device_id, []).append(a)
            else:
                self.by_circuit.setdefault(a.subject, []).append(a)

    def open_at(
        self, f: q.FacilityFact, at: datetime, rules: Sequence[str] = ()
    ) -> list[q.FaultFact]:
        """The alarms open at `at` on f's controller, or on its circuit."""
        mine = self.by_device.get(f.device_id or "", []) if f.device_id else []
        if f.circuit_id:
            mine = mine + self.by_circuit.get(f.circuit_id, [])
        return [
            a
            for a in mine
            if a.opened_at <= at and (a.closed_at is None or a.closed_at > at)
            if not rules or a.rule_id in rules
        ]


def has_open_defect(f: q.FacilityFact, day: date) -> bool:
    found = f.defect_found_on is not None and f.defect_found_on <= day
    return found and (f.defect_repaired_on is None or f.defect_repaired_on > day)


def intact_rate(
    facilities: Sequence[q.FacilityFact],
    faults: Sequence[q.FaultFact],
    at: datetime,
    *,
    lamps_only: bool,
) -> KpiValue:
    """N_intact(at) / N_functional facilities in service at `at`."""
    day = at.astimezone(LOCAL).date()
    counted = [f for f in facilities if in_service(f, day)]
    if lamps_only:
        counted = [f for f in counted if f.facility_type == "lamp"]
    index = FaultIndex(faults)
    broken = [f for f in counted if index.open_at(f, at) or has_open_defect(f, day)]
    return ratio(len(counted) - len(broken), len(counted), exclusions=[])


def monthly_mean(days: Sequence[KpiValue]) -> KpiValue:
    """Mean of the daily values that have data; no data when none has."""
    values = [d.value for d in days if d.value is not None]
    if not values:
        return KpiValue(None)
    return KpiValue(sum(values) / len(values), sum(values), float(len(values)),
                    note=f"mean of {len(values)} daily snapshots")  # fmt: skip


def part_night_off(f: q.FacilityFact, local: time) -> bool:
    start, end = f.part_night_off_from, f.part_night_off_to
    if start is None or end is None:
        return False
    return start <= local < end if start <= end else (local >= start or local < end)


def lighting_rate(
    lamps: Sequence[q.FacilityFact],
    samples: Mapping[str, q.SampleFact],
    at: datetime,
    config: Mapping[str, Any],
) -> KpiValue:
    """N_lit / N_should_be_lit at one instant (21:00 and 01:00 lie in the night all year at
    Anyang, so every lamp in service is scheduled on unless part-night)."""
    local, day = at.astimezone(LOCAL).time(), at.astimezone(LOCAL).date()
    should, lit, excluded = 0, 0, []
    for f in lamps:
        if f.facility_type != "lamp" or not in_service(f, day):
            continue
        if part_night_off(f, local):
            excluded.append(f"{f.facility_id} (part-night)")
            continue
        s = samples.get(f.device_id or "")
        if s is None or s.active_power_w is None:
            excluded.append(f"{f.facility_id} (no reading)")
            continue
        should += 1
        dim = 1.0 if s.light_state_pct is None else s.light_state_pct / 100.0
        rated = f.rated_power_w or 0.0
        if dim > 0 and s.active_power_w >= float(config["lit_fraction"]) * rated * dim:
            lit += 1
    return ratio(lit, should, exclusions=excluded, defaults=config)


def lamp_as_of(f: q.FacilityFact, day: date) -> tuple[str | None, float | None]:
    """Lamp type and rated power on `day`: before the retrofit date, the previous lamp's."""
    if f.retrofit_on is not None and day < f.retrofit_on and f.previous_lamp_type:
        return f.previous_lamp_type, f.previous_power_w or f.rated_power_w
    return f.lamp_type, f.rated_power_w


def led_share(lamps: Sequence[q.FacilityFact], day: date, *, by_power: bool) -> KpiValue:
    lamps = [f for f in lamps if f.facility_type == "lamp" and in_service(f, day)]
    kinds = [lamp_as_of(f, day) for f in lamps]
    if by_power:
        total = sum(p or 0.0 for _, p in kinds)
        return ratio(sum(p or 0.0 for t, p in kinds if t == "LED"), total)
    return ratio(sum(1 for t, _ in kinds if t == "LED"), len(kinds))


def _side_runs(
    seg: q.SegmentFact, by_segment: Mapping[str, list[q.FacilityFact]]
) -> list[list[q.FacilityFact]]:
    """Per road side, the segment's lamps by position, then the next segment's first lamp on
    that side (adjacent across the segment end)."""
    mine = by_segment.get(seg.segment_id, [])
    after = by_segment.get(seg.next_segment_id or "", [])
    runs = []
    for side in sorted({f.road_side or "" for f in mine}):
        lamps = sorted((f for f in mine if (f.road_side or "") == side),
                       key=lambda f: (f.position_m or 0.0, f.facility_id))  # fmt: skip
        nxt = sorted((f for f in after if (f.road_side or "") == side),
                     key=lambda f: (f.position_m or 0.0, f.facility_id))  # fmt: skip
        runs.append(lamps + nxt[:1])
    return runs


def dark_segments(
    segments: Sequence[q.SegmentFact],
    facilities: Sequence[q.FacilityFact],
    faults: Sequence[q.FaultFact],
    at: datetime,
    config: Mapping[str, Any],
) -> list[dict[str, Any]]:
    """The open dark segments at `at`, each with why (§4.5 a/b/c)."""
    day = at.astimezone(LOCAL).date()
    lamps = [f for f in facilities if f.facility_type == "lamp" and in_service(f, day)]
    by_segment: dict[str, list[q.FacilityFact]] = {}
    for f in lamps:
        by_segment.setdefault(f.segment_id or "", []).append(f)
    since = at - timedelta(hours=float(config["outage_hours"]))
    index = FaultIndex(faults)
    out_ids = {
        f.facility_id
        for f in lamps
        if any(a.opened_at <= since for a in index.open_at(f, at, DARK_RULES))
    }
    need = int(config["adjacent_lamps"])
    # Only a segment with an out lamp, or whose next segment has one, can have a run of out
    # lamps: the others skip the per-side sorting (the same answer; most segments at city
    # scale have none out).
    with_out = {f.segment_id or "" for f in lamps if f.facility_id in out_ids}
    dark = []
    for seg in segments:
        if (seg.opened_on and seg.opened_on > day) or (seg.closed_on and seg.closed_on <= day):
            continue
        reasons = []
        if not by_segment.get(seg.segment_id):
            reasons.append("有路无灯 no lamp")
        elif (
            need <= 0 or seg.segment_id in with_out or (seg.next_segment_id or "") in with_out
        ) and any(_longest_out(run, out_ids) >= need for run in _side_runs(seg, by_segment)):
            reasons.append(f"有灯不亮 ≥{need} adjacent lamps out > {config['outage_hours']} h")
        floor = config["min_lux"].get(seg.road_class)
        if seg.measured_lux is not None and floor is not None and seg.measured_lux < floor:
            reasons.append(f"照度不达标 {seg.measured_lux} < {floor} lx")
        if reasons:
            dark.append({"segment_id": seg.segment_id, "district": seg.district,
                         "road_name": seg.road_name, "length_km": seg.length_m / 1000.0,
                         "reasons": reasons})  # fmt: skip
    return dark


def _longest_out(run: Sequence[q.FacilityFact], out_ids: set[str]) -> int:
    best = current = 0
    for f in run:
        current = current + 1 if f.facility_id in out_ids else 0
        best = max(best, current)
    return best


def local_at(day: date, clock: str) -> datetime:
    h, m = (int(x) for x in clock.split(":"))
    return datetime.combine(day, time(h, m), LOCAL)


def night_samples(as_of: date, config: Mapping[str, Any]) -> list[datetime]:
    """The night ending on as_of: evening samples on the day before, after-midnight on as_of."""
    out = []
    for clock in config["samples"]:
        at = local_at(as_of, clock)
        out.append(at - timedelta(days=1) if at.hour >= 12 else at)
    return out
