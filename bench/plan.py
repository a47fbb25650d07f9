"""The plan's KPIs, targets and report on a backfilled city (issue #11's benchmarks).

    .venv/bin/python -m bench.plan --scale 0.05 --days 90   # 5 % of the city, 90 days
    .venv/bin/python -m bench.plan --scale 1 --days 90      # the issue's data set (hours)

Fills a fresh plain-storage bench database with bench/backfill.py's readings (`--scale` ×
the city's 71k devices, `--days` days ending today), then makes the ledgers the KPIs count
from that fleet (a cover per manhole device, a defect on every fifth, a lamp per streetlight
on road segments, a waterlogging point per depth sensor, DMAs of five meters, hidden-danger
points per district) and seeds the plan's targets as `urbanwatch migrate` does. Then it
measures, one after the other:

* the daily KPI snapshot job, the real `urbanwatch kpi snapshot` CLI: once with `--since`
  the first day (the whole period, with each day's time from its output), once as the
  daily timer runs it (today and the 3 days before, docs/domain.md §6);
* the KPI and target API endpoints through the real app (FastAPI in-process over httpx,
  a viewer API key, the real database): GET /targets, /targets/{id} for every target,
  /kpis?kpi=…&scope=…&since=… (city and each district), /kpis/{key}, /kpis/{key}/items and
  /feed; p50 / p99 per endpoint and over all of them (target p99 ≤ 200 ms);
* the full city report, the real `urbanwatch report` CLI in text and xlsx (target ≤ 5 s;
  the process start is included, as a user sees it).

Writes bench/results/plan.json (`--output` to change); `python -m bench.run` adds it to
latest.md. The machine is shared with whatever else runs: the figures say so.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from psycopg import sql
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from api.app import create_app
from bench import backfill
from bench.harness import bench_database, machine_info
from urbanwatch import audit
from urbanwatch.identity import accounts
from urbanwatch.identity.models import ApiKeyCreate
from urbanwatch.identity.roles import Role
from urbanwatch.kpi.base import load_all
from urbanwatch.kpi.cli import today_local
from urbanwatch.migrate import migrate
from urbanwatch.plan.targets import seed_targets
from urbanwatch.queries.rollups import refresh_rollups
from urbanwatch.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
ENDPOINT_P99_MS, REPORT_S = 200, 5.0
ACTOR = audit.Actor("service:bench-plan", None, "bench")

# The ledgers of the backfill's fleet (its devices carry no attributes: everything here is
# derived from the device number, so a run is reproducible).
LEDGERS_SQL = [
    """INSERT INTO manhole_covers (cover_id, district, road, use_type, in_core_area,
           anti_fall_required, anti_fall_installed_on, smart_monitor_id, lat, lon)
       SELECT device_id, district, 'road-' || (n / 50), (ARRAY['雨水', '污水', '供水'])[1 + n % 3],
              n % 4 = 0, n % 2 = 0,
              CASE WHEN n % 2 = 0 AND n % 6 <> 0 THEN DATE '2021-05-01' + n % 900 END,
              CASE WHEN n % 3 <> 0 THEN device_id END, lat, lon
       FROM (SELECT *, row_number() OVER (ORDER BY device_id)::int AS n FROM devices
             WHERE kind = 'manhole') d""",
    """INSERT INTO manhole_defects (cover_id, defect_type, discovered_on, source,
           remediated_on, verified_on, baseline_2021)
       SELECT cover_id, (ARRAY['BROKEN', 'MISSING', 'LOOSE', 'HEIGHT'])[1 + n % 4],
              DATE '2021-03-01' + n % 700, (ARRAY['inspection', 'complaint'])[1 + n % 2],
              CASE WHEN n % 3 <> 0 THEN DATE '2021-03-01' + n % 700 + 30 + n % 300 END,
              CASE WHEN n % 3 <> 0 THEN DATE '2021-03-01' + n % 700 + 31 + n % 300 END,
              n % 700 < 300
       FROM (SELECT cover_id, row_number() OVER (ORDER BY cover_id)::int AS n
             FROM manhole_covers) c WHERE n % 5 = 0""",
    """INSERT INTO waterlog_points (point_id, name, district, sensor_id, planned_year,
           accepted_on, verification, verified_on, baseline_2021, lat, lon)
       SELECT 'WP-' || n, '积水点 ' || n, district, device_id, 2021 + n % 3,
              CASE WHEN n % 4 <> 0 THEN DATE '2021-09-30' + n * 40 % 900 END,
              CASE WHEN n % 4 = 0 THEN 'pending'
                   ELSE (ARRAY['pending', 'verified', 'regressed'])[1 + n % 3] END,
              CASE WHEN n % 4 <> 0 AND n % 3 <> 0 THEN DATE '2021-09-30' + n * 40 % 900 + 60 END,
              n % 2 = 0, lat, lon
       FROM (SELECT *, row_number() OVER (ORDER BY device_id)::int AS n FROM devices
             WHERE kind = 'waterlog') d""",
    """INSERT INTO lighting_road_segments (segment_id, district, road_name, road_class,
           length_m, next_segment_id, opened_on)
       SELECT 'SEG-' || s, (array_agg(district))[1], 'road-' || s,
              (ARRAY['trunk', 'secondary', 'branch'])[1 + s % 3], 600,
              'SEG-' || (s + 1), DATE '2015-01-01'
       FROM (SELECT district, (row_number() OVER (ORDER BY device_id) - 1)::int / 20 AS s
             FROM devices WHERE kind = 'streetlight') d GROUP BY s""",
    """INSERT INTO lighting_facilities (facility_id, facility_type, district, segment_id,
           road_side, position_m, lamp_type, rated_power_w, retrofit_on, previous_lamp_type,
           previous_power_w, device_id, circuit_id, part_night_off_from, part_night_off_to,
           installed_on, defect, defect_found_on)
       SELECT device_id, 'lamp', s.district, s.segment_id, (ARRAY['L', 'R'])[1 + n % 2],
              (n % 20) * 30, CASE WHEN n % 3 = 0 THEN 'HPS' ELSE 'LED' END,
              CASE WHEN n % 3 = 0 THEN 250 ELSE 120 END,
              CASE WHEN n % 3 <> 0 THEN DATE '2021-06-01' + n % 800 END,
              CASE WHEN n % 3 <> 0 THEN 'HPS' END, CASE WHEN n % 3 <> 0 THEN 250 END,
              device_id, 'CIR-' || (n / 40), CASE WHEN n % 10 = 0 THEN TIME '00:00' END,
              CASE WHEN n % 10 = 0 THEN TIME '05:00' END, DATE '2015-01-01',
              CASE WHEN n % 37 = 0 THEN '破损' END,
              CASE WHEN n % 37 = 0 THEN DATE '2023-01-01' END
       FROM (SELECT device_id, row_number() OVER (ORDER BY device_id)::int - 1 AS n
             FROM devices WHERE kind = 'streetlight') d
       JOIN lighting_road_segments s ON s.segment_id = 'SEG-' || (n / 20)""",
    "UPDATE lighting_road_segments SET next_segment_id = NULL WHERE next_segment_id NOT IN "
    "(SELECT segment_id FROM lighting_road_segments)",
    """INSERT INTO water_dmas (dma_id, name, district, pipe_km_dn75, mains_km,
           service_connections, avg_pressure_m)
       SELECT 'DMA-' || (n / 5), 'DMA ' || (n / 5), (array_agg(district))[1], 20, 15, 400, 30
       FROM (SELECT district, row_number() OVER (ORDER BY device_id)::int - 1 AS n
             FROM devices WHERE kind = 'watermeter') d GROUP BY n / 5""",
    """INSERT INTO water_meters (meter_id, dma_id, role, device_id)
       SELECT device_id, 'DMA-' || (n / 5),
              (ARRAY['inlet', 'inlet', 'customer', 'household', 'pressure'])[1 + n % 5], device_id
       FROM (SELECT device_id, row_number() OVER (ORDER BY device_id)::int - 1 AS n
             FROM devices WHERE kind = 'watermeter') d""",
    """INSERT INTO water_supply_years (district, year, plant_outlet_pressure_mpa,
           max_frost_depth_m, pipe_km_dn75)
       SELECT code, y, 0.32, 0.4, 200 FROM districts, generate_series(2021, 2027) y""",
    """INSERT INTO hidden_dangers (hazard_id, district, category, location, found_on, deadline,
           rectified_on, verified_on)
       SELECT 'HD-' || code || '-' || i, code, (ARRAY['窨井', '燃气', '供水', '排水'])[1 + i % 4],
              'location ' || i, DATE '2021-04-01' + i * 20, DATE '2021-04-01' + i * 20 + 90,
              CASE WHEN i % 3 <> 0 THEN DATE '2021-04-01' + i * 20 + 40 END,
              CASE WHEN i % 3 = 1 THEN DATE '2021-04-01' + i * 20 + 45 END
       FROM districts, generate_series(1, 30) i""",
]
LEDGER_TABLES = (
    "manhole_covers", "manhole_defects", "waterlog_points", "lighting_road_segments",
    "lighting_facilities", "water_dmas", "water_meters", "hidden_dangers",
)  # fmt: skip


def make_ledgers(conn: psycopg.Connection) -> dict[str, int]:
    """The ledgers of the filled fleet and the plan's targets; rows per ledger."""
    with conn.transaction():
        for statement in LEDGERS_SQL:
            conn.execute(statement)
    seed_targets(conn, ACTOR)
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in LEDGER_TABLES}  # type: ignore[index]
    counts["plan_targets"] = conn.execute("SELECT count(*) FROM plan_targets").fetchone()[0]  # type: ignore[index]
    conn.execute("ANALYZE")
    return counts


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    s = sorted(samples_ms)
    pick = lambda p: round(s[min(len(s) - 1, int(p * len(s)))], 1)  # noqa: E731
    return {"n": len(s), "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": round(s[-1], 1)}


