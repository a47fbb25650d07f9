"""Run every benchmark in one go and write bench/results/<part>.json and latest.md.

    .venv/bin/python -m bench.run [--quick] [--timescale-url URL] [--only ceiling,ingest,...]

BENCH_DATABASE_URL   admin connection to the PostgreSQL server (default 127.0.0.1:5432)
TIMESCALE_BENCH_URL  admin connection to a server with TimescaleDB (optional; without it
                     the TimescaleDB figures are skipped and the table says so)
Databases are created as uw_bench_* and dropped; brokers run on free ports.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import ceiling, ingest_throughput, latency, queries, report
from bench.harness import machine_info

RESULTS = Path(__file__).resolve().parent / "results"
PARTS = ("ceiling", "ingest", "latency", "queries")
# Optional parts, only with --only (over 60 s): the alert engine (bench/alerts.py).
OPTIONAL = ("alerts",)


def _timescale_url(url: str | None) -> tuple[str | None, str]:
    if not url:
        return None, "no --timescale-url / TIMESCALE_BENCH_URL given"
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            ok = conn.execute(
                "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
    except psycopg.OperationalError as exc:
        return None, f"cannot reach {url}: {str(exc).strip().splitlines()[0]}"
    return (url, "") if ok and ok[0] else (None, f"{url} has no timescaledb extension")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="seconds instead of minutes: a smoke run")
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    p.add_argument("--timescale-url", default=os.environ.get("TIMESCALE_BENCH_URL"))
    p.add_argument(
        "--only", default=",".join(PARTS), help=f"comma-separated: {', '.join(PARTS + OPTIONAL)}"
    )
    p.add_argument("--backfill-scale", type=float, help="fraction of city scale (default 0.05)")
    p.add_argument("--backfill-days", type=int, help="days of backfill (default 90)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    admin = args.database_url or "postgresql://127.0.0.1:5432/postgres"
    ts_url, ts_note = _timescale_url(args.timescale_url)
    scale = args.backfill_scale or (0.005 if args.quick else 0.05)
    days = args.backfill_days or (14 if args.quick else 90)
    wanted = [part.strip() for part in args.only.split(",") if part.strip()]
    suffix = "-quick" if args.quick else ""
    RESULTS.mkdir(exist_ok=True)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        **machine_info(),
        "timescale": "present" if ts_url else f"skipped: {ts_note}",
    }
    results: dict = {"meta": meta}
    started = time.monotonic()
    for part in wanted:
        t = time.monotonic()
        print(f"== {part}", file=sys.stderr, flush=True)
        if part == "ceiling":
            results[part] = ceiling.run(admin, args.quick)
        elif part == "ingest":
            results[part] = ingest_throughput.run(admin, args.quick)
        elif part == "latency":
            results[part] = latency.run(admin, args.quick)
        elif part == "queries":
            results[part] = queries.run(admin, ts_url, scale, days, args.quick)
        elif part == "alerts":
            from bench import alerts  # the city fleet and the simulator: loaded only if asked

            results[part] = alerts.run(admin, args.quick)
        else:
            p.error(f"unknown part {part!r}")
        results[part]["elapsed_s"] = round(time.monotonic() - t, 1)
        out = RESULTS / f"{part}{suffix}.json"
        out.write_text(json.dumps({"meta": meta, part: results[part]}, indent=2, default=str))
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    city = RESULTS / "queries-city.json"  # bench/city.py: too long for this run
    if city.exists() and not args.quick:
        results["city"] = json.loads(city.read_text())
    plan = RESULTS / "plan.json"  # bench/plan.py: run apart too
    if plan.exists() and not args.quick:
        results["plan"] = json.loads(plan.read_text())
    markdown = report.render(results)
    (RESULTS / f"latest{suffix}.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
