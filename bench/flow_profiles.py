"""The cost of a refresh of WS_FLOW_ANOMALY's expected flow (urbanwatch/queries/profiles.py)
at city scale: METERS water meters, one reading every CADENCE_S seconds for DAYS days
(plain storage, readings generated inside PostgreSQL in time order, as ingest writes them),
then p50/max of `load_profiles` (10 windows of 3 h from the raw readings + the hourly
profile over the rollups), of its slot query alone and of the hourly query alone.

    python -m bench.flow_profiles [--meters 1000] [--cadence 60] [--days 29] [--keep]

The database is uw_bench_flowprofile; --keep leaves it (a rerun reuses it, filled),
otherwise it is dropped at the end.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from urbanwatch.migrate import migrate
from urbanwatch.queries.alerts import hourly_profiles
from urbanwatch.queries.profiles import load_profiles, slot_stats
from urbanwatch.queries.rollups import refresh_rollups, settle_after_bulk_load

ADMIN_URL = "postgresql://127.0.0.1:5432/postgres"
NAME = "uw_bench_flowprofile"
RUNS = 5
# One day of every meter's readings per statement, in time order (BRIN stays tight).
FILL_DAY = """INSERT INTO watermeter_readings (ts, device_id, received_at, flow_m3_h, pressure_mpa)
SELECT t, m.id, t,
       40 + 25 * sin(2 * pi() * extract(epoch FROM t) / 86400) + 5 * random(),
       0.30 + 0.03 * cos(2 * pi() * extract(epoch FROM t) / 86400) + 0.01 * random()
FROM generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz - make_interval(secs => %(step)s),
                     make_interval(secs => %(step)s)) t
CROSS JOIN (SELECT device_id AS id FROM devices WHERE kind = 'watermeter') m
ORDER BY t"""


def fill(url: str, meters: int, cadence_s: int, days: int, now: datetime) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, "plain")
        conn.execute(
            "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) "
            "SELECT 'WM-B' || lpad(i::text, 5, '0'), 'watermeter', 'wenfeng', 36.1, 114.3, "
            """'{"meter_role": "inlet"}' FROM generate_series(1, %s) i""",
            (meters,),
        )
        start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
        for day in range(days + 1):
            lo = start + timedelta(days=day)
            hi = min(lo + timedelta(days=1), now)
            if lo >= hi:
                break
            t0 = time.perf_counter()
            conn.execute(FILL_DAY, {"lo": lo, "hi": hi, "step": cadence_s})
            print(f"filled {lo:%Y-%m-%d %H:%M} in {time.perf_counter() - t0:.1f} s", flush=True)
        settle_after_bulk_load(conn)
        print(refresh_rollups(conn), flush=True)


def timed(fn, runs: int = RUNS) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), max(out)


def raw_slot_stats(conn: psycopg.Connection, now: datetime) -> None:
    """The slot query as if the rollups had not run: from the raw readings alone (the
    watermark hidden inside a transaction rolled back)."""
    with conn.transaction(force_rollback=True):
        conn.execute("UPDATE rollup_watermarks SET upto = NULL WHERE kind = 'watermeter'")
        slot_stats(conn, now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meters", type=int, default=1000)
    parser.add_argument("--cadence", type=int, default=60, help="seconds between readings")
    parser.add_argument("--days", type=int, default=29)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    url = make_conninfo(ADMIN_URL, dbname=NAME)
    now = datetime.now(UTC)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (NAME,)).fetchone()
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(NAME)))
    try:
        if not exists:
            fill(url, args.meters, args.cadence, args.days, now)
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT count(*), max(ts) FROM watermeter_readings").fetchone()
            assert rows is not None
            now = rows[1]
            print(f"{rows[0]:,} readings; profiles at {now:%Y-%m-%d %H:%M} UTC")
            profiles = load_profiles(conn, now)
            print(f"{len(profiles.slots):,} slot profiles, {len(profiles.hourly):,} hourly")
            for name, fn in (
                ("load_profiles", lambda: load_profiles(conn, now)),
                ("slot query (15-min rollup)", lambda: slot_stats(conn, now)),
                ("slot query (raw readings)", lambda: raw_slot_stats(conn, now)),
                ("hourly query", lambda: hourly_profiles(conn, now)),
            ):
                p50, worst = timed(fn)
                print(f"{name}: p50 {p50 * 1000:.0f} ms, max {worst * 1000:.0f} ms ({RUNS} runs)")
    finally:
        if not args.keep:
            with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(NAME))
                )


if __name__ == "__main__":
    main()