def _cli(url: str, *argv: str) -> tuple[float, str]:
    """Run the real `urbanwatch` CLI; (seconds, stdout). A failure ends the bench."""
    start = time.perf_counter()
    ran = subprocess.run(
        [sys.executable, "-m", "urbanwatch.cli", *argv],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
    )
    took = time.perf_counter() - start
    if ran.returncode != 0:
        raise RuntimeError(f"urbanwatch {' '.join(argv)}: {ran.stderr.decode()[-2000:]}")
    return took, ran.stdout.decode("utf-8", "replace")


DAY_LINE = re.compile(r"^(\d{4}-\d{2}-\d{2}): (\d+) KPI value\(s\) stored in ([\d.]+) s$", re.M)


def measure_snapshots(url: str, first: date, today: date, period: bool = True) -> dict[str, Any]:
    """The snapshot job over the whole period, then as the daily timer runs it."""
    if not period:
        daily_s, daily_out = _cli(url, "kpi", "snapshot")
        per = [float(m.group(3)) for m in DAY_LINE.finditer(daily_out)]
        return {
            "period": "stored by an earlier run on the kept database (--keep-db)",
            "daily_job_s": round(daily_s, 2),
            "daily_job_days": len(per),
            "daily_job_per_day_s": per,
        }
    total_s, out = _cli(url, "kpi", "snapshot", "--since", first.isoformat())
    per_day = [float(m.group(3)) for m in DAY_LINE.finditer(out)]
    rows = sum(int(m.group(2)) for m in DAY_LINE.finditer(out))
    daily_s, daily_out = _cli(url, "kpi", "snapshot")
    return {
        "period_days": len(per_day),
        "period_total_s": round(total_s, 2),
        "rows_written": rows,
        "per_day_s": {
            "p50": round(statistics.median(per_day), 3),
            "max": round(max(per_day), 3),
            "mean": round(statistics.fmean(per_day), 3),
        },
        "daily_job_s": round(daily_s, 2),
        "daily_job_days": len(DAY_LINE.findall(daily_out)),
        "note": "the real `urbanwatch kpi snapshot` CLI (process start and the waterlog "
        "verification / defect-candidate steps included); per-day times from its output",
    }


