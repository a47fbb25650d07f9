"""Parts 4 and 5: query latency and storage on a backfilled city, with and without
TimescaleDB. Both servers are filled at once (each backfill is one backend, so the two
cores are used), then queried one after the other so the timings do not share the CPU.

* device_30d: every reading of one streetlight over 30 days (a device page's chart);
* rollup_month: hourly series for one district and kind over 30 days, from `<kind>_hourly`
  joined to the registry (the shape KPI and dashboard panels run), every kind × district.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from datetime import timedelta

import orjson
import psycopg
from psycopg import sql

from bench import backfill, storage
from bench.harness import bench_database
from urbanwatch.queries.rollups import refresh_rollups

MEASURE = {
    "manhole": "max(max_tilt_deg)",
    "streetlight": "avg(avg_active_power_w)",
    "waterlog": "max(max_depth_cm)",
    "watermeter": "avg(avg_flow_m3_h)",
}
# The shape KPIs and dashboards run: one district, one kind, a month of hours.
DISTRICT_MEASURE = {
    "manhole": "max_tilt_deg",
    "streetlight": "avg_active_power_w",
    "waterlog": "max_depth_cm",
    "watermeter": "avg_flow_m3_h",
}
DISTRICT_QUERY = """SELECT bucket, n AS readings, {measure} AS value FROM {view}
WHERE district = %s AND bucket >= %s AND bucket < %s ORDER BY bucket"""
DEVICE_QUERY = """SELECT * FROM streetlight_readings
WHERE device_id = %s AND ts >= %s AND ts < %s ORDER BY ts"""
ROLLUP_QUERY = """SELECT h.bucket, sum(h.n) AS readings, {measure} AS value
FROM {view} h JOIN devices d ON d.device_id = h.device_id
WHERE d.district = %s AND d.kind = %s AND h.bucket >= %s AND h.bucket < %s
GROUP BY h.bucket ORDER BY h.bucket"""


def _percentiles(samples: list[float]) -> dict:
    s = sorted(samples)
    pick = lambda p: round(s[min(len(s) - 1, int(p * len(s)))] * 1000, 1)  # noqa: E731
    return {"n": len(s), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": pick(1.0)}


def _timed(conn: psycopg.Connection, query: sql.Composable | str, params: tuple) -> float:
    start = time.perf_counter()
    conn.execute(query, params).fetchall()
    return time.perf_counter() - start


def run_queries(url: str, info: dict, repeats: int) -> dict:
    end = info["end"]
    month = (end - timedelta(days=30), end)
    rng = random.Random(42)
    n_lights = info["devices"]["streetlight"]
    out: dict = {}
    with psycopg.connect(url, autocommit=True) as conn:
        device = [
            _timed(conn, DEVICE_QUERY, (f"streetlight-{rng.randrange(n_lights):06d}", *month))
            for _ in range(repeats * 20)
        ]
        out["device_30d"] = _percentiles(device)
        every: list[float] = []
        for kind, measure in MEASURE.items():
            query = sql.SQL(ROLLUP_QUERY).format(
                measure=sql.SQL(measure), view=sql.Identifier(f"{kind}_hourly")
            )
            samples = [
                _timed(conn, query, (district, kind, *month))
                for _ in range(repeats)
                for district in backfill.DISTRICTS
            ]
            out[f"rollup_month_{kind}"] = _percentiles(samples)
            every += samples
        out["rollup_month_all_kinds"] = _percentiles(every)
        every = []
        for kind, measure in DISTRICT_MEASURE.items():
            query = sql.SQL(DISTRICT_QUERY).format(
                measure=sql.Identifier(measure), view=sql.Identifier(f"{kind}_district_hourly")
            )
            samples = [
                _timed(conn, query, (district, *month))
                for _ in range(repeats)
                for district in backfill.DISTRICTS
            ]
            out[f"district_month_{kind}"] = _percentiles(samples)
            every += samples
        out["district_month_all_kinds"] = _percentiles(every)
    return out


def prepare(
    admin_url: str,
    storage_name: str,
    scale: float,
    days: int,
    out: dict,
    jobs: int = 1,
    live: bool = False,
) -> None:
    """Fill one server; `out` gets the timings and sizes (runs in a thread). `live`: settle
    each day as it is written (bench/backfill.py), so TimescaleDB chunks are compressed
    along the way and only compressed sizes exist."""
    with bench_database(admin_url, storage_name, commit_log=None) as url:
        start = time.perf_counter()
        progress = backfill.print_progress(storage_name) if live else None
        info = backfill.backfill(url, scale, days, jobs, live=live, progress=progress)
        out["backfill_s"] = round(time.perf_counter() - start, 1)
        out["backfill_jobs"], out["settled_daily"] = jobs, live
        if live:
            out["settle_s"] = info["settle_s"]
        with psycopg.connect(url, autocommit=True) as conn:
            start = time.perf_counter()
            refresh_rollups(conn)
            out["rollup_refresh_s"] = round(time.perf_counter() - start, 1)
            sizes = storage.sizes(conn, storage_name)
            out["backfill_rows_per_s"] = round(sizes["rows"] / out["backfill_s"])
            if not (live and storage_name == "timescale"):  # else already compressed
                out["storage"] = sizes
            if storage_name == "timescale":
                start = time.perf_counter()
                out["chunks_compressed"] = storage.compress_like_the_policy(conn)
                out["compress_s"] = round(time.perf_counter() - start, 1)
                conn.execute("ANALYZE")
                out["storage_compressed"] = storage.sizes(conn, storage_name)
        out["ready"] = threading.Event()
        out["ready"].set()
        out["done"] = threading.Event()
        out["info"], out["url"] = info, url
        out["done"].wait()  # keep the database until the queries ran


def run(admin_url: str, timescale_url: str | None, scale: float, days: int, quick: bool) -> dict:
    servers = {"plain": admin_url}
    if timescale_url:
        servers["timescale"] = timescale_url
    states: dict[str, dict] = {name: {} for name in servers}
    threads = [
        threading.Thread(target=prepare, args=(url, name, scale, days, states[name]))
        for name, url in servers.items()
    ]
    for t in threads:
        t.start()
    result: dict = {"scale": scale, "days": days, "fleet": backfill.fleet(scale)}
    try:
        for name, state in states.items():
            while "ready" not in state:
                if not any(t.is_alive() for t in threads):
                    raise RuntimeError(f"preparing {name} failed (see the traceback above)")
                time.sleep(0.5)
        for name, state in states.items():
            summary = {k: v for k, v in state.items() if k not in ("ready", "done", "info", "url")}
            summary["queries"] = run_queries(state["url"], state["info"], 2 if quick else 3)
            result[name] = summary
            print(name, orjson.dumps(summary).decode(), file=sys.stderr)
    finally:
        for state in states.values():
            state.setdefault("done", threading.Event()).set()
        for t in threads:
            t.join()
    if not timescale_url:
        result["timescale"] = None
    return result


def run_one(
    admin_url: str, storage_name: str, scale: float, days: int, jobs: int, live: bool
) -> dict:
    """One server alone: fill it, query it, drop it (a city-scale run, bench/city.py)."""
    state: dict = {}
    thread = threading.Thread(
        target=prepare, args=(admin_url, storage_name, scale, days, state, jobs, live)
    )
    thread.start()
    try:
        while "ready" not in state:
            if not thread.is_alive():
                raise RuntimeError(f"preparing {storage_name} failed (see the traceback above)")
            time.sleep(1)
        summary = {k: v for k, v in state.items() if k not in ("ready", "done", "info", "url")}
        summary["queries"] = run_queries(state["url"], state["info"], 3)
    finally:
        state.setdefault("done", threading.Event()).set()
        thread.join()
    return summary
