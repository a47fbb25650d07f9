"""Inputs of the water KPIs (urbanwatch/kpi/water.py): the DMA ledger, the volumes its meters
measured over a window, the imported volumes and the supply years (015_lighting_water_ledgers).

A meter's volume over [start, end] is its net register (forward − reverse) at the last
reading at or before `end` minus the one at the first reading at or after `start`, each
found through the (device_id, ts) index, so a year costs two index probes per meter.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

import psycopg
from psycopg.rows import class_row
from pydantic import BaseModel


class DmaFact(BaseModel):
    dma_id: str
    district: str
    district_class: str
    pipe_km_dn75: float | None
    mains_km: float | None
    service_connections: int | None
    private_pipe_km: float | None
    avg_pressure_m: float | None


class MeterVolume(BaseModel):
    meter_id: str
    device_id: str
    dma_id: str
    role: str
    billed: bool
    volume_m3: float | None  # None: fewer than two readings in the window
    first_ts: datetime | None
    last_ts: datetime | None
    # A reading within a day before the window's start (after its end): the register can be
    # interpolated at the boundary itself.
    before_start: bool = False
    after_end: bool = False


class VolumeFact(BaseModel):
    dma_id: str
    period_start: date
    period_end: date
    supply_m3: float | None
    billed_m3: float | None
    free_m3: float | None
    household_m3: float | None
    apparent_loss_m3: float | None


class SupplyYearFact(BaseModel):
    district: str
    year: int
    plant_outlet_pressure_mpa: float | None
    max_frost_depth_m: float | None
    pipe_km_dn75: float | None


class PressureFact(BaseModel):
    dma_id: str
    district: str
    in_band: int
    samples: int


DMAS = """SELECT m.dma_id, m.district, d.district_class, m.pipe_km_dn75, m.mains_km,
       m.service_connections, m.private_pipe_km, m.avg_pressure_m
FROM water_dmas m JOIN districts d ON d.code = m.district
WHERE %(districts)s::text[] IS NULL OR m.district = ANY(%(districts)s)
ORDER BY m.dma_id"""


def dmas(conn: psycopg.Connection, districts: Sequence[str] | None) -> list[DmaFact]:
    with conn.cursor(row_factory=class_row(DmaFact)) as cur:
        return cur.execute(DMAS, {"districts": _list(districts)}).fetchall()


METER_VOLUMES = """SELECT w.meter_id, coalesce(w.device_id, w.meter_id) AS device_id, w.dma_id,
       w.role, w.billed, last.reg - first.reg AS volume_m3,
       first.ts AS first_ts, last.ts AS last_ts,
       EXISTS (SELECT FROM watermeter_readings r
               WHERE r.device_id = coalesce(w.device_id, w.meter_id)
                 AND r.ts < %(start)s AND r.ts >= %(start)s - interval '1 day') AS before_start,
       EXISTS (SELECT FROM watermeter_readings r
               WHERE r.device_id = coalesce(w.device_id, w.meter_id)
                 AND r.ts > %(end)s AND r.ts <= %(end)s + interval '1 day') AS after_end
FROM water_meters w
JOIN water_dmas m ON m.dma_id = w.dma_id
LEFT JOIN LATERAL (
    SELECT r.ts, coalesce(r.fwd_total_m3, 0) - coalesce(r.rev_total_m3, 0) AS reg
    FROM watermeter_readings r
    WHERE r.device_id = coalesce(w.device_id, w.meter_id) AND r.ts >= %(start)s
      AND r.ts <= %(end)s AND r.fwd_total_m3 IS NOT NULL
    ORDER BY r.ts LIMIT 1) first ON true
LEFT JOIN LATERAL (
    SELECT r.ts, coalesce(r.fwd_total_m3, 0) - coalesce(r.rev_total_m3, 0) AS reg
    FROM watermeter_readings r
    WHERE r.device_id = coalesce(w.device_id, w.meter_id) AND r.ts >= %(start)s
      AND r.ts <= %(end)s AND r.fwd_total_m3 IS NOT NULL
    ORDER BY r.ts DESC LIMIT 1) last ON last.ts > first.ts
WHERE w.role <> 'pressure'
  AND (%(districts)s::text[] IS NULL OR m.district = ANY(%(districts)s))
ORDER BY w.meter_id"""


def meter_volumes(
    conn: psycopg.Connection, districts: Sequence[str] | None, start: datetime, end: datetime
) -> list[MeterVolume]:
    """Each flow meter's net volume over [start, end] (None with fewer than two readings)."""
    params = {"districts": _list(districts), "start": start, "end": end}
    with conn.cursor(row_factory=class_row(MeterVolume)) as cur:
        return cur.execute(METER_VOLUMES, params).fetchall()