def _requests(client: TestClient, headers: dict[str, str], first: date) -> dict[str, list[str]]:
    """Each endpoint's URLs: every target, every KPI in the city and in each district."""
    districts = [r["code"] for r in client.get("/districts", headers=headers).json()] or list(
        backfill.DISTRICTS
    )
    targets = [t["id"] for t in client.get("/targets", headers=headers).json()]
    kpis = list(load_all())
    scopes = ["city", "central", "county", *districts]
    return {
        "GET /targets": ["/targets"],
        "GET /targets/{id}": [f"/targets/{t}" for t in targets],
        "GET /kpis?kpi&scope&since": [
            f"/kpis?kpi={k}&scope={s}&since={first}" for k in kpis for s in scopes[:4]
        ],
        "GET /kpis/{key}": [f"/kpis/{k}?scope={s}" for k in kpis for s in ("city", scopes[3])],
        "GET /kpis/{key}/items": [f"/kpis/{k}/items?scope=city" for k in kpis],
        "GET /feed": ["/feed"],
    }


def measure_endpoints(
    url: str, first: date, repeats: int, after_change: int = 10
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(each endpoint warm: after a warm-up request per URL, so the endpoints of CACHED
    answer from the KPI value cache; the endpoints of CACHED when each request follows a
    committed ledger edit, so it computes every value it shows: what the first request
    after a change pays)."""
    settings = Settings(database_url=url, api_secret_key=SecretStr(secrets.token_urlsafe(48)))
    with psycopg.connect(url) as conn:
        key = accounts.create_key(
            conn, ACTOR, ApiKeyCreate(name="bench plan", role=Role.viewer, unit=None)
        ).key.get_secret_value()
    headers = {"X-API-Key": key}
    out: dict[str, Any] = {}
    every: list[float] = []
    with TestClient(create_app(settings)) as client:
        plan = _requests(client, headers, first)
        for path in (p for paths in plan.values() for p in paths):  # warm-up, checked
            got = client.get(path, headers=headers)
            if got.status_code != 200:
                raise RuntimeError(f"GET {path}: {got.status_code} {got.text[:300]}")
        for name, paths in plan.items():
            samples = []
            for _ in range(max(1, repeats // len(paths)) if len(paths) > 1 else repeats):
                for path in paths:
                    start = time.perf_counter()
                    client.get(path, headers=headers)
                    samples.append((time.perf_counter() - start) * 1000)
            out[name] = percentiles(samples) | {"urls": len(paths)}
            every += samples
        out["all"] = percentiles(every)
        changed = measure_after_change(url, client, headers, plan, after_change)
    return out, changed


# Endpoints whose values come from the KPI value cache (urbanwatch/plan/values.py).
CACHED = ("GET /targets", "GET /targets/{id}", "GET /kpis/{key}", "GET /feed")


def _touch(table: str, key: str) -> str:
    """A committed no-op edit of one row: the row trigger bumps the table's family counter."""
    return f"UPDATE {table} SET {key} = {key} WHERE {key} = (SELECT min({key}) FROM {table})"


# One change per input family (migration 034): the next request recomputes the values of
# the KPIs that read that family only. Alerts: a bump of the counter itself (what the
# trigger does when a lamp alarm opens); "every family": all counters at once, what every
# change cost before 034 (each value recomputed).
TOUCHES = {
    "hazards": _touch("hidden_dangers", "hazard_id"),
    "manhole": _touch("manhole_covers", "cover_id"),
    "waterlog": _touch("waterlog_points", "point_id"),
    "lighting": _touch("lighting_facilities", "facility_id"),
    "water": _touch("water_dmas", "dma_id"),
    "registry": _touch("devices", "device_id"),
    "alerts": "UPDATE plan_input_versions SET version = version + 1 WHERE area = 'alerts'",
    "every family": "UPDATE plan_input_versions SET version = version + 1",
}


def measure_after_change(
    url: str, client: TestClient, headers: dict[str, str], plan: dict[str, list[str]], n: int
) -> dict[str, Any]:
    """Each cached endpoint's time when one family changed just before (the trigger bumps
    its counter: the request recomputes the values of the KPIs that read it), per family;
    "all": over every family's samples but "every family"."""
    out: dict[str, Any] = {}
    every: list[float] = []
    with psycopg.connect(url, autocommit=True) as conn:
        for family, touch in TOUCHES.items():
            fam: dict[str, Any] = {}
            samples_of_family: list[float] = []
            for name in CACHED:
                paths = plan[name]
                samples = []
                for path in (paths * n)[: max(n, len(paths))]:
                    conn.execute(touch)
                    start = time.perf_counter()
                    client.get(path, headers=headers)
                    samples.append((time.perf_counter() - start) * 1000)
                fam[name] = percentiles(samples) | {"urls": len(paths)}
                samples_of_family += samples
            fam["all"] = percentiles(samples_of_family)
            out[family] = fam
            if family != "every family":
                every += samples_of_family
    out["all"] = percentiles(every)
    return out


def measure_report(url: str, as_of: date, repeats: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        xlsx = str(Path(tmp) / "report.xlsx")
        argv: dict[str, list[str]] = {
            "text": ["report", "--as-of", as_of.isoformat()],
            "xlsx": ["report", "--as-of", as_of.isoformat(), "--format", "xlsx", "-o", xlsx],
        }
        for fmt, args in argv.items():
            times = []
            for _ in range(repeats):
                took, text = _cli(url, *args)
                times.append(took)
            out[fmt] = {
                "runs": repeats,
                "median_s": round(statistics.median(times), 2),
                "max_s": round(max(times), 2),
            }
            if fmt == "text":
                out["text_lines"] = len(text.splitlines())
        out["xlsx_bytes"] = Path(xlsx).stat().st_size
    return out


@contextmanager
def _database(admin_url: str, keep: str | None) -> Iterator[str]:
    """A fresh bench database dropped afterwards, or with `keep` the named one (created and
    migrated when missing, kept afterwards) so a long fill is paid once."""
    if keep is None:
        with bench_database(admin_url, "plain", commit_log=None) as url:
            yield url
        return
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (keep,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(keep)))
    url = make_conninfo(admin_url, dbname=keep)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, "plain")
    yield url


