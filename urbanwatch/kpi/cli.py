"""`urbanwatch kpi list|snapshot|show`: the plan KPIs from the shell."""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, date, datetime
from typing import Any

from urbanwatch import db
from urbanwatch.audit import Actor
from urbanwatch.errors import UsageError
from urbanwatch.kpi import snapshot
from urbanwatch.kpi.base import LOCAL, NO_DATA, effective_config, load_all
from urbanwatch.ledgers import candidates, verify
from urbanwatch.settings import Settings


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def today_local() -> date:
    return datetime.now(LOCAL).date()


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    for key, spec in load_all().items():
        print(f"{key:45} {spec.unit:6} {spec.section:5} {spec.title_zh} / {spec.title_en}")
    return 0


def cmd_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    days = snapshot.days_to_snapshot(today_local(), args.date, args.since)
    with db.connect(settings.database_url, autocommit=True) as conn:
        counts = verify.verify_points(conn, datetime.now(UTC), Actor.service("kpi-snapshot"))
        print(f"waterlog points verified by data: {counts}")
        opened = candidates.open_candidates(conn, Actor.service("kpi-snapshot"))
        print(f"manhole defect candidates opened from sensor alerts: {opened}")
        for day in days:
            started = time.monotonic()
            n = snapshot.snapshot_day(conn, day, settings.kpi_config)
            print(f"{day}: {n} KPI value(s) stored in {time.monotonic() - started:.2f} s")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    spec = load_all().get(args.kpi)
    if spec is None:
        raise UsageError(f"no KPI {args.kpi!r} (see `urbanwatch kpi list`)")
    day = args.date or today_local()
    with db.connect(settings.database_url) as conn:
        try:
            scope = snapshot.scope_named(conn, args.scope)
        except KeyError:
            raise UsageError(
                f"--scope: {args.scope!r} is not city, central, county or a district code"
            ) from None
        config = effective_config(spec, settings.kpi_config.get(spec.key))
        value = spec.compute(conn, day, scope, config)
        items = spec.items(conn, day, scope, config) if args.items and spec.items else []
    shown = NO_DATA if value.value is None else f"{value.value:.2f} {spec.unit}"
    print(f"{spec.title_zh} {spec.title_en} ({scope.name}, {day}): {shown}")
    print(f"  numerator {value.numerator}, denominator {value.denominator}")
    if value.defaults:
        print(f"  defaults used: {json.dumps(dict(value.defaults), ensure_ascii=False)}")
    if value.exclusions:
        print(f"  excluded: {len(value.exclusions)} ({', '.join(value.exclusions[:5])}…)")
    for item in items[: args.limit]:
        print("  " + json.dumps(item, ensure_ascii=False, default=str))
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "kpi",  # snapshot first verifies waterlog points by data (ledgers verify)
        help="plan KPIs: list them, store daily snapshots, show one with the list behind it",
        description="The plan KPIs (docs/kpis.md). `snapshot` stores each KPI per scope "
        "(city, central, county, each district) in kpi_daily with its numerator, denominator "
        "and exclusions; by default today and the 3 days before (late data).",
    )
    p.set_defaults(func=None, parser=p)
    ks = p.add_subparsers(dest="kpi_command", metavar="ACTION")
    a = ks.add_parser("list", help="every registered KPI")
    a.set_defaults(func=cmd_list)
    a = ks.add_parser("snapshot", help="compute and store daily values")
    when = a.add_mutually_exclusive_group()
    when.add_argument("--date", type=_date, help="only this local day (YYYY-MM-DD)")
    when.add_argument("--since", type=_date, help="every day from this one to today")
    a.set_defaults(func=cmd_snapshot)
    a = ks.add_parser(
        "show", help="one KPI now (or on --date), and with --items the list behind it"
    )
    a.add_argument("kpi")
    a.add_argument("--date", type=_date)
    a.add_argument("--scope", default="city", help="city, central, county or a district code")
    a.add_argument("--items", action="store_true", help="print the covers/points/dangers behind it")
    a.add_argument("--limit", type=int, default=50)
    a.set_defaults(func=cmd_show)
