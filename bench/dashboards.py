"""Dashboard panel queries on the bench's backfill (bench/backfill.py): p50/p99 of every
panel's SQL, expanded as Grafana expands it and run as the read-only Grafana role, over the
board's default range and over the whole fill, and each board's total (issue #12 targets:
≤ 500 ms per panel, ≤ 2 s per board, on 90 days of the city).

    .venv/bin/python -m bench.dashboards --scale 1 --days 90    # the issue's data set
    .venv/bin/python -m bench.dashboards --scale 0.1 --days 30  # a few minutes

The fill's devices carry no attributes (no DMA, road, waterlog role), so the panels that
select on them scan and join the same rows but return none; their timings still count.
Writes bench/results/dashboards-<scale>x<days>d.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench import backfill
from bench.harness import bench_database, machine_info
from dashboards.build import load_json
from dashboards.macros import QueryContext, expand, parse_interval
from urbanwatch.kinds import KINDS
from urbanwatch.queries.rollups import refresh_rollups

RESULTS = Path(__file__).resolve().parent / "results"
MULTI = frozenset({"district", "kind", "dma", "road"})
PANEL_TARGET_MS, BOARD_TARGET_MS = 500, 2000


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
    p.add_argument("--days", type=int, default=90)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    with bench_database(args.admin_url, "plain", commit_log=None) as url:
        start = time.perf_counter()
        info = backfill.backfill(url, args.scale, args.days, args.jobs)
        with psycopg.connect(url, autocommit=True) as conn:
            refresh_rollups(conn)
            conn.execute("ANALYZE")
        fill_s = time.perf_counter() - start
        boards = measure(url, info, args.repeats)
    doc = {
        "meta": machine_info(),
        "storage": "plain",
        "scale": args.scale,
        "days": args.days,
        "fleet": backfill.fleet(args.scale),
        "readings_per_day": backfill.readings_per_day(args.scale),
        "fill_s": round(fill_s, 1),
        "repeats": args.repeats,
        "targets_ms": {"panel_p99": PANEL_TARGET_MS, "board": BOARD_TARGET_MS},
        "boards": boards,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"dashboards-{args.scale:g}x{args.days}d.json"
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False, default=str) + "\n", "utf-8")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
