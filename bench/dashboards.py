"""Dashboard panel queries on the bench's city fill: p50/p99 of every panel's SQL, expanded
as Grafana expands it and run as the read-only Grafana role, over the board's default range
and over the whole fill, and each board's total (issue #12 targets: ≤ 500 ms per panel,
≤ 2 s per board, on 90 days of the city).

    .venv/bin/python -m bench.dashboards --scale 1 --fill-minutes 25   # as many days as fit
    .venv/bin/python -m bench.dashboards --scale 0.1 --days 14 --fill-minutes 0

The fill is bench/backfill.py's (readings generated inside PostgreSQL, `--jobs` backends,
each day settled as live operation would: rollups materialized up to it), day by day from
`--days` before today's midnight, until the days or `--fill-minutes` run out; the result
says how many days were filled and the panels' "now" is the end of the last one. Besides
readings it writes what the live and plan boards read: unresolved alerts on 4 % of the
devices (half of them offline rules', the map's states), three resolved ones per device
with their events, and a daily snapshot per plan target's KPI and scope (kpi_daily).
The water meters get DMAs (25 meters to a DMA, one inlet and two pressure points each,
in one district) and a few manholes a day report water near the cover and gas (see
EVENTS_SQL), so the water board's DMA panels and the manhole board's event table return
rows; the other devices carry no attributes (no road, waterlog role), so the panels that
select on those scan and join the same rows but return none; their timings still count.
Writes bench/results/dashboards-<scale>x<days>d[-<tag>].json; `--keep` leaves the database
(named uw_bench_<tag>_*) for `--measure URL`, which times the panels again on it (after a
migration, say) without filling.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import backfill
from bench.harness import bench_database, machine_info
from dashboards.build import load_json
from dashboards.macros import QueryContext, expand, parse_interval
from urbanwatch.audit import Actor
from urbanwatch.kinds import KINDS
from urbanwatch.plan.targets import seed_targets
from urbanwatch.queries.rollups import settle_after_bulk_load

RESULTS = Path(__file__).resolve().parent / "results"
MULTI = frozenset({"district", "kind", "dma", "road"})
PANEL_TARGET_MS, BOARD_TARGET_MS = 500, 2000
COUNTS_SQL = (
    "SELECT (SELECT sum(n_live_tup)::bigint FROM pg_stat_user_tables "
    "WHERE relname LIKE '%%\\_readings'), (SELECT count(*) FROM alerts), "
    "(SELECT count(*) FROM alerts WHERE status <> 'resolved'), (SELECT count(*) FROM kpi_daily)"
)

# What the live board's alert panels and map read: open alerts on every 25th device (4 %),
# an offline rule's on every other one of those; three resolved alerts per device in the
# days before the end, and an 'opened' event per alert (the alert stream).
ALERTS_SQL = """INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity,
    status, opened_at, title, resolved_at)
SELECT CASE WHEN r %% 2 = 0 THEN upper(left(kind, 2)) || '_TEST'
            ELSE (ARRAY['MH_OFFLINE', 'SL_COMM_LOSS', 'WL_OFFLINE', 'WS_METER_OFFLINE'])
                 [array_position(ARRAY['manhole', 'streetlight', 'waterlog', 'watermeter'], kind)]
       END, device_id, device_id, kind, district,
       (ARRAY['info', 'warning', 'alarm', 'critical'])[1 + r %% 4],
       CASE WHEN i = 3 THEN 'open' ELSE 'resolved' END,
       %(end)s::timestamptz - (i + 1) * INTERVAL '19 hours' - (r %% 3600) * INTERVAL '1 s',
       'bench alert ' || kind, CASE WHEN i = 3 THEN NULL ELSE %(end)s::timestamptz END
FROM (SELECT device_id, kind, district, row_number() OVER (ORDER BY device_id) AS r
      FROM devices) d, generate_series(0, 3) i
WHERE i < 3 OR r %% 25 = 0"""
EVENTS_SQL = """INSERT INTO alert_events (alert_id, at, event, actor, severity)
SELECT id, opened_at, 'opened', 'engine', severity FROM alerts"""
# A snapshot per plan target's KPI, scope (city, classes, districts) and filled day.
KPI_SQL = """INSERT INTO kpi_daily (day, kpi, scope, value, numerator, denominator)
SELECT g.day, k.kpi, s.scope, 80 + 10 * random(), 80, 100
FROM (SELECT DISTINCT kpi FROM plan_targets WHERE kpi IS NOT NULL) k,
     (SELECT 'city' UNION SELECT 'central' UNION SELECT 'county'
      UNION SELECT code FROM districts) s(scope),
     generate_series(%(start)s::date, %(end)s::date - 1, INTERVAL '1 day') g(day)
