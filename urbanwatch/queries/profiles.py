"""The expected flow and pressure of a water meter (docs/domain.md §5.6, docs/alerts.md
"Expected flow and pressure"): WS_FLOW_ANOMALY's Q_expected and σ_slot, WS_PRESSURE_DROP's expected
pressure.

A slot is a weekday and a 15-min quarter of the day in local time (Asia/Shanghai, no
daylight saving): `week_slot` 0 is Monday 00:00-00:15 local, 671 Sunday 23:45-24:00. A
slot's sample is the mean of the meter's readings in that quarter; its expected value is
the median of its samples, σ is MAD_TO_SIGMA × their median absolute deviation. Each field
(flow, pressure) takes the first basis that has at least 2 samples:

  1. `weekday_slot_4w`: the same weekday and quarter in each of the last 4 weeks;
  2. `slot_7d`: the same quarter on each of the last 7 days, any weekday;
  3. `hour_7d`: the hourly profile (queries/alerts.hourly_profiles: the same hour over the
     last 7 days, any count of days).

`<field>_basis` names the basis in the profile, and so in the alert's detail.

Cost: a refresh reads only the quarters the next hours need (from BEHIND_S before to
AHEAD_S after `now`) on the days back they come from (4 weeks, 7 days: 10 windows of 3 h),
from the 15-min rollup (migration 033) below its watermark and from the raw readings above
it, not 4 weeks of every quarter. A reading outside that span (a replay, a meter's late
buffer) gets the hourly profile.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import psycopg

from urbanwatch.queries.alerts import MAD_TO_SIGMA, hourly_profiles
from urbanwatch.queries.meta import get_storage

LOCAL_OFFSET_S = 8 * 3600  # Asia/Shanghai, no daylight saving (as sun.py and evaluate.py)
SLOT_S = 900
DAY_SLOTS = 86_400 // SLOT_S  # 96
WEEK_SLOTS = 7 * DAY_SLOTS  # 672
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)
WEEKS = 4  # docs/domain.md §5.6: the last 4 weeks
FALLBACK_DAYS = 7
MIN_SAMPLES = 2  # fewer: the next basis (and σ needs 2)
# The span of slots a refresh covers around `now`: readings a little late, and the slots
# until the next refreshes (alerts/service.py refreshes every 15 min; 2 h ahead survives
# several failed refreshes before readings fall back to the hourly profile).
BEHIND_S = 3600
AHEAD_S = 2 * 3600
FIELDS = ("flow_m3_h", "pressure_mpa")
WEEKDAY_SLOT, SLOT_7D, HOUR_7D = "weekday_slot_4w", "slot_7d", "hour_7d"


def week_slot(ts: float) -> int:
    """Weekday (Monday 0) × 96 + the 15-min quarter of local time, for epoch seconds `ts`."""
    days, seconds = divmod(int(ts // 1) + LOCAL_OFFSET_S, 86_400)
    return (days + EPOCH_WEEKDAY) % 7 * DAY_SLOTS + seconds // SLOT_S


def utc_hour_of_slot(slot: int) -> int:
    """The UTC hour of day a local slot falls in (the hourly profile is keyed by it)."""
    return (slot % DAY_SLOTS // 4 - LOCAL_OFFSET_S // 3600) % 24


Stats = Mapping[str, float]  # flow_m3_h, flow_m3_h_sd, pressure_mpa, ... and the counts n_X


@dataclass(frozen=True)
class Profiles:
    """(meter, week slot) -> the profile of the slots a refresh covers; the hourly profile
    (keyed by UTC hour) for any other reading."""

    slots: dict[tuple[str, int], dict[str, float | str]] = field(default_factory=dict)
    hourly: dict[tuple[str, int], dict[str, float | str]] = field(default_factory=dict)

    def get(self, device_id: str, ts: float) -> dict[str, float | str] | None:
        found = self.slots.get((device_id, week_slot(ts)))
        if found is not None:
            return found
        return self.hourly.get((device_id, int(ts // 3600) % 24))


def choose(
    weekly: Stats | None, daily: Stats | None, hourly: Mapping[str, float | str] | None
) -> dict[str, float | str]:
    """One slot's profile: per field, the first basis with MIN_SAMPLES samples, else the
    hourly profile's values; `<field>_basis` says which."""
    out: dict[str, float | str] = {}
    for name in FIELDS:
        for basis, stats in ((WEEKDAY_SLOT, weekly), (SLOT_7D, daily)):
            if stats is not None and stats.get(f"n_{name}", 0) >= MIN_SAMPLES:
                out[name] = stats[name]
                out[f"{name}_sd"] = stats[f"{name}_sd"]
                out[f"{name}_basis"] = basis
                break
        else:
            if hourly is not None and name in hourly:
                out[name] = hourly[name]
                if f"{name}_sd" in hourly:
                    out[f"{name}_sd"] = hourly[f"{name}_sd"]
                out[f"{name}_basis"] = HOUR_7D
    return out


def windows(now: datetime) -> list[tuple[int, datetime, datetime]]:
    """(days back, start, end) of the past spans a refresh at `now` reads: the covered span
    moved back 7, 14, 21, 28 days (same weekday) and 1..7 days (any weekday)."""
    start, end = covered_span(now)
    days = sorted({7 * w for w in range(1, WEEKS + 1)} | set(range(1, FALLBACK_DAYS + 1)))
    return [(d, start - timedelta(days=d), end - timedelta(days=d)) for d in days]


