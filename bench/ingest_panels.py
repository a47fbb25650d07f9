"""The live board's ingest rate and lag panels on ingest_minutes (migration 029) at city
scale: p50/p99 of each panel's SQL over the board's six hours, expanded as Grafana expands
it and run as the read-only Grafana role.

    .venv/bin/python -m bench.ingest_panels --workers 2 --days 14 --repeats 30

The panels read only ingest_minutes, whose size does not depend on the readings: one row
per minute, kind and worker (plus the dead letters' rows). The fill is the table at its
largest, the 14 days ingest keeps (urbanwatch/queries/ingest_minutes.py KEEP), for
`--workers` workers sharing the city's 2.75 M readings a day, with histograms spread over
the lag buckets; no readings are needed. Prints JSON; the database is dropped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from bench.harness import machine_info
from dashboards.build import load_json
from dashboards.macros import QueryContext, expand
from urbanwatch.kinds import KINDS
from urbanwatch.migrate import migrate

PANELS = {6: "ingest rate", 7: "ingest lag"}
READINGS_PER_DAY = 2_750_000  # the city (bench/city.py)

FILL = """
INSERT INTO ingest_minutes (minute, kind, worker, readings, late, dead_letters, lag_hist, lag_max)
SELECT m, k, 'bench-' || w, r, r / 100, 0,
       ARRAY[r * 2 / 10, r * 3 / 10, r * 2 / 10, r / 10, r / 20, r / 20, r / 40, r / 40,
             r / 100, r / 200, r / 200, r / 400, 0, 0, r / 1000],
       30 + random() * 600
FROM (SELECT m, k, w, (%(per_minute)s * (0.8 + random() * 0.4))::int AS r
      FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                           interval '1 minute') AS m,
           unnest(%(kinds)s::text[]) AS k,
           generate_series(1, %(workers)s) AS w) AS n
UNION ALL
SELECT m, '', 'bench-1', 0, 0, 3, array_fill(0, ARRAY[15]), NULL
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                     interval '1 minute') AS m
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--admin-url", default="postgresql://127.0.0.1:5432/postgres")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--repeats", type=int, default=30)
    args = p.parse_args(argv)
    name = f"uw_bench_ingeststats_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = make_conninfo(args.admin_url, dbname=name)
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, "plain")
            conn.execute(
                FILL,
                {
                    "start": end - timedelta(days=args.days),
                    "end": end,
                    "kinds": list(KINDS),
                    "workers": args.workers,
                    "per_minute": READINGS_PER_DAY / 1440 / len(KINDS) / args.workers,
                },
            )
            conn.execute("VACUUM ANALYZE ingest_minutes")
            rows = conn.execute("SELECT count(*) FROM ingest_minutes").fetchone()[0]
            board = next(b for _f, b in load_json() if b["uid"] == "uw-live")
            ctx = QueryContext(
                end - timedelta(hours=6),
                end,
                timedelta(minutes=1),
                False,
                {"kind": list(KINDS), "district": ["__all"]},
                frozenset({"kind", "district"}),
            )
            result = {}
            for panel in board["panels"]:
                if panel["id"] not in PANELS:
                    continue
                query = expand(panel["targets"][0]["rawSql"], ctx).encode()
                samples = []
                for _ in range(args.repeats):
                    with conn.transaction():
                        conn.execute("SET TRANSACTION READ ONLY")
                        conn.execute("SET LOCAL ROLE urbanwatch_grafana")
                        t = time.perf_counter()
                        out = conn.execute(query).fetchall()
                        samples.append((time.perf_counter() - t) * 1000)
                samples.sort()
                result[PANELS[panel["id"]]] = {
                    "p50_ms": round(statistics.median(samples), 1),
                    "p99_ms": round(samples[min(len(samples) - 1, int(0.99 * len(samples)))], 1),
                    "rows": len(out),
                }
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    info = {"meta": machine_info(), "ingest_minutes_rows": rows, "days": args.days}
    print(json.dumps({**info, "workers": args.workers, "panels": result}, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
