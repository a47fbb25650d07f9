"""`urbanwatch ledgers list|template|import|export|freeze|verify`: the 台账 from the shell."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from urbanwatch import audit, db
from urbanwatch.arguments import whole_number
from urbanwatch.errors import UsageError
from urbanwatch.kpi.base import day_end
from urbanwatch.ledgers import candidates, files, store, verify
from urbanwatch.ledgers.base import LedgerSpec, all_ledgers, get_ledger
from urbanwatch.queries import ledgers as queries
from urbanwatch.settings import Settings

BASELINE_LEDGERS = ("manhole_defects", "waterlog_points")


def _spec(name: str) -> LedgerSpec:
    try:
        return get_ledger(name)
    except KeyError as exc:
        raise UsageError(str(exc.args[0])) from None


def _path(text: str) -> Path:
    path = Path(text)
    try:
        files.file_format(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return path


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        for name, spec in all_ledgers().items():
            n = queries.count_rows(conn, spec)
            print(f"{name:16} {n:8}  {spec.title_zh} {spec.title_en}")
    return 0


def cmd_template(args: argparse.Namespace, settings: Settings) -> int:
    spec, path = _spec(args.ledger), _path(args.file)
    files.write_file(spec, path, [])
    print(f"wrote the {spec.title_zh} ({spec.name}) template to {path}")
    return 0


def cmd_import(args: argparse.Namespace, settings: Settings) -> int:
    spec, path = _spec(args.ledger), _path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {path}")
    try:
        parsed = files.read_file(spec, path)
    except ValueError as exc:
        raise UsageError(f"{path}: {exc}") from None
    with db.connect(settings.database_url) as conn:
        report = store.import_rows(conn, spec, parsed, audit.Actor.cli(), progress=not args.quiet)
    for warning in report.warnings:
        print(f"{path}: {warning}", file=sys.stderr)
    for line, reason in report.errors[: args.max_errors]:
        print(f"{path}:line {line}: {reason}", file=sys.stderr)
    if len(report.errors) > args.max_errors:
        print(f"... and {len(report.errors) - args.max_errors} more bad rows", file=sys.stderr)
    print(
        f"{spec.name}: {report.created} created, {report.updated} updated, "
        f"{report.unchanged} unchanged; {len(report.errors)} bad row(s) skipped"
    )
    return 1 if report.errors else 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    spec, path = _spec(args.ledger), _path(args.file)
    with db.connect(settings.database_url) as conn:
        rows = list(queries.iter_rows(conn, spec, district=args.district))
    files.write_file(spec, path, rows)
    print(f"wrote {len(rows)} {spec.name} row(s) to {path}")
    return 0


def cmd_freeze(args: argparse.Namespace, settings: Settings) -> int:
    if args.ledger not in BASELINE_LEDGERS:
        raise UsageError(f"{args.ledger}: only {' and '.join(BASELINE_LEDGERS)} have a baseline")
    actor = audit.Actor.cli()
    with db.connect(settings.database_url) as conn, conn.transaction():
        frozen = queries.freeze_baseline(conn, args.ledger, actor.name)
        if frozen:
            audit.record(conn, actor, "freeze", f"ledger:{args.ledger}", "baseline_2021")
    print(f"{args.ledger}: 2021 baseline {'frozen' if frozen else 'was already frozen'}")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    now = datetime.now(UTC) if args.as_of is None else day_end(args.as_of)
    with db.connect(settings.database_url, autocommit=True) as conn:
        counts = verify.verify_points(conn, now, audit.Actor.cli())
    print(
        f"waterlog points: {counts['verified']} verified, {counts['regressed']} regressed "
        f"(alert WL_REGRESSED raised), {counts['pending']} still pending, "
        f"{counts['no_gauge']} without a rain gauge in their district"
    )
    return 0


def cmd_candidates(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url, autocommit=True) as conn:
        created = candidates.open_candidates(conn, audit.Actor.cli())
    print(f"manhole_defects: {created} candidate(s) opened from sensor alerts")
    return 0


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def register(sub: Any) -> None:
    names = ", ".join(sorted(all_ledgers()))
    ledgers = sub.add_parser(
        "ledgers",
        help="the plan's ledgers (台账): templates, import, export",
        description=f"Ledgers the plan KPIs count ({names}). Files are CSV or Excel .xlsx "
        "with Chinese or English headers; docs/ledgers.md describes every column.",
    )
    ledgers.set_defaults(func=None, parser=ledgers)
    lsub = ledgers.add_subparsers(dest="ledgers_command", metavar="ACTION")
    p = lsub.add_parser("list", help="each ledger and its row count")
    p.set_defaults(func=cmd_list)
    p = lsub.add_parser(
        "template",
        help="write an empty template (.csv or .xlsx) to fill in",
        description="Write an empty template with the Chinese column headers; the .xlsx one "
        "has a 说明 sheet saying what each column holds.",
    )
    p.add_argument("ledger", help=names)
    p.add_argument("file", help="FILE.csv or FILE.xlsx")
    p.set_defaults(func=cmd_template)
    p = lsub.add_parser(
        "import",
        help="upsert rows from a .csv or .xlsx file",
        description="Upsert rows by the ledger's natural key: re-importing a file changes "
        "nothing. Each bad row is reported with its line and field and skipped; the good "
        "rows are kept; the exit status is 1 when any row was bad. Every change is audited.",
    )
    p.add_argument("ledger", help=names)
    p.add_argument("file", help="FILE.csv or FILE.xlsx")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--max-errors", type=whole_number(0), default=50, help="bad rows to print (default 50)"
    )
    p.set_defaults(func=cmd_import)
    p = lsub.add_parser("export", help="write the ledger to a .csv or .xlsx file")
    p.add_argument("ledger", help=names)
    p.add_argument("file", help="FILE.csv or FILE.xlsx")
    p.add_argument("--district", help="only this district (code)")
    p.set_defaults(func=cmd_export)
    p = lsub.add_parser(
        "freeze",
        help="freeze the 2021 baseline of manhole_defects or waterlog_points",
        description="After the 2021 census is imported: from now on no row can join, leave "
        "or change its baseline_2021 flag, so rates against the baseline keep their "
        "denominator (docs/domain.md §2.6, §3.6).",
    )
    p.add_argument("ledger", choices=BASELINE_LEDGERS)
    p.set_defaults(func=cmd_freeze)
    p = lsub.add_parser(
        "verify",
        help="verify accepted waterlogging points by data (docs/domain.md §3.5)",
        description="For each accepted point with a depth sensor and a pending verification: "
        "the first rain event of >= 25 mm after acceptance (at the point's gauge, or the "
        "district's first) must stay under 15 cm at the sensor until 6 h after it ends; "
        "then the point is verified, else regressed and an alert WL_REGRESSED is opened.",
    )
    p.add_argument("--as-of", type=_date, help="judge as at the end of this local day")
    p.set_defaults(func=cmd_verify)
    p = lsub.add_parser(
        "candidates",
        help="open defect candidates from MH_TILT / MH_FLIP / MH_OPEN alerts",
        description="Each MH_TILT, MH_FLIP or critical MH_OPEN alert on a cover's smart "
        "monitor becomes a manhole_defects row with status 'candidate' (once); an inspector "
        "sets it to confirmed or rejected. Candidates count in no KPI.",
    )
    p.set_defaults(func=cmd_candidates)