def _filled(url: str) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM plan_targets").fetchone()
        return bool(row and row[0])


def _snapshotted(url: str, first: date) -> bool:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM kpi_daily WHERE day = %s", (first,)).fetchone()
        return bool(row and row[0])


def run(
    admin_url: str,
    scale: float,
    days: int,
    jobs: int = 2,
    repeats: int = 20,
    report_runs: int = 3,
    progress: Callable[[str], None] | None = None,
    keep: str | None = None,
    fill_only: bool = False,
) -> dict[str, Any]:
    say = progress or (lambda _: None)
    doc: dict[str, Any] = {
        "meta": machine_info(),
        "storage": "plain",
        "scale": scale,
        "days": days,
        "fleet": backfill.fleet(scale),
        "readings_per_day": backfill.readings_per_day(scale),
        "targets": {"endpoint_p99_ms": ENDPOINT_P99_MS, "report_s": REPORT_S},
    }
    with _database(admin_url, keep) as url:
        today = today_local()
        if keep is not None and _filled(url):
            say(f"reusing the filled database {keep}")
            doc["fill_s"] = "reused"
            with psycopg.connect(url) as conn:
                count = sql.SQL("SELECT count(*) FROM {}")
                doc["ledgers"] = {
                    t: conn.execute(count.format(sql.Identifier(t))).fetchone()[0]  # type: ignore[index]
                    for t in (*LEDGER_TABLES, "plan_targets")
                }
                row = conn.execute("SELECT min(day) FROM kpi_daily").fetchone()
            first = row[0] if row and row[0] else today - timedelta(days=days - 1)
        else:
            say(f"backfill: {scale:g} × city, {days} days")
            start = time.perf_counter()
            info = backfill.backfill(url, scale, days, jobs)
            with psycopg.connect(url, autocommit=True) as conn:
                refresh_rollups(conn)
                doc["fill_s"] = round(time.perf_counter() - start, 1)
                doc["ledgers"] = make_ledgers(conn)
            first = max(info["start"].date(), today - timedelta(days=days - 1))
        if fill_only:
            return doc
        if keep is not None and _snapshotted(url, first):
            say(f"snapshots of {first} .. already stored: the daily job only")
            doc["snapshot"] = measure_snapshots(url, first, today, period=False)
        else:
            say(f"snapshots: {first} .. {today}")
            doc["snapshot"] = measure_snapshots(url, first, today)
        with psycopg.connect(url) as conn:
            doc["kpi_values_with_data"] = conn.execute(
                "SELECT count(*) FILTER (WHERE value IS NOT NULL), count(*) FROM kpi_daily "
                "WHERE day = %s",
                (today,),
            ).fetchone()
        say("endpoints")
        doc["endpoints"], doc["endpoints_after_change"] = measure_endpoints(url, first, repeats)
        say("report")
        doc["report"] = measure_report(url, today, report_runs)
    worst_report = max(doc["report"]["text"]["max_s"], doc["report"]["xlsx"]["max_s"])
    doc["met"] = {
        "endpoints_p99": doc["endpoints"]["all"]["p99_ms"] <= ENDPOINT_P99_MS,
        "endpoints_after_change_p99": (
            doc["endpoints_after_change"]["all"]["p99_ms"] <= ENDPOINT_P99_MS
        ),
        "report": worst_report <= REPORT_S,
    }
    return doc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.plan",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--admin-url",
        default="postgresql://127.0.0.1:5432/postgres",
        help="a server where the bench may create and drop databases uw_bench_*",
    )
    p.add_argument("--scale", type=float, default=0.05, help="share of the city fleet (1 = 71k)")
    p.add_argument("--days", type=int, default=90, help="days of readings, ending today")
    p.add_argument("--jobs", type=int, default=2, help="backends writing the backfill")
    p.add_argument(
        "--repeats", type=int, default=20, help="requests per endpoint (at least one per URL)"
    )
    p.add_argument("--report-runs", type=int, default=3, help="runs of each report format")
    p.add_argument("--note", default="", help="a remark stored with the figures")
    p.add_argument(
        "--keep-db",
        metavar="NAME",
        help="fill (once) and keep this database instead of a fresh one dropped afterwards; "
        "a later run with the same NAME reuses its fill, ledgers and stored snapshots "
        "(drop it yourself when done)",
    )
    p.add_argument("--fill-only", action="store_true", help="with --keep-db: fill and stop")
    p.add_argument("--output", type=Path, default=RESULTS / "plan.json")
    args = p.parse_args(argv)
    if args.scale <= 0 or args.days < 1:
        p.error("--scale must be > 0 and --days ≥ 1")
    started = time.monotonic()
    doc = run(
        args.admin_url,
        args.scale,
        args.days,
        args.jobs,
        args.repeats,
        args.report_runs,
        progress=lambda s: print(f"bench.plan: {s}", file=sys.stderr, flush=True),
        keep=args.keep_db,
        fill_only=args.fill_only,
    )
    if args.fill_only:
        print(f"filled {args.keep_db}: {doc.get('fill_s')} s")
        return 0
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    doc["note"] = args.note
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n")
    e, r, s = doc["endpoints"]["all"], doc["report"], doc["snapshot"]
    c = doc["endpoints_after_change"]["all"]
    print(
        f"endpoints p50 {e['p50_ms']} ms, p99 {e['p99_ms']} ms (target ≤ {ENDPOINT_P99_MS}); "
        f"after a change p50 {c['p50_ms']} ms, p99 {c['p99_ms']} ms ("
        + ", ".join(
            f"{f} {v['all']['p99_ms']}"
            for f, v in doc["endpoints_after_change"].items()
            if f != "all"
        )
        + "); "
        f"report text {r['text']['median_s']} s, xlsx {r['xlsx']['median_s']} s "
        f"(target ≤ {REPORT_S:g}); snapshots {s.get('period_days', 'reused')} days in "
        f"{s.get('period_total_s', '-')} s, daily job {s['daily_job_s']} s; "
        f"wrote {args.output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
