"""`urbanwatch devices credentials issue|rotate|revoke|list` and `urbanwatch broker sync`."""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from urbanwatch import audit, db
from urbanwatch.credentials import broker, fleet
from urbanwatch.credentials.accounts import SERVICES
from urbanwatch.errors import UsageError
from urbanwatch.queries import credentials as queries
from urbanwatch.settings import Settings

CSV_COLUMNS = ("username", "password", "client_id", "principal", "id", "kind", "topics")
# `broker sync --service-passwords-from-env`: <SERVICE>_MQTT_PASSWORD, e.g. INGEST_MQTT_PASSWORD.
SERVICE_PASSWORD_ENV = "{}_MQTT_PASSWORD"


def register_devices(dsub: Any) -> None:
    """Add `credentials` to `urbanwatch devices` (urbanwatch/cli.py calls this)."""
    p = dsub.add_parser(
        "credentials",
        help="broker accounts of devices, gateways and services",
        description="Issue, rotate, revoke and list the MQTT accounts the broker checks "
        "(docs/security-devices.md). Passwords are shown once (or written to --csv) and "
        "stored only hashed. When BROKER_AUTH_DIR is set, the broker's files are rewritten "
        "and the broker reloaded afterwards, as `urbanwatch broker sync` does.",
    )
    p.set_defaults(func=None, parser=p)
    sub = p.add_subparsers(dest="credentials_command", metavar="ACTION")
    for action, text in (
        ("issue", "give accounts without a password one"),
        ("rotate", "replace the passwords of active accounts (the old ones stop working)"),
        ("revoke", "refuse these accounts from their next connection"),
        ("list", "accounts and their state (no passwords)"),
    ):
        q = sub.add_parser(action, help=text, description=f"{text[0].upper()}{text[1:]}.")
        _selection_options(q)
        if action in ("issue", "rotate"):
            q.add_argument(
                "--csv",
                type=Path,
                metavar="FILE",
                help="write the new passwords to FILE (created, mode 0600) "
                "instead of printing them",
            )
        if action == "issue":
            q.add_argument(
                "--rotate-existing",
                action="store_true",
                help="give accounts that already have a password a new one instead of "
                "skipping them (re-provisioning, as `make demo` does)",
            )
        if action != "list":
            q.add_argument(
                "--no-sync",
                action="store_true",
                help="leave the broker's files alone (run `broker sync` later)",
            )
            q.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
        q.set_defaults(func=cmd_list if action == "list" else cmd_change, action=action)


def _selection_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("device_ids", nargs="*", metavar="DEVICE_ID", help="devices by id")
    p.add_argument("--kind", help="devices of this kind")
    p.add_argument("--district", help="devices of this district")
    p.add_argument(
        "--gateway",
        metavar="ID",
        help="devices behind this gateway (with --gateways: that gateway's account)",
    )
    p.add_argument("--gateways", action="store_true", help="gateway accounts")
    p.add_argument(
        "--service",
        action="append",
        default=[],
        choices=sorted(SERVICES),
        help="a service account (repeatable)",
    )
    p.add_argument("--all", action="store_true", help="every registered device and gateway")


def _selection(args: argparse.Namespace) -> fleet.Selection:
    return fleet.Selection(
        ids=tuple(args.device_ids),
        kind=args.kind,
        district=args.district,
        gateway=args.gateway,
        gateways=args.gateways,
        services=tuple(args.service),
        everyone=args.all,
    )


def cmd_change(args: argparse.Namespace, settings: Settings) -> int:
    out, path = _password_sink(getattr(args, "csv", None))
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    prefix = settings.mqtt_topic_prefix
    issued: list[fleet.Issued] = []

    def hand_out(i: fleet.Issued) -> None:
        issued.append(i)
        topics = " ".join(i.topics(prefix))
        kind = i.target.kind or ""
        row = (i.username, i.password, i.username, i.target.principal, i.target.principal_id)
        writer.writerow((*row, kind, topics))

    def on_disk() -> None:  # the passwords are safe in the file before their hashes commit
        out.flush()
        if path is not None:
            os.fsync(out.fileno())

    try:
        with db.connect(settings.database_url) as conn:
            targets = fleet.resolve(conn, _selection(args))
            outcome = fleet.change(
                conn,
                args.action,
                targets,
                audit.Actor.cli(),
                on_issued=hand_out,
                progress=not args.quiet,
                rotate_existing=getattr(args, "rotate_existing", False),
                before_commit=on_disk,
            )
    except BaseException:
        if path is not None:
            with suppress(OSError):
                path.unlink()
        raise
    finally:
        if path is not None:
            out.close()
    if path is None and issued:
        sys.stdout.write(out.getvalue() if isinstance(out, io.StringIO) else "")
    for username, why in outcome.skipped[:20]:
        print(f"skipped {username}: {why}", file=sys.stderr)
    verbs = {"issue": "issued", "rotate": "rotated", "revoke": "revoked"}
    done = [f"{verbs[a]} {n}" for a, n in sorted(outcome.actions.items())] or [
        f"{verbs[args.action]} 0"
    ]
    print(f"{', '.join(done)} account(s), skipped {len(outcome.skipped)}", file=sys.stderr)
    if path is not None and issued:
        print(
            f"passwords in {path} (mode 0600): hand it to the installer, then delete it",
            file=sys.stderr,
        )
    if outcome.done and not args.no_sync:
        print(sync(settings), file=sys.stderr)
    return 0