ON CONFLICT DO NOTHING"""


# Water meters in DMAs of 25 (DMA-01..), each DMA in one district: its first meter the
# inlet, the next two pressure points, the rest customers (simulators/dmas.py's roles).
DMA_SQL = """UPDATE devices d SET district = (%(districts)s::text[])[1 + (n / 25) %% 11],
    attrs = jsonb_build_object('dma_id', 'DMA-' || lpad((n / 25 + 1)::text, 2, '0'),
        'meter_role', CASE WHEN n %% 25 = 0 THEN 'inlet' WHEN n %% 25 < 3 THEN 'pressure'
                           ELSE 'customer' END)
FROM (SELECT device_id, row_number() OVER (ORDER BY device_id) - 1 AS n
      FROM devices WHERE kind = 'watermeter') m
WHERE d.device_id = m.device_id"""
# A day's overflow and gas events: one manhole in 500 (a different set each day) reports
# every hour from 08:00 to 19:00 with water 0.3 m below the cover and CH4 at 12 % LEL:
# 12 device-hours per such manhole, ~0.1 % of the day's manhole device-hours.
EVENTS_DAY_SQL = """INSERT INTO manhole_readings (ts, device_id, received_at, msg_type, tilt_deg,
    cover_open, water_distance_m, ch4_pct_lel, battery_v)
SELECT t, 'manhole-' || lpad(i::text, 6, '0'), t + INTERVAL '2 s', 'alarm', 1, false, 0.3, 12,
       3.5
