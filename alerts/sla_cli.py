"""`urbanwatch alerts sla show|set`: the on-site and resolve periods per severity (table
`alert_sla`; the API's /alert-sla), from which alerts get their site and resolve deadlines."""

from __future__ import annotations

import argparse
from typing import Any

from pydantic import ValidationError

from urbanwatch import db
from urbanwatch.alerting.model import SEVERITIES
from urbanwatch.audit import Actor
from urbanwatch.errors import UsageError
from urbanwatch.queries import alert_sla as q
from urbanwatch.routing.model import parse_duration
from urbanwatch.settings import Settings

NONE = ("none", "-")


def register_sla(asub: Any) -> None:
    sla = asub.add_parser(
        "sla",
        help="show or set the on-site and resolve periods per severity",
        description="The periods (table alert_sla) from which an alert's on-site and resolve "
        "deadlines are set when it is written or reopened (docs/api-alerts.md).",
    )
    sla.set_defaults(func=None, parser=sla)
    ssub = sla.add_subparsers(dest="sla_command", metavar="ACTION")
    p = ssub.add_parser("show", help="print the periods of every severity")
    p.set_defaults(func=cmd_show)
    p = ssub.add_parser(
        "set",
        help="change one severity's periods (audited)",
        description="Replace SEVERITY's on-site and resolve periods, recorded in the audit log. "
        "Alerts written or reopened afterwards get the new deadlines; those already set stay.",
    )
    p.add_argument("severity", choices=SEVERITIES)
    p.add_argument("--site", required=True, type=period, help="on site within: 30m, 2h, 1d, "
                   "seconds, or none")  # fmt: skip
    p.add_argument("--resolve", required=True, type=period, help="resolved within: 24h, 3d, "
                   "seconds, or none")  # fmt: skip
    p.add_argument("--note", help="why (kept in the audit log)")
    p.set_defaults(func=cmd_set)


def period(text: str) -> int | None:
    """`30m`, `2h`, `1d`, `90s`, a whole number of seconds, or `none`."""
    if text.strip().lower() in NONE:
        return None
    try:
        value = parse_duration(int(text) if text.strip().isdigit() else text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} 不是时长 is not a period such as 30m, 2h, 3d, 90s or none"
        ) from None
    if value > q.MAX_PERIOD_S:
        raise argparse.ArgumentTypeError(f"{text!r}: 超过一年 longer than a year")
    return value


def show(seconds: int | None) -> str:
    if seconds is None:
        return "none"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        rows = q.list_sla(conn)
    print(f"{'severity':<10} {'on site':>8} {'resolve':>8}")
    for r in rows:
        print(f"{r.severity:<10} {show(r.site_s):>8} {show(r.resolve_s):>8}")
    return 0


def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    try:
        periods = q.SlaPeriods(site_s=args.site, resolve_s=args.resolve)
    except ValidationError as exc:
        raise UsageError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
    with db.connect(settings.database_url, autocommit=True) as conn:
        row = q.set_sla(conn, args.severity, periods, Actor.cli(), args.note)
    print(f"{row.severity}: on site {show(row.site_s)}, resolve {show(row.resolve_s)}")
    return 0
