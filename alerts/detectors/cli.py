"""`urbanwatch alerts daily [--date D]`: the night's MNF per DMA, stored with its baseline and
completeness, and the DMA_MNF_* rules applied as alerts. Idempotent: a second run for the same
night rewrites the same rows and changes no alert; an older night never touches the alerts of a
DMA that has a newer one."""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from alerts.detectors import daily
from urbanwatch import db
from urbanwatch.errors import UsageError
from urbanwatch.queries import alerts as alert_queries
from urbanwatch.queries import detectors as q
from urbanwatch.settings import Settings


def register_daily(asub: Any) -> None:
    p = asub.add_parser(
        "daily",
        help="the nightly DMA rules (MNF rise, step, high leakage)",
        description="For each DMA: the minimum night flow of the night D (00:00-05:00 "
        "Asia/Shanghai, the lowest 1-h mean of net inflow in 15-min buckets), its baseline "
        "(20th percentile of the previous 14 valid nights) and data completeness, stored in "
        "dma_night_flow; then DMA_MNF_STEP, DMA_MNF_RISE and DMA_HIGH_LEAKAGE opened or "
        "cleared. Safe to re-run. `urbanwatch alerts run` does this by itself once per night; "
        "use this for a night by hand (a backfill, a night older than its catch-up).",
    )
    p.add_argument("--date", help="the night, YYYY-MM-DD local (default: the last complete one)")
    p.set_defaults(func=cmd_daily)


def parse_night(text: str | None, now: datetime) -> date:
    if text is None:
        return daily.last_complete_night(now)
    try:
        night = date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--date: {text!r} is not a date (YYYY-MM-DD)") from None
    if night > daily.last_complete_night(now):
        raise UsageError(f"--date: the night of {night} has not ended yet (05:00 local)")
    return night


def cmd_daily(args: argparse.Namespace, settings: Settings) -> int:
    night = parse_night(args.date, datetime.now(UTC))
    with db.connect(settings.database_url) as conn:
        results = run_night(conn, night)
        conn.commit()
    for dma, row in sorted(results.items()):
        fired = [r for r, v in row["rules"].items() if v["fired"]] or ["-"]
        print(f"{dma} {night}: MNF {row['mnf']} m³/h, baseline {row['baseline']}, "
              f"completeness {row['completeness']:.0%}, fired {', '.join(fired)}")  # fmt: skip
    if not results:
        print(f"{night}: no DMA with inlet meters")
    return 0


def run_night(conn: psycopg.Connection, night: date) -> dict[str, dict[str, Any]]:
    start, end = daily.night_window(night)
    buckets: dict[str, list[tuple[datetime, float, int]]] = {}
    for dma, bucket, net, meters in q.net_buckets(conn, start - timedelta(days=1), end):
        buckets.setdefault(dma, []).append((bucket, net, meters))
    past: dict[str, list[daily.Past]] = {}
    for dma, n, mnf, valid, base, adf, flagged in q.previous_nights(conn, night, 31):
        past.setdefault(dma, []).append(daily.Past(n, mnf, valid, base, adf, flagged))
    results: dict[str, dict[str, Any]] = {}
    for dma, (meters, properties) in q.dma_meters(conn).items():
        if not meters:
            continue
        rows = buckets.get(dma, [])
        tonight = daily.minimum_night_flow(rows, meters, start, end)
        adf = daily.average_daily_flow([r for r in rows if r[0] < start], meters)
        base, used, rules = daily.evaluate(night, tonight, past.get(dma, []), adf, properties)
        row = {
            "dma_id": dma, "night": night, "method": daily.METHOD, "mnf": tonight.mnf,
            "mnf_at": tonight.mnf_at, "completeness": tonight.completeness,
            "valid": tonight.valid, "baseline": base, "baseline_nights": used, "adf": adf,
            "properties": properties, "rules": rules,
        }  # fmt: skip
        q.save_night(conn, row)
        if q.latest_night(conn, dma) == night:
            _apply(conn, dma, end, row)
        results[dma] = row
    return results


def _apply(conn: psycopg.Connection, dma: str, end: datetime, row: dict[str, Any]) -> None:
    for rule_id, outcome in row["rules"].items():
        severity, title = daily.RULES[rule_id]
        detail = {
            "night": row["night"].isoformat(), "mnf_m3_h": row["mnf"],
            "baseline_m3_h": row["baseline"], "completeness": row["completeness"],
            "why": outcome["why"],
        }  # fmt: skip
        change = alert_queries.Change(
            action="open" if outcome["fired"] else "clear",
            rule_id=rule_id, subject=dma, kind="watermeter", severity=severity, title=title,
            at=end, started=end, detail=detail,
        )  # fmt: skip
        alert_queries.apply_change(conn, change, reopen_within_s=0)