def _password_sink(path: Path | None) -> tuple[IO[str], Path | None]:
    """Where new passwords go: a new 0600 file (never an existing one), or memory until the
    commit, then stdout."""
    if path is None:
        return io.StringIO(), None
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UsageError(
            f"--csv {path}: exists; give a new file (passwords are never appended)"
        ) from None
    return os.fdopen(fd, "w", newline="", encoding="utf-8"), path


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        selection = _selection(args)
        keys = None
        if not selection.is_empty():
            targets = fleet.resolve(conn, selection)
            keys = [queries.key(t.principal, t.principal_id) for t in targets]
        rows = queries.list_credentials(conn, keys)
    for r in rows:
        state = "revoked" if r.revoked_at else "active"
        changed = r.revoked_at or r.rotated_at or r.issued_at
        print(
            f"{r.username:40} {state:8} {r.kind or r.principal:12} since {changed:%Y-%m-%d %H:%M}"
        )
    print(f"{len(rows)} account(s)", file=sys.stderr)
    return 0


def sync(settings: Settings, **overrides: Any) -> str:
    """Write the broker's files from the database and reload it; one line saying what."""
    directory = overrides.get("directory") or settings.broker_auth_dir
    if directory is None:
        return (
            "broker files not written: set BROKER_AUTH_DIR or run "
            "`urbanwatch broker sync --dir DIR`"
        )
    owner_spec = overrides.get("owner") or settings.broker_auth_owner
    owner = broker.parse_owner(owner_spec) if owner_spec else None
    with db.connect(settings.database_url) as conn:
        accounts, orphans = fleet.active_accounts(conn)
    try:
        paths = broker.write_broker_files(
            Path(directory), accounts, settings.mqtt_topic_prefix, owner
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    reloaded = broker.reload_broker(
        overrides.get("pid_file") or settings.broker_pid_file,
        overrides.get("reload_command") or settings.broker_reload_command,
    )
    left = (
        f"; left out {len(orphans)} account(s) of devices deleted or re-kinded since"
        if orphans
        else ""
    )
    return f"wrote {len(accounts)} account(s) to {paths[0]} and {paths[1]}{left}; {reloaded}"


def register_broker(sub: Any) -> None:
    """The `broker` command (entry point in pyproject.toml)."""
    p = sub.add_parser(
        "broker",
        help="the MQTT broker's accounts",
        description="The broker's password and ACL files, from the database.",
    )
    p.set_defaults(func=None, parser=p)
    bsub = p.add_subparsers(dest="broker_command", metavar="ACTION")
    q = bsub.add_parser(
        "sync",
        help="write the broker's password and ACL files and reload it",
        description="Write Mosquitto's password file and ACL file (atomically, mode 0600) "
        "from the database's active accounts, then reload the broker: SIGHUP to the pid in "
        "--pid-file, or --reload-command. Connected clients stay; revoked accounts are "
        "refused from their next connection. Defaults come from BROKER_AUTH_DIR, "
        "BROKER_PID_FILE, BROKER_RELOAD_COMMAND, BROKER_AUTH_OWNER.",
    )
    q.add_argument("--dir", type=Path, help="directory of the files `passwd` and `acl`")
    q.add_argument("--pid-file", type=Path, help="the broker's pid file")
    q.add_argument("--reload-command", help="command that makes the broker reload")
    q.add_argument("--owner", metavar="USER[:GROUP]", help="give the files to the broker's user")
    q.add_argument(
        "--service-passwords-from-env",
        action="store_true",
        help="first set each service account whose <SERVICE>_MQTT_PASSWORD is in the "
        "environment (INGEST_, ALERTS_, NOTIFY_, SIMULATOR_MQTT_PASSWORD) to that password",
    )
    q.set_defaults(func=cmd_sync)


def cmd_sync(args: argparse.Namespace, settings: Settings) -> int:
    if args.service_passwords_from_env:
        with db.connect(settings.database_url) as conn:
            for name in SERVICES:
                password = os.environ.get(SERVICE_PASSWORD_ENV.format(name.upper()))
                if password:
                    done = fleet.set_service_password(conn, name, password, audit.Actor.cli())
                    print(f"service/{name}: {done or 'unchanged'}", file=sys.stderr)
    print(
        sync(
            settings,
            directory=args.dir,
            pid_file=args.pid_file,
            reload_command=args.reload_command,
            owner=args.owner,
        )
    )
    return 0
