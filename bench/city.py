"""Queries and storage at full city scale: the issue's "90 days of city-scale data".

    .venv/bin/python -m bench.city --timescale-url "$TIMESCALE_BENCH_URL"   # ≈ 1–1.5 h here

Too long for `make bench` (10 minutes), so it runs on its own and writes
bench/results/queries-city.json, which `bench.run` adds to latest.md. One server at a
time (filled, queried, dropped), so neither shares the cores with the other's timings and
the disk holds one city at a time. The backfill settles each day as live operation would
(rollups refreshed; TimescaleDB compresses chunks older than 7 days as it goes), with
`--jobs` backends writing disjoint slices of the fleet.

Before filling a server it estimates the disk the run needs and refuses, saying how many
days would fit, when the server's data directory (local servers only) has less free.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from datetime import UTC, datetime

import psycopg

from bench import backfill, queries
from bench.harness import machine_info
from bench.run import RESULTS, _timescale_url

# Bytes on disk per reading, measured at 0.05 x city scale (bench/results/queries.json):
# table + indexes + the two hourly rollups; TimescaleDB after compression, plus 8 days
# uncompressed at the head. A 15 % margin covers WAL and sort spills.
BYTES_PER_READING = {"plain": 219 + 94, "timescale": 76 + 88}
UNCOMPRESSED_PER_READING = 217 + 88
MARGIN = 1.15


def needed_bytes(storage: str, scale: float, days: int) -> int:
    per_day = backfill.readings_per_day(scale)
    if storage == "plain":
        return int(per_day * days * BYTES_PER_READING["plain"] * MARGIN)
    head = min(days, 8)
    return int(
        per_day
        * (head * UNCOMPRESSED_PER_READING + (days - head) * BYTES_PER_READING["timescale"])
        * MARGIN
    )


def free_bytes(admin_url: str) -> int | None:
    """Free space where the server keeps its data, if that directory is on this machine."""
    with psycopg.connect(admin_url) as conn:
        row = conn.execute("SHOW data_directory").fetchone()
    path = row[0] if row else ""
    return shutil.disk_usage(path).free if path and os.path.isdir(path) else None


def check_disk(admin_url: str, storage: str, scale: float, days: int) -> str | None:
    """None if the run fits (or cannot be checked), else why not and what would fit."""
    free = free_bytes(admin_url)
    need = needed_bytes(storage, scale, days)
    if free is None or need <= free:
        return None
    fits = max(d for d in range(0, days + 1) if needed_bytes(storage, scale, d) <= free)
    return (
        f"{storage}: {days} days at {scale:g} x city scale need ~{need / 1e9:.0f} GB, the "
        f"data directory has {free / 1e9:.0f} GB free; {fits} days would fit (--plain-days "
        "/ --timescale-days)"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.city", description=__doc__.split("\n\n")[0])
    p.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    p.add_argument("--timescale-url", default=os.environ.get("TIMESCALE_BENCH_URL"))
    p.add_argument("--scale", type=float, default=1.0, help="fraction of city scale (1.0)")
    p.add_argument("--days", type=int, default=90, help="days of data on each server (90)")
    p.add_argument("--plain-days", type=int, help="days on plain PostgreSQL (default --days)")
    p.add_argument("--timescale-days", type=int, help="days on TimescaleDB (default --days)")
    p.add_argument("--jobs", type=int, default=2, help="backends writing at once (2)")
    p.add_argument("--only", choices=("plain", "timescale"), help="one server only")
    p.add_argument(
        "--output", default=str(RESULTS / "queries-city.json"), help="where to write the result"
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    admin = args.database_url or "postgresql://127.0.0.1:5432/postgres"
    ts_url, ts_note = _timescale_url(args.timescale_url)
    servers = {}  # TimescaleDB first: the production storage
    if ts_url:
        servers["timescale"] = (ts_url, args.timescale_days or args.days)
    servers["plain"] = (admin, args.plain_days or args.days)
    if args.only:
        if args.only not in servers:
            p.error(f"no TimescaleDB server: {ts_note}")
        servers = {args.only: servers[args.only]}
    for name, (url, days) in servers.items():
        problem = check_disk(url, name, args.scale, days)
        if problem:
            p.error(problem)
    previous: dict = {}
    if args.only and os.path.exists(args.output):  # keep the other server's figures
        with open(args.output) as f:
            previous = json.load(f)
    result: dict = {
        "meta": {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            **machine_info(),
            "timescale": "present" if ts_url else f"skipped: {ts_note}",
        },
        "scale": args.scale,
        "fleet": backfill.fleet(args.scale),
        "readings_per_day": backfill.readings_per_day(args.scale),
    }
    if previous.get("scale") == args.scale:
        for name in ("plain", "timescale"):
            if name not in servers and name in previous:
                result[name] = previous[name]
    started = time.monotonic()
    for name, (url, days) in servers.items():
        problem = check_disk(url, name, args.scale, days)  # again: the last server's WAL stays
        if problem:
            print(f"skipped {problem}", file=sys.stderr)
            continue
        print(
            f"== {name}: {days} days x {backfill.readings_per_day(args.scale):,} readings/day",
            file=sys.stderr,
            flush=True,
        )
        summary = queries.run_one(url, name, args.scale, days, args.jobs, live=True)
        result[name] = {"days": days, "meta": result["meta"], **summary}
        print(name, json.dumps(summary, default=str), file=sys.stderr, flush=True)
        result["meta"]["elapsed_s"] = round(time.monotonic() - started, 1)
        with open(args.output, "w") as out:  # after each server: a long run keeps what it did
            json.dump(result, out, indent=2, default=str)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
