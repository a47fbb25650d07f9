"""What the group detectors read (docs/alerts.md "Group detectors"): the registry's groups
(circuits, segments, DMAs, gauges, with locations), the unresolved alerts a restarted engine
seeds them from, and the nightly minimum night flow per DMA (migration 016)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

SITES = """SELECT device_id, kind, district, lat, lon, attrs FROM devices
           WHERE status NOT IN ('planned', 'retired')
             AND kind IN ('streetlight', 'watermeter', 'waterlog')"""
UNRESOLVED = """SELECT rule_id, subject, device_id, district, opened_at, active, detail
                FROM alerts WHERE status <> 'resolved' AND rule_id = ANY(%s) ORDER BY id"""


def sites(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    """(device_id, kind, district, lat, lon, attrs) of the devices the detectors group."""
    return conn.execute(SITES).fetchall()


LEDGER_PLACES = """SELECT device_id, segment_id, position_m FROM lighting_facilities
                   WHERE facility_type = 'lamp' AND device_id IS NOT NULL
                     AND segment_id IS NOT NULL
                     AND (retired_on IS NULL OR retired_on > current_date)"""


def ledger_places(conn: psycopg.Connection) -> dict[str, tuple[str, float | None]]:
    """device -> (segment, metres along it) from the lighting ledger (migration 015) when
    the table exists: it places lamps better than the registry's attributes."""
    found = conn.execute("SELECT to_regclass('lighting_facilities')").fetchone()
    if not found or found[0] is None:
        return {}
    return {d: (seg, pos) for d, seg, pos in conn.execute(LEDGER_PLACES)}


def unresolved(conn: psycopg.Connection, rule_ids: list[str]) -> list[tuple[Any, ...]]:
    """(rule_id, subject, device_id, district, opened_at, active, detail) by id."""
    return conn.execute(UNRESOLVED, (rule_ids,)).fetchall()


# --- the night's flow per DMA (docs/domain.md §5.5) -------------------------------------------

NIGHT_BUCKETS = """
WITH meters AS (
    SELECT device_id, attrs ->> 'dma_id' AS dma_id,
           CASE WHEN attrs ->> 'meter_role' = 'outlet' THEN -1 ELSE 1 END AS sign
    FROM devices WHERE kind = 'watermeter' AND attrs ->> 'meter_role' IN ('inlet', 'outlet')
      AND status NOT IN ('planned', 'retired')
), buckets AS (
    SELECT m.dma_id, m.device_id, m.sign,
           to_timestamp(floor(extract(epoch FROM r.ts) / 900) * 900) AS bucket,
           avg(r.flow_m3_h) AS flow
    FROM watermeter_readings r JOIN meters m USING (device_id)
    WHERE r.ts >= %(start)s AND r.ts < %(end)s AND r.flow_m3_h IS NOT NULL
    GROUP BY 1, 2, 3, 4
)
SELECT dma_id, bucket, sum(sign * flow) AS net, count(*) AS meters
FROM buckets GROUP BY dma_id, bucket ORDER BY dma_id, bucket"""
INLETS = """SELECT attrs ->> 'dma_id', count(*) FILTER (WHERE attrs ->> 'meter_role'
                   IN ('inlet', 'outlet')),
                   count(*) FILTER (WHERE attrs ->> 'meter_role' = 'customer')
            FROM devices WHERE kind = 'watermeter' AND attrs ? 'dma_id'
              AND status NOT IN ('planned', 'retired') GROUP BY 1"""
UPSERT_NIGHT = """INSERT INTO dma_night_flow (dma_id, night, method, mnf_m3_h, mnf_at,
                      completeness, valid, baseline_m3_h, baseline_nights, adf_m3_h,
                      properties, rules, computed_at)
                  VALUES (%(dma_id)s, %(night)s, %(method)s, %(mnf)s, %(mnf_at)s,
                          %(completeness)s, %(valid)s, %(baseline)s, %(baseline_nights)s,
                          %(adf)s, %(properties)s, %(rules)s, now())
                  ON CONFLICT (dma_id, night) DO UPDATE SET method = excluded.method,
                      mnf_m3_h = excluded.mnf_m3_h, mnf_at = excluded.mnf_at,
                      completeness = excluded.completeness, valid = excluded.valid,
                      baseline_m3_h = excluded.baseline_m3_h,
                      baseline_nights = excluded.baseline_nights, adf_m3_h = excluded.adf_m3_h,
                      properties = excluded.properties, rules = excluded.rules,
                      computed_at = now()"""


def net_buckets(
    conn: psycopg.Connection, start: datetime, end: datetime
) -> list[tuple[str, datetime, float, int]]:
    """(dma, 15-min bucket, net inflow m³/h, meters that reported) in [start, end)."""
    rows = conn.execute(NIGHT_BUCKETS, {"start": start, "end": end}).fetchall()
    return [(d, b, float(n), int(m)) for d, b, n, m in rows]


def dma_meters(conn: psycopg.Connection) -> dict[str, tuple[int, int]]:
    """dma -> (inlet and outlet meters, customer meters = properties)."""
    return {d: (int(i), int(c)) for d, i, c in conn.execute(INLETS)}


def previous_nights(conn: psycopg.Connection, night: date, days: int) -> list[tuple[Any, ...]]:
    """(dma, night, mnf, valid, baseline, adf, flagged) of the `days` nights before `night`;
    flagged: DMA_MNF_STEP or _RISE fired that night (kept out of later baselines)."""
    return conn.execute(
        """SELECT dma_id, night, mnf_m3_h, valid, baseline_m3_h, adf_m3_h,
                  coalesce((rules -> 'DMA_MNF_STEP' ->> 'fired')::boolean, false)
                  OR coalesce((rules -> 'DMA_MNF_RISE' ->> 'fired')::boolean, false)
           FROM dma_night_flow WHERE night < %s AND night >= %s::date - %s
           ORDER BY dma_id, night""",
        (night, night, days),
    ).fetchall()


def save_night(conn: psycopg.Connection, row: dict[str, Any]) -> None:
    conn.execute(UPSERT_NIGHT, {**row, "rules": Jsonb(row["rules"])})


def latest_night(conn: psycopg.Connection, dma_id: str) -> date | None:
    found = conn.execute(
        "SELECT max(night) FROM dma_night_flow WHERE dma_id = %s", (dma_id,)
    ).fetchone()
    return found[0] if found else None


# --- the nightly timer's runs (migration 024) ------------------------------------------------

DAILY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtext('urbanwatch-alerts-daily'))"


def try_daily_lock(conn: psycopg.Connection) -> bool:
    """The daily run's lock for this transaction; False when another engine holds it."""
    row = conn.execute(DAILY_LOCK).fetchone()
    return bool(row and row[0])


def last_daily_run(conn: psycopg.Connection) -> date | None:
    """The newest night the timer evaluated, or None before its first run."""
    row = conn.execute("SELECT max(night) FROM dma_daily_runs").fetchone()
    return row[0] if row else None


def save_daily_run(conn: psycopg.Connection, night: date, dmas: int, done_by: str) -> None:
    conn.execute(
        "INSERT INTO dma_daily_runs (night, dmas, done_by) VALUES (%s, %s, %s)",
        (night, dmas, done_by),
    )
