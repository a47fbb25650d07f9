"""`urbanwatch report`: the plan's progress table (text, HTML for A4, CSV, Excel)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

from urbanwatch import db
from urbanwatch.errors import UsageError
from urbanwatch.kpi.cli import today_local
from urbanwatch.plan import render
from urbanwatch.plan.report import build_report
from urbanwatch.settings import Settings


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    if args.format == "xlsx" and not args.output:
        raise UsageError("--format xlsx needs --output FILE.xlsx")
    as_of = args.as_of or today_local()
    started = time.monotonic()
    with db.connect(settings.database_url) as conn:
        try:
            report = build_report(conn, as_of, district=args.district, config=settings.kpi_config)
        except KeyError:
            raise UsageError(f"--district: {args.district!r} is not a district code") from None
    if not report.rows:
        raise UsageError("no targets stored; `urbanwatch migrate` seeds the plan's")
    data: bytes
    if args.format == "text":
        data = render.to_text(report, args.lang).encode()
    elif args.format == "html":
        data = render.to_html(report, args.lang).encode()
    elif args.format == "csv":
        data = render.to_csv(report, args.lang)
    else:
        data = render.to_xlsx(report, args.lang)
    if args.output:
        Path(args.output).write_bytes(data)
        print(
            f"wrote {args.output} ({len(report.rows)} targets, {time.monotonic() - started:.2f} s)"
        )
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="the plan's progress table (Chinese first; text, HTML for A4, CSV, Excel)",
        description="Every target of the plan with its clause, lead unit, current value, "
        "target line, status (met / on track / at risk / missed), projection to the deadline "
        "with the reasoning, and the worst districts.",
    )
    p.add_argument("--as-of", type=_date, help="the local day to report on (default today)")
    p.add_argument("--district", help="one district (code), instead of each target's scope")
    p.add_argument("--format", choices=("text", "html", "csv", "xlsx"), default="text")
    p.add_argument("--lang", choices=("zh", "en"), default="zh", help="zh (default) or en")
    p.add_argument("-o", "--output", help="write to this file (needed for xlsx)")
    p.set_defaults(func=cmd_report)