IMPORTED = """SELECT v.dma_id, v.period_start, v.period_end, v.supply_m3, v.billed_m3,
       v.free_m3, v.household_m3, v.apparent_loss_m3
FROM water_volumes v JOIN water_dmas m ON m.dma_id = v.dma_id
WHERE v.period_start >= %(first)s AND v.period_end <= %(last)s
  AND (%(districts)s::text[] IS NULL OR m.district = ANY(%(districts)s))
ORDER BY v.dma_id, v.period_start"""


def imported_volumes(
    conn: psycopg.Connection, districts: Sequence[str] | None, first: date, last: date
) -> list[VolumeFact]:
    """Imported volume rows whose period lies within [first, last] (days, inclusive)."""
    params = {"districts": _list(districts), "first": first, "last": last}
    with conn.cursor(row_factory=class_row(VolumeFact)) as cur:
        return cur.execute(IMPORTED, params).fetchall()


SUPPLY_YEARS = """SELECT district, year, plant_outlet_pressure_mpa, max_frost_depth_m,
       pipe_km_dn75
FROM water_supply_years
WHERE (%(districts)s::text[] IS NULL OR district = ANY(%(districts)s)) AND year <= %(year)s
ORDER BY district, year"""


def supply_years(
    conn: psycopg.Connection, districts: Sequence[str] | None, year: int
) -> dict[str, SupplyYearFact]:
    """Each district's supply year `year`, or its latest before (R3/R4 inputs change rarely)."""
    with conn.cursor(row_factory=class_row(SupplyYearFact)) as cur:
        rows = cur.execute(SUPPLY_YEARS, {"districts": _list(districts), "year": year})
        return {r.district: r for r in rows}  # ordered by year: the latest wins


PRESSURE = """SELECT w.dma_id, m.district,
       count(*) FILTER (WHERE r.pressure_mpa BETWEEN %(lo)s AND %(hi)s)::int AS in_band,
       count(*)::int AS samples
FROM water_meters w
JOIN water_dmas m ON m.dma_id = w.dma_id
JOIN watermeter_readings r ON r.device_id = coalesce(w.device_id, w.meter_id)
WHERE w.role = 'pressure' AND r.ts >= %(start)s AND r.ts < %(end)s
  AND r.pressure_mpa IS NOT NULL
  AND (%(districts)s::text[] IS NULL OR m.district = ANY(%(districts)s))
GROUP BY w.dma_id, m.district ORDER BY w.dma_id"""


def pressure_samples(
    conn: psycopg.Connection,
    districts: Sequence[str] | None,
    start: datetime,
    end: datetime,
    lo: float,
    hi: float,
) -> list[PressureFact]:
    params = {"districts": _list(districts), "start": start, "end": end, "lo": lo, "hi": hi}
    with conn.cursor(row_factory=class_row(PressureFact)) as cur:
        return cur.execute(PRESSURE, params).fetchall()


def _list(districts: Sequence[str] | None) -> list[str] | None:
    return None if districts is None else list(districts)


REGISTERS_AT = """SELECT p.device_id, p.at,
       CASE WHEN prev.ts = p.at OR next.ts IS NULL THEN prev.reg
            WHEN prev.ts IS NULL THEN next.reg
            ELSE prev.reg + (next.reg - prev.reg)
                 * extract(epoch FROM p.at - prev.ts) / extract(epoch FROM next.ts - prev.ts)
       END AS reg
FROM unnest(%(devices)s::text[], %(ats)s::timestamptz[]) AS p (device_id, at)
LEFT JOIN LATERAL (
    SELECT r.ts, coalesce(r.fwd_total_m3, 0) - coalesce(r.rev_total_m3, 0) AS reg
    FROM watermeter_readings r
    WHERE r.device_id = p.device_id AND r.ts <= p.at AND r.fwd_total_m3 IS NOT NULL
    ORDER BY r.ts DESC LIMIT 1) prev ON true
LEFT JOIN LATERAL (
    SELECT r.ts, coalesce(r.fwd_total_m3, 0) - coalesce(r.rev_total_m3, 0) AS reg
    FROM watermeter_readings r
    WHERE r.device_id = p.device_id AND r.ts >= p.at AND r.fwd_total_m3 IS NOT NULL
    ORDER BY r.ts LIMIT 1) next ON true"""


def registers_at(
    conn: psycopg.Connection, probes: Sequence[tuple[str, datetime]]
) -> dict[tuple[str, datetime], float | None]:
    """Each (device, instant)'s net register, interpolated linearly between the readings on
    either side (registers integrate flow, so a straight line is exact within a reading
    interval of constant flow and close otherwise)."""
    if not probes:
        return {}
    params = {"devices": [d for d, _ in probes], "ats": [t for _, t in probes]}
    rows = conn.execute(REGISTERS_AT, params).fetchall()
    return {(d, t): (None if reg is None else float(reg)) for d, t, reg in rows}
