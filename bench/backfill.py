"""A fast city backfill for the query and storage parts, generated inside PostgreSQL.

Generated server-side with `INSERT … SELECT generate_series`, one statement per kind, day
and slice of the fleet, in time order (as ingest would write it), so no Python process
spends the cores encoding rows (`urbanwatch simulate backfill` writes realistic physics,
at about a tenth of the speed). `jobs` backends write disjoint slices of the fleet at once.

After each day the database is brought to the state live operation would leave it in:
rollups materialized up to that day (TimescaleDB: the continuous aggregates' refresh;
plain: `urbanwatch_refresh_rollups`), and on TimescaleDB every chunk both complete and
older than 7 days compressed (the compression policy). Besides being faithful, this keeps
a city-scale run on disk: 90 uncompressed days of the whole city are ~54 GB of readings.

Cadences (docs/domain.md §2.2, §3.2, §4.2, §5.4): manholes heartbeat every 1, 2, 4, 6, 12
or 24 h (spread evenly over the fleet); streetlights every 15 min at night (18:00–06:00) and
60 min by day; waterlog devices every 5, 10, 15, 30 or 60 min; water meters every 15 min.
Full `city` scale is 30k manholes, 40k streetlights, 100 waterlog devices, 1k water meters:
about 2.75 M readings per day. `scale` multiplies the device counts.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from itertools import pairwise

import psycopg

from urbanwatch.kinds import KINDS
from urbanwatch.queries.meta import get_storage
from urbanwatch.queries.rollups import refresh_rollups, settle_after_bulk_load

CITY = {"manhole": 30_000, "streetlight": 40_000, "waterlog": 100, "watermeter": 1_000}
DISTRICTS = (
    *("wenfeng", "beiguan", "yindu", "longan", "gaoxin", "shifanqu"),
    *("linzhou", "anyangxian", "tangyin", "neihuang", "huaxian"),
)

DEVICES_SQL = """INSERT INTO devices (device_id, kind, district, lat, lon)
SELECT %(kind)s || '-' || lpad(i::text, 6, '0'), %(kind)s, (%(districts)s::text[])[1 + i %% 11],
       36.0 + (i %% 1000) / 5000.0, 114.2 + (i / 1000) / 500.0
