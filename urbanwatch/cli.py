"""The `urbanwatch` command. Core subcommands live here; services add theirs through the
`urbanwatch.commands` entry-point group (see pyproject.toml), so this shared package never
imports a service. An entry point is named after the command it adds: `urbanwatch simulate
...` loads only the `simulate` service, `urbanwatch --help` loads them all.

Errors: commands raise `urbanwatch.errors.UsageError` / `RuntimeProblem` and `main` prints
one line and exits 2 / 1 (the contract is in `urbanwatch/errors.py`). A command with
actions (`devices import|count`) sets `func=None, parser=<its parser>` as defaults, so that
naming it without an action prints its help and exits 2.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import traceback
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import NoReturn

import psycopg

from urbanwatch import __version__, db, registry
from urbanwatch.arguments import positive_number, whole_number
from urbanwatch.audit import Actor
from urbanwatch.credentials import cli as credentials_cli
from urbanwatch.errors import EXIT_INTERRUPTED, EXIT_USAGE, RuntimeProblem, UsageError, explain
from urbanwatch.identity.bootstrap import ensure_admin
from urbanwatch.migrate import migrate
from urbanwatch.plan.targets import seed_targets
from urbanwatch.queries import meta, rollups
from urbanwatch.retry import Backoff, first_line
from urbanwatch.settings import Settings, load_settings

logger = logging.getLogger("urbanwatch")

CORE_COMMANDS = ("migrate", "devices", "rollup")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (subcommand parsers are of this class too)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    created = db.ensure_database(settings.database_url)
    where = db.describe(settings.database_url)
    with db.connect(settings.database_url, autocommit=True) as conn:
        try:
            result = migrate(conn, args.storage)
        except RuntimeError as exc:  # the storage asked for cannot be had
            raise RuntimeProblem(f"cannot migrate {where}: {exc}") from exc
    if result.storage == "timescale":
        print(
            f"{where}: TimescaleDB {result.timescale_version} found: hypertables, compression, "
            "retention and hourly continuous aggregates"
        )
    else:
        print(
            f"{where}: TimescaleDB not available: plain PostgreSQL storage (BRIN indexes, "
            "date_bin rollups refreshed by `urbanwatch rollup --every 300`)"
        )
    if created:
        print(f"created database {where}")
    names = ", ".join(f"{m.version:03d}_{m.name}" for m in result.applied)
    print(f"applied {len(result.applied)} migration(s){': ' + names if names else ' (up to date)'}")
    with db.connect(settings.database_url) as conn:  # the first admin (docs/security.md)
        said = ensure_admin(conn, settings, Actor.cli())
    if said:
        print(said)
    with db.connect(settings.database_url) as conn:  # the plan's targets (docs/kpis.md)
        seeded, _ = seed_targets(conn, Actor.cli())
    if seeded:
        print(f"seeded {seeded} plan target(s) (T1-T10); edited targets are never overwritten")
    return 0


def cmd_devices_import(args: argparse.Namespace, settings: Settings) -> int:
    path = Path(args.file)
    if not path.is_file():
        raise UsageError(f"no such file: {path} (give a .csv, .geojson or .json file)")
    with db.connect(settings.database_url, autocommit=True) as conn:
        try:
            report = registry.import_file(conn, path, progress=not args.quiet)
        except ValueError as exc:
            raise UsageError(f"{path}: {exc}") from exc
    for where, reason in report.errors[: args.max_errors]:
        print(f"{path}:{where}: {reason}", file=sys.stderr)
    if len(report.errors) > args.max_errors:
        print(f"... and {len(report.errors) - args.max_errors} more bad rows", file=sys.stderr)
    print(f"imported {report.imported} device(s); {len(report.errors)} bad row(s) skipped")
    return 0 if report.ok else 1


def cmd_devices_count(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        rows = conn.execute(
            "SELECT kind, district, count(*) FROM devices GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    for kind, district, n in rows:
        print(f"{kind:12} {district:12} {n:8}")
    print(f"{'total':25} {sum(r[2] for r in rows):8}")
    return 0


def cmd_rollup(args: argparse.Namespace, settings: Settings) -> int:
    if args.every is None:
        with db.connect(settings.database_url, autocommit=True) as conn:
            print(rollups.refresh_rollups(conn))
        return 0
    return run_rollup_timer(settings, args.every)


def run_rollup_timer(settings: Settings, every_s: float) -> int:
    """Refresh the rollups every `every_s` seconds until SIGTERM/Ctrl-C. On TimescaleDB the
    continuous aggregates refresh by their own policy, and the timer says so and idles."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    backoff = Backoff(1.0, every_s)
    while not done.is_set():
        try:
            with db.connect(settings.database_url, autocommit=True) as conn:
                if meta.get_storage(conn) == "timescale":
                    logger.info("TimescaleDB refreshes the rollups by policy; nothing to do")
                    done.wait()
                    break
                logger.info("rollups: %s", rollups.refresh_rollups(conn))
            backoff.reset()
            done.wait(every_s)
        except psycopg.OperationalError as exc:
            delay = backoff.next()
            logger.warning("database unavailable (%s); retrying in %.0f s", first_line(exc), delay)
            done.wait(delay)
    return 0


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with `command`, only the service that provides it is loaded
    (all of them for an unknown or missing command, none for a core one)."""
    parser = Parser(
        prog="urbanwatch",
        description="Watch a city's street infrastructure live and track its improvement plan. "
        "Settings come from the environment: DATABASE_URL, MQTT_URL, MQTT_TOPIC_PREFIX "
        "(see README.md).",
    )
    parser.add_argument("--version", action="version", version=f"urbanwatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug lines")
    parser.set_defaults(func=None, parser=parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "migrate",
        help="create the database if needed and apply the schema",
        description="Create the database if it is missing and apply every pending "
        "migration. Uses TimescaleDB when the server can load it. Then creates the first "
        "admin from URBANWATCH_ADMIN_PASSWORD (when none exists) and seeds the plan's "
        "targets T1-T10 that are missing; a target edited with `targets set` or the API is "
        "never overwritten (`targets load --replace` restores the shipped text).",
    )
    p.add_argument(
        "--storage",
        choices=("auto", "timescale", "plain"),
        default="auto",
        help="storage back-end for a new database (default: auto-detect)",
    )
    p.set_defaults(func=cmd_migrate)

    devices = sub.add_parser(
        "devices", help="the device registry", description="Manage the device registry."
    )
    devices.set_defaults(func=None, parser=devices)
    dsub = devices.add_subparsers(dest="devices_command", metavar="ACTION")
    p = dsub.add_parser(
        "import",
        help="upsert devices from a CSV or GeoJSON file",
        description="Upsert devices from CSV (columns device_id,kind,district,lat,"
        "lon plus optional status,installed_at,commissioned_at and attribute "
        "columns) or GeoJSON points (properties as the CSV columns). Good rows "
        "are imported; each bad row is reported with its line and reason, and "
        "the exit status is 1 when any row was bad.",
    )
    p.add_argument("file", help="a .csv, .geojson or .json file")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--max-errors", type=whole_number(0), default=50, help="bad rows to print (default 50)"
    )
    p.set_defaults(func=cmd_devices_import)
    p = dsub.add_parser("count", help="devices per kind and district")
    p.set_defaults(func=cmd_devices_count)
    credentials_cli.register_devices(dsub)  # broker accounts (issue #9)

    p = sub.add_parser(
        "rollup",
        help="bring the hourly rollups up to date (once, or on a timer)",
        description="Materialize complete hours of the <kind>_hourly and "
        "<kind>_district_hourly rollups (refreshes the continuous aggregates on "
        "TimescaleDB). With --every, keep doing it: the timer plain PostgreSQL storage "
        "needs (TimescaleDB refreshes by its own policy).",
    )
    p.add_argument(
        "--every",
        type=positive_number(),
        metavar="SECONDS",
        help="refresh every SECONDS until stopped (e.g. 300, as `make demo` runs it)",
    )
    p.set_defaults(func=cmd_rollup)

    for ep in _services(command):
        try:
            register = ep.load()
        except Exception as exc:  # one broken service must not take the rest down
            print(f"urbanwatch: the {ep.name!r} command is unavailable: {exc!r}", file=sys.stderr)
            continue
        register(sub)
    return parser


def _services(command: str | None) -> list[EntryPoint]:
    """The entry points to load for `command`: importing every service (FastAPI, paho, the
    simulator) costs about a second, which a core command or another service need not pay."""
    if command in CORE_COMMANDS:
        return []
    found = sorted(entry_points(group="urbanwatch.commands"), key=lambda e: e.name)
    return [ep for ep in found if ep.name == command] or found


def _command_in(argv: list[str]) -> str | None:
    """The command named in `argv`: its first word that is not an option (the top-level
    options take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    """Run one command; user errors end in one line on stderr (exit 2 for usage, 1 for
    runtime), Ctrl-C in exit 130, and tracebacks are printed only with -v."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        return run(argv)
    except KeyboardInterrupt:
        print("urbanwatch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run(argv: list[str]) -> int:
    parser = build_parser(_command_in(argv))
    args = parser.parse_args(argv)
    if args.func is None:  # a command group without its action, or no command at all
        args.parser.print_help(sys.stderr)
        return EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    database = None
    try:
        settings = load_settings()
        database = db.describe(settings.database_url)
        return int(args.func(args, settings) or 0)
    except Exception as exc:
        return report(exc, database, verbose=args.verbose)


def report(exc: Exception, database: str | None, *, verbose: bool) -> int:
    """Print the one line `explain` makes of `exc` (after its traceback with -v)."""
    status, line = explain(exc, database)
    if verbose:
        traceback.print_exception(exc)
    elif line.startswith("internal error"):
        line += " (run with -v for the traceback)"
    print(f"urbanwatch: {line}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