FROM generate_series(%(dayno)s %% 500, %(n)s - 1, 500) i, generate_series(8, 19) h,
     LATERAL (SELECT %(day)s::timestamptz + h * INTERVAL '1 hour' + INTERVAL '30 min 0.5 s') x(t)"""
INFO_SQL = """CREATE TABLE bench_fill AS
SELECT %(start)s::timestamptz AS start, %(end)s::timestamptz AS "end", %(days)s AS days"""


def fill(url: str, scale: float, days: int, jobs: int, minutes: float) -> dict[str, Any]:
    """bench/backfill.py's fleet and days (settled as live), from `days` before today's
    midnight, stopping after the day that spends `minutes` (0: no limit)."""
    devices = backfill.fleet(scale)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start -= timedelta(days=days)
    began = time.perf_counter()
    filled = 0
    with psycopg.connect(url, autocommit=True) as conn:
        for kind, n in devices.items():
            districts = list(backfill.DISTRICTS)
            conn.execute(backfill.DEVICES_SQL, {"kind": kind, "n": n, "districts": districts})
        conn.execute(DMA_SQL, {"districts": list(backfill.DISTRICTS)})
        writers = [psycopg.connect(url, autocommit=True) for _ in range(jobs)]
        try:
            with ThreadPoolExecutor(jobs) as pool:
                while filled < days:
                    day = start + timedelta(days=filled)
                    params = {"day": day, "dayno": filled}
                    for kind, n in devices.items():
                        futures = [
                            pool.submit(
                                w.execute, backfill.DAY_SQL[kind], params | {"lo": lo, "hi": hi}
                            )
                            for w, (lo, hi) in zip(writers, backfill._slices(n, jobs), strict=False)
                        ]
                        for f in futures:
                            f.result()
                    conn.execute(EVENTS_DAY_SQL, params | {"n": devices["manhole"]})
                    backfill._settle_day(conn, "plain", day, day + timedelta(days=1))
                    filled += 1
                    spent = time.perf_counter() - began
                    print(f"  day {filled}/{days}, {spent / 60:.1f} min", flush=True)
                    if minutes and spent > minutes * 60:
                        break
        finally:
            for w in writers:
                w.close()
        end = start + timedelta(days=filled)
        conn.execute(ALERTS_SQL, {"end": end})
        conn.execute(EVENTS_SQL)
        seed_targets(conn, Actor("bench:dashboards"))  # as `urbanwatch migrate` does
        conn.execute(KPI_SQL, {"start": start, "end": end})
        settle_after_bulk_load(conn)
        # What autovacuum does in live operation: the rollup tables' visibility map, which
        # lets the event table's covering index be read alone (migration 031).
        conn.execute("VACUUM (ANALYZE)")
        conn.execute(INFO_SQL, {"start": start, "end": end, "days": filled})
    return {"start": start, "end": end, "days": filled, "devices": devices}


def filled(url: str) -> dict[str, Any]:
    """What `fill` wrote to a kept database."""
    with psycopg.connect(url) as conn:
        row = conn.execute('SELECT start, "end", days FROM bench_fill').fetchone()
    if row is None:
        raise SystemExit("这个库没有填充记录 bench_fill is empty: not a kept bench database")
    return {"start": row[0], "end": row[1], "days": row[2]}


def _interval(span: timedelta) -> timedelta:
    """Grafana's: range / ~1000 points, at least the datasource's 1m, rounded to minutes."""
    return max(timedelta(minutes=1), timedelta(minutes=round(span / timedelta(minutes=1000))))


def _time(conn: psycopg.Connection, sql: str, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute("SET LOCAL ROLE urbanwatch_grafana")
            start = time.perf_counter()
            conn.execute(sql.encode()).fetchall()
            out.append((time.perf_counter() - start) * 1000)
    return out


def measure(url: str, info: dict[str, Any], repeats: int) -> dict[str, Any]:
    end, fill = info["end"], info["end"] - info["start"]
    boards: dict[str, Any] = {}
    with psycopg.connect(url, autocommit=True) as conn:
        districts = [r[0] for r in conn.execute("SELECT code FROM districts")]
        variables = {
            "district": districts,
            "kind": list(KINDS),
            "dma": ["__all"],
            "road": ["__all"],
            "target": "T1",  # the plan board's chosen target (its default)
            "api": "http://localhost:8000",
        }
        for _folder, board in load_json():
            default = end - parse_interval(board["time"]["from"].removeprefix("now-"))
            ranges = {"default": end - default, "fill": fill}
            result: dict[str, Any] = {name: {"panels": {}} for name in ranges}
            for panel in [p for top in board["panels"] for p in (top, *top.get("panels", []))]:
                for target in panel.get("targets", []):
                    for name, span in ranges.items():
                        if panel.get("timeFrom"):
                            span = parse_interval(panel["timeFrom"])
                        ctx = QueryContext(
                            end - span, end, _interval(span), False, variables, MULTI
                        )
                        samples = sorted(_time(conn, expand(target["rawSql"], ctx), repeats))
                        result[name]["panels"][f"{panel['id']} {panel['title']}"] = {
                            "p50_ms": round(statistics.median(samples), 1),
                            "p99_ms": round(
                                samples[min(len(samples) - 1, int(0.99 * len(samples)))], 1
                            ),
                        }
            for name in ranges:
                panels = result[name]["panels"].values()
                result[name]["board_ms"] = round(sum(p["p50_ms"] for p in panels), 1)
                result[name]["worst_p99_ms"] = max(p["p99_ms"] for p in panels)
            boards[board["uid"]] = result
            print(board["uid"], {n: (r["board_ms"], r["worst_p99_ms"]) for n, r in result.items()})
    return boards


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--admin-url", default="postgresql://127.0.0.1:5432/postgres")
    p.add_argument("--scale", type=float, default=1.0, help="share of the city fleet")
    p.add_argument("--days", type=int, default=90, help="days wanted (90)")
    p.add_argument(
        "--fill-minutes", type=float, default=25, help="stop filling after this (0: no limit)"
    )
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tag", default="", help="in the database's and the result's names")
    p.add_argument("--keep", action="store_true", help="leave the filled database")
    p.add_argument("--measure", metavar="URL", help="time the panels on a kept database")
    args = p.parse_args(argv)
    if args.measure:
        info, fill_s = filled(args.measure), None
        boards = measure(args.measure, info, args.repeats)
        with psycopg.connect(args.measure) as conn:
            counts = conn.execute(COUNTS_SQL).fetchone()
    else:
        with bench_database(
            args.admin_url, "plain", commit_log=None, tag=args.tag, keep=args.keep
        ) as url:
            start = time.perf_counter()
            info = fill(url, args.scale, args.days, args.jobs, args.fill_minutes)
            fill_s = round(time.perf_counter() - start, 1)
            boards = measure(url, info, args.repeats)
            with psycopg.connect(url) as conn:
                counts = conn.execute(COUNTS_SQL).fetchone()
    doc = {
        "meta": machine_info(),
        "storage": "plain",
        "scale": args.scale,
        "days_wanted": args.days,
        "days": info["days"],
        "range": [info["start"], info["end"]],
        "fleet": backfill.fleet(args.scale),
        "readings_per_day": backfill.readings_per_day(args.scale),
        "rows": dict(
            zip(("readings_estimate", "alerts", "open_alerts", "kpi_daily"), counts, strict=True)
        ),
        "fill_s": fill_s,
        "load": os.getloadavg(),
        "repeats": args.repeats,
        "targets_ms": {"panel_p99": PANEL_TARGET_MS, "board": BOARD_TARGET_MS},
        "boards": boards,
    }
    RESULTS.mkdir(exist_ok=True)
    tag = f"-{args.tag}" if args.tag else ""
    out = RESULTS / f"dashboards-{args.scale:g}x{info['days']}d{tag}.json"
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