FROM generate_series(0, %(n)s - 1) i"""

# One day of readings per kind: {slots} is a generate_series of minutes-of-day, kept per
# device by its cadence; ts gets a per-device phase so devices do not report in lockstep.
DAY_SQL = {
    "manhole": """INSERT INTO manhole_readings (ts, device_id, received_at, msg_type, tilt_deg,
        cover_open, temp_c, battery_v, rsrp_dbm)
    SELECT t, 'manhole-' || lpad(i::text, 6, '0'), t + INTERVAL '2 s', 'periodic',
           random() * 2, false, 10 + random() * 15, 3.4 + random() * 0.2, -90 - random() * 20
    FROM generate_series(0, 1380, 60) m, generate_series(%(lo)s, %(hi)s - 1) i,
         LATERAL (SELECT %(day)s::timestamptz + (m * 60 + i %% 3600) * INTERVAL '1 s') AS x(t)
    WHERE (m / 60) %% (ARRAY[1, 2, 4, 6, 12, 24])[1 + i %% 6] = 0
    ORDER BY m, i""",
    "streetlight": """INSERT INTO streetlight_readings (ts, device_id, received_at, power_state,
        active_power_w, supply_voltage_v, supply_current_a, power_factor, active_energy_kwh,
        rsrp_dbm)
    SELECT t, 'streetlight-' || lpad(i::text, 6, '0'), t + INTERVAL '2 s',
           CASE WHEN night THEN 'on' ELSE 'off' END,
           CASE WHEN night THEN 80 + random() * 20 ELSE 0 END, 220 + random() * 15,
           CASE WHEN night THEN 0.4 ELSE 0 END, 0.97, %(dayno)s * 1.1 + m / 1440.0,
           -85 - random() * 25
    FROM generate_series(0, 1425, 15) m, generate_series(%(lo)s, %(hi)s - 1) i,
         LATERAL (SELECT %(day)s::timestamptz + (m * 60 + i %% 900) * INTERVAL '1 s',
                         m < 360 OR m >= 1080) AS x(t, night)
    WHERE night OR m %% 60 = 0
    ORDER BY m, i""",
    "waterlog": """INSERT INTO waterlog_readings (ts, device_id, received_at, depth_cm,
        water_present, rain_mm, temp_c, battery_v, rsrp_dbm)
    SELECT t, 'waterlog-' || lpad(i::text, 6, '0'), t + INTERVAL '2 s', 0, false, 0,
           10 + random() * 15, 3.5, -95 - random() * 10
    FROM generate_series(0, 1435, 5) m, generate_series(%(lo)s, %(hi)s - 1) i,
         LATERAL (SELECT %(day)s::timestamptz + (m * 60 + i %% 300) * INTERVAL '1 s') AS x(t)
    WHERE m %% (ARRAY[5, 10, 15, 30, 60])[1 + i %% 5] = 0
    ORDER BY m, i""",
    "watermeter": """INSERT INTO watermeter_readings (ts, device_id, received_at, flow_m3_h,
        fwd_total_m3, rev_total_m3, pressure_mpa, battery_v, rsrp_dbm)
    SELECT t, 'watermeter-' || lpad(i::text, 6, '0'), t + INTERVAL '2 s', 5 + random() * 20,
           %(dayno)s * 300 + m / 5.0, 0, 0.25 + random() * 0.1, 3.6, -90 - random() * 10
    FROM generate_series(0, 1425, 15) m, generate_series(%(lo)s, %(hi)s - 1) i,
         LATERAL (SELECT %(day)s::timestamptz + (m * 60 + i %% 900) * INTERVAL '1 s') AS x(t)
    ORDER BY m, i""",
}


def fleet(scale: float) -> dict[str, int]:
    return {kind: max(10, round(n * scale)) for kind, n in CITY.items()}


# Readings per device and day at the cadences above (DAY_SQL), for size estimates.
READINGS_PER_DAY = {"manhole": 49 / 6, "streetlight": 60, "waterlog": 120, "watermeter": 96}


def readings_per_day(scale: float) -> int:
    return round(sum(READINGS_PER_DAY[k] * n for k, n in fleet(scale).items()))


def _slices(n: int, jobs: int) -> list[tuple[int, int]]:
    bounds = [n * j // jobs for j in range(jobs + 1)]
    return [(lo, hi) for lo, hi in pairwise(bounds) if hi > lo]


def _settle_day(conn: psycopg.Connection, storage: str, day: datetime, day_end: datetime) -> None:
    """What live operation would have done by the end of `day` (module docstring)."""
    if storage == "timescale":
        refresh_rollups(conn, day, day_end)
        older = min(day, datetime.now(UTC) - timedelta(days=7))  # `day` is still being written
        for kind in KINDS:
            for (chunk,) in conn.execute(
                "SELECT show_chunks(%s, older_than => %s::timestamptz)", (f"{kind}_readings", older)
            ).fetchall():
                conn.execute("SELECT compress_chunk(%s, if_not_compressed => true)", (chunk,))
    else:
        conn.execute("SELECT urbanwatch_refresh_rollups(now() - %s::timestamptz)", (day_end,))


def backfill(
    url: str,
    scale: float,
    days: int,
    jobs: int = 1,
    live: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Register the scaled fleet and write `days` days ending at today's midnight (UTC);
    `live`: settle each day as live operation would (module docstring), else the caller
    refreshes rollups once at the end. `progress(done_days, days)` after each day."""
    devices = fleet(scale)
    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = end - timedelta(days=days)
    settle_s = 0.0
    with psycopg.connect(url, autocommit=True) as conn:
        storage = get_storage(conn)
        for kind, n in devices.items():
            conn.execute(DEVICES_SQL, {"kind": kind, "n": n, "districts": list(DISTRICTS)})
        writers = [psycopg.connect(url, autocommit=True) for _ in range(jobs)]
        try:
            with ThreadPoolExecutor(jobs) as pool:
                for dayno in range(days):
                    day = start + timedelta(days=dayno)
                    for kind, n in devices.items():  # each kind's slices in parallel
                        params = {"day": day, "dayno": dayno}
                        futures = [
                            pool.submit(
                                writer.execute, DAY_SQL[kind], params | {"lo": lo, "hi": hi}
                            )
                            for writer, (lo, hi) in zip(writers, _slices(n, jobs), strict=False)
                        ]
                        for f in futures:
                            f.result()
                    if live:
                        t = time.perf_counter()
                        _settle_day(conn, storage, day, day + timedelta(days=1))
                        settle_s += time.perf_counter() - t
                    if progress:
                        progress(dayno + 1, days)
        finally:
            for writer in writers:
                writer.close()
        settle_after_bulk_load(conn)
    return {
        "scale": scale,
        "days": days,
        "devices": devices,
        "start": start,
        "end": end,
        "storage": storage,
        "settle_s": round(settle_s, 1),
    }


def print_progress(label: str) -> Callable[[int, int], None]:
    """A progress line on stderr every 5 days (a city-scale backfill takes tens of minutes)."""
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        if done % 5 and done != total:
            return
        elapsed = time.monotonic() - started
        eta = elapsed / done * (total - done)
        print(
            f"  {label}: day {done}/{total}, {elapsed / 60:.1f} min, ~{eta / 60:.0f} min left",
            file=sys.stderr,
            flush=True,
        )

    return report