def covered_span(now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the slots a refresh at `now` covers, on quarter boundaries."""
    ts = now.timestamp()
    start = ts - ts % SLOT_S - BEHIND_S
    return datetime.fromtimestamp(start, now.tzinfo), datetime.fromtimestamp(
        start + BEHIND_S + AHEAD_S, now.tzinfo
    )


# The mean flow and pressure of each meter's quarters in the windows (10 of 3 h), from the
# 15-min rollup (migration 033) where it is materialized, else from the raw readings: {where}
# ORs the windows' ranges so the planner bitmap-ORs the index ranges. At city scale (1,000
# meters at 1 a minute, bench/flow_profiles.py) that is 120 k quarters, or 1.8 M readings.
# The medians and deviations are taken in Python: in SQL (percentile_cont, a self-join for
# the deviations) they took longer than the scan.
FROM_ROLLUP = """SELECT device_id, extract(epoch FROM bucket)::bigint, avg_flow_m3_h,
       avg_pressure_mpa
FROM {rollup} WHERE {where}"""
FROM_READINGS = """SELECT device_id,
       extract(epoch FROM date_bin(INTERVAL '15 minutes', ts, TIMESTAMPTZ 'epoch'))::bigint,
       avg(flow_m3_h), avg(pressure_mpa)
FROM watermeter_readings WHERE {where}
GROUP BY 1, 2"""
WATERMARK = "SELECT upto FROM rollup_watermarks WHERE kind = 'watermeter'"
# For this query only (SET LOCAL: to the end of the transaction). The planner's estimate of
# the windows' rows is high, which made PostgreSQL JIT-compile it (2.0 s of 3.2 s on the
# bench's city); and its sort spilled to disk.
SESSION = ("SET LOCAL jit = off", "SET LOCAL work_mem = '64MB'")


def quarters_query(
    conn: psycopg.Connection, spans: list[tuple[int, datetime, datetime]]
) -> tuple[str, dict[str, object]]:
    """The query of the windows' quarters: on TimescaleDB its real-time aggregate; on plain
    storage the rollup below the watermark and the readings above it."""
    params: dict[str, object] = {}
    for i, (_, lo, hi) in enumerate(spans):
        params[f"lo{i}"], params[f"hi{i}"] = lo, hi
    if get_storage(conn) == "timescale":
        rolled, raw, rollup = list(range(len(spans))), [], "watermeter_quarter"
    else:
        row = conn.execute(WATERMARK).fetchone()
        upto = row[0] if row else None
        rolled = [i for i, s in enumerate(spans) if upto is not None and s[2] <= upto]
        raw = [i for i in range(len(spans)) if i not in rolled]
        rollup = "watermeter_quarter_data"
    parts = []
    if rolled:
        where = " OR ".join(f"(bucket >= %(lo{i})s AND bucket < %(hi{i})s)" for i in rolled)
        parts.append(FROM_ROLLUP.format(rollup=rollup, where=where))
    if raw:
        where = " OR ".join(f"(ts >= %(lo{i})s AND ts < %(hi{i})s)" for i in raw)
        parts.append(FROM_READINGS.format(where=where))
    return " UNION ALL ".join(parts), params


def robust(values: list[float]) -> tuple[float, float]:
    """Median and σ = MAD_TO_SIGMA × the median absolute deviation."""
    mid = statistics.median(values)
    return mid, MAD_TO_SIGMA * statistics.median([abs(v - mid) for v in values])


def slot_stats(
    conn: psycopg.Connection, now: datetime
) -> dict[tuple[str, str, int], dict[str, float]]:
    """(meter, 'w', week slot) and (meter, 'd', quarter of the day) -> median, σ and sample
    count (n_X) of flow and pressure over the windows of a refresh at `now`."""
    with conn.transaction():
        for setting in SESSION:
            conn.execute(setting)
        query, params = quarters_query(conn, windows(now))
        rows = conn.execute(query, params).fetchall()
    start = covered_span(now)[0].timestamp()
    samples: dict[tuple[str, str, int], tuple[list[float], list[float]]] = {}
    for device_id, quarter, flow, pressure in rows:
        days_back = math.ceil((start - quarter) / 86_400)  # windows are whole days apart
        slot = week_slot(quarter)
        keys = []
        if days_back % 7 == 0:
            keys.append((device_id, "w", slot))
        if days_back <= FALLBACK_DAYS:
            keys.append((device_id, "d", slot % DAY_SLOTS))
        for key in keys:
            flows, pressures = samples.setdefault(key, ([], []))
            if flow is not None:
                flows.append(flow)
            if pressure is not None:
                pressures.append(pressure)
    out: dict[tuple[str, str, int], dict[str, float]] = {}
    for key, series in samples.items():
        stats = out[key] = {}
        for name, values in zip(FIELDS, series, strict=True):
            stats[f"n_{name}"] = len(values)
            if values:
                stats[name], stats[f"{name}_sd"] = robust(values)
    return out


def load_profiles(conn: psycopg.Connection, now: datetime) -> Profiles:
    """The profiles a refresh at `now` gives: every covered slot of every meter with any
    history (slot_stats, then the hourly profile), and the hourly profile for the rest."""
    stats = slot_stats(conn, now)
    hourly: dict[tuple[str, int], dict[str, float | str]] = {}
    for key, values in hourly_profiles(conn, now).items():
        hourly[key] = {**values, **{f"{f}_basis": HOUR_7D for f in FIELDS if f in values}}
    meters = {d for d, _, _ in stats} | {d for d, _ in hourly}
    start, end = covered_span(now)
    slots: dict[tuple[str, int], dict[str, float | str]] = {}
    for ts in range(int(start.timestamp()), int(end.timestamp()), SLOT_S):
        slot = week_slot(ts)
        for meter in meters:
            profile = choose(
                stats.get((meter, "w", slot)),
                stats.get((meter, "d", slot % DAY_SLOTS)),
                hourly.get((meter, utc_hour_of_slot(slot))),
            )
            if profile:
                slots[(meter, slot)] = profile
    return Profiles(slots, hourly)
