"""Inputs of the lighting KPIs (urbanwatch/kpi/lighting.py): the facility and road-segment
ledgers (015_lighting_water_ledgers), lamp alarms from `alerts`, and the lamps' readings at a
sampling instant.

The facts are frozen dataclasses, not pydantic models (validating 40,000 lamps per KPI cost
more than the KPI), and inside `kpi.facts_cache(conn)` (a report, a snapshot) the facility
and segment ledgers are read once for the city and each scope filtered from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import psycopg
from psycopg.rows import class_row

from urbanwatch.queries.kpi import _CACHES, Fact, _scoped, fact_rows


@dataclass(frozen=True, slots=True)
class FacilityFact(Fact):
    facility_id: str
    facility_type: str
    district: str
    segment_id: str | None = None
    road_side: str | None = None
    position_m: float | None = None
    lamp_type: str | None = None
    rated_power_w: float | None = None
    retrofit_on: date | None = None
    previous_lamp_type: str | None = None
    previous_power_w: float | None = None
    device_id: str | None = None
    circuit_id: str | None = None
    part_night_off_from: time | None = None
    part_night_off_to: time | None = None
    installed_on: date | None = None
    retired_on: date | None = None
    defect: str | None = None
    defect_found_on: date | None = None
    defect_repaired_on: date | None = None


@dataclass(frozen=True, slots=True)
class SegmentFact(Fact):
    segment_id: str
    district: str
    road_name: str
    road_class: str
    length_m: float
    next_segment_id: str | None = None
    opened_on: date | None = None
    closed_on: date | None = None
    measured_lux: float | None = None


@dataclass(frozen=True, slots=True)
class FaultFact(Fact):
    """A lamp alarm (severity ≥ alarm) on a device, or on a circuit (subject) when
    `device_id` is empty; `closed_at` is when it cleared or was resolved (None: still open)."""

    rule_id: str
    subject: str
    device_id: str | None
    opened_at: datetime
    closed_at: datetime | None


@dataclass(frozen=True, slots=True)
class SampleFact(Fact):
    device_id: str
    active_power_w: float | None
    light_state_pct: float | None


FACILITIES = """SELECT facility_id, facility_type, district, segment_id, road_side, position_m,
       lamp_type, rated_power_w, retrofit_on, previous_lamp_type, previous_power_w, device_id,
       circuit_id, part_night_off_from, part_night_off_to, installed_on, retired_on, defect,
       defect_found_on, defect_repaired_on
FROM lighting_facilities
WHERE NOT is_landscape AND (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s))
ORDER BY facility_id"""


def facilities(conn: psycopg.Connection, districts: Sequence[str] | None) -> list[FacilityFact]:
    """Functional facilities (landscape lighting left out, docs/domain.md §4.4)."""

    def fetch(wanted: Sequence[str] | None) -> list[FacilityFact]:
        return fact_rows(conn, FacilityFact, FACILITIES, {"districts": _list(wanted)})

    return _scoped(conn, "lighting_facilities", districts, fetch)


SEGMENTS = """SELECT segment_id, district, road_name, road_class, length_m, next_segment_id,
       opened_on, closed_on, measured_lux
FROM lighting_road_segments
WHERE %(districts)s::text[] IS NULL OR district = ANY(%(districts)s)
ORDER BY segment_id"""


def segments(conn: psycopg.Connection, districts: Sequence[str] | None) -> list[SegmentFact]:
    def fetch(wanted: Sequence[str] | None) -> list[SegmentFact]:
        return fact_rows(conn, SegmentFact, SEGMENTS, {"districts": _list(wanted)})

    return _scoped(conn, "lighting_segments", districts, fetch)


FAULTS = """SELECT rule_id, subject, device_id, opened_at,
       CASE WHEN cleared_at IS NULL THEN resolved_at
            WHEN resolved_at IS NULL THEN cleared_at
            ELSE least(cleared_at, resolved_at) END AS closed_at
FROM alerts
WHERE kind = 'streetlight' AND severity IN ('alarm', 'critical') AND opened_at < %(end)s
  AND coalesce(least(cleared_at, resolved_at), 'infinity') > %(start)s
ORDER BY opened_at"""


def faults(conn: psycopg.Connection, start: datetime, end: datetime) -> list[FaultFact]:
    """Lamp alarms open at some instant of [start, end)."""
    return fact_rows(conn, FaultFact, FAULTS, {"start": start, "end": end})


SAMPLES = """SELECT DISTINCT ON (device_id) device_id, active_power_w, light_state_pct
FROM streetlight_readings
WHERE device_id = ANY(%(devices)s) AND ts <= %(at)s AND ts > %(since)s
ORDER BY device_id, ts DESC"""


# Every streetlight's latest reading in the window: the ts range alone (its BRIN), no list of
# 40,000 device ids to plan and probe one by one.
SAMPLES_ALL = """SELECT DISTINCT ON (device_id) device_id, active_power_w, light_state_pct
FROM streetlight_readings
WHERE ts <= %(at)s AND ts > %(since)s
ORDER BY device_id, ts DESC"""


def samples(
    conn: psycopg.Connection, devices: Sequence[str], at: datetime, lookback: timedelta
) -> dict[str, SampleFact]:
    """Each device's latest reading in (at − lookback, at]. Inside `kpi.facts_cache` the
    city's lamps are sampled once per instant and each scope's taken from them."""
    cache = _CACHES.get(conn)
    if cache is None:
        return _samples(conn, devices, at, lookback)
    key = ("lighting_samples", at, lookback)
    if key not in cache:
        params = {"at": at, "since": at - lookback}
        cache[key] = [{s.device_id: s for s in fact_rows(conn, SampleFact, SAMPLES_ALL, params)}]
    (found,) = cache[key]
    return {d: found[d] for d in devices if d in found}


def _samples(
    conn: psycopg.Connection, devices: Sequence[str], at: datetime, lookback: timedelta
) -> dict[str, SampleFact]:
    params = {"devices": list(devices), "at": at, "since": at - lookback}
    with conn.cursor(row_factory=class_row(SampleFact)) as cur:
        return {s.device_id: s for s in cur.execute(SAMPLES, params)}


def _list(districts: Sequence[str] | None) -> list[str] | None:
    return None if districts is None else list(districts)
