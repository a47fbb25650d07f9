"""`urbanwatch alerts notify | receiver | routes`: the notifier, the reference webhook
receiver and the route file (docs/notifications.md).

`register_notify(subparsers)` adds the three to the `alerts` command (alerts/cli.py).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from alerts.notify.notifier import Notifier
from alerts.notify.receiver import ReceiverState, Server
from urbanwatch import audit, db
from urbanwatch.arguments import whole_number
from urbanwatch.errors import RuntimeProblem, UsageError
from urbanwatch.queries import notify as q
from urbanwatch.routing.load import RouteFileError, default_text, parse_route_file
from urbanwatch.routing.model import RouteFile
from urbanwatch.settings import Settings

logger = logging.getLogger("alerts.notify")


def register_notify(sub: Any) -> None:
    p = sub.add_parser(
        "notify",
        help="deliver alert events to the routed crews' channels",
        description="Route every alert event (kind, district, severity -> unit -> crews -> "
        "channels, from the loaded route file), escalate alerts whose acknowledge deadline "
        "passed (again each SLA period, up to max_level) or whose on-site or resolve "
        "deadline passed (once each; table alert_sla), and deliver through a durable "
        "outbox: webhook (HMAC-signed), WeCom and DingTalk robots (markdown; digests "
        "within 20 messages a minute), MQTT "
        "{prefix}/alerts/{kind}/{device_id} (QoS 1) and email. Retries with backoff survive "
        "restarts; each event is sent once per channel with an idempotency key. Tunables: "
        "NOTIFY_* environment variables. Runs until Ctrl-C or SIGTERM.",
    )
    p.set_defaults(func=cmd_notify)

    p = sub.add_parser(
        "receiver",
        help="run the reference webhook receiver (demo, integrators)",
        description="Accept urbanwatch webhook notifications: check the HMAC-SHA256 signature "
        "(X-Urbanwatch-Signature over '{timestamp}.{body}') and a 5-minute clock skew, keep "
        "the first delivery of each Idempotency-Key as a JSON line in --log (repeats are "
        "answered 200 and not logged again) and print a readable line per alert event.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=whole_number(0), default=9080, help="port (9080)")
    p.add_argument(
        "--secret-env",
        metavar="NAME",
        help="environment variable holding the shared secret; without it signatures are "
        "not checked",
    )
    p.add_argument("--log", required=True, metavar="FILE", help="JSON-lines log to append to")
    p.set_defaults(func=cmd_receiver)

    routes = sub.add_parser(
        "routes",
        help="check or load the route file",
        description="Routing as data: a YAML file of units, channels, crews, routes and the "
        "acknowledge SLA per severity. A file with any problem is refused as a whole, with "
        "its line and field.",
    )
    routes.set_defaults(func=None, parser=routes)
    rsub = routes.add_subparsers(dest="routes_command", metavar="ACTION")
    for name, func, text in (
        ("check", cmd_routes_check, "validate a route file (nothing is written)"),
        ("load", cmd_routes_load, "replace the loaded routing with a file (audited)"),
    ):
        r = rsub.add_parser(name, help=text, description=text.capitalize() + ".")
        r.add_argument("file", nargs="?", help="the YAML file (default: the shipped routes)")
        r.set_defaults(func=func)


def read_file(path: str | None) -> tuple[str, RouteFile, str]:
    """(source, parsed file, text) or a UsageError `FILE:LINE: field: problem`."""
    source = path or "shipped:urbanwatch/routing/routes.yaml"
    if path is None:
        text = default_text()
    else:
        try:
            text = Path(path).read_text("utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"{path}: not UTF-8 text") from None
        except FileNotFoundError:
            raise UsageError(f"no such file: {path}") from None
    try:
        return source, parse_route_file(text), text
    except RouteFileError as exc:
        raise UsageError(
            f"{path or source}:{exc.line}: {exc.field or 'file'}: {exc.problem}"
        ) from exc


def cmd_routes_check(args: argparse.Namespace, settings: Settings) -> int:
    source, f, _ = read_file(args.file)
    print(f"{source}: ok: {_summary(f)}")
    return 0


def cmd_routes_load(args: argparse.Namespace, settings: Settings) -> int:
    source, f, text = read_file(args.file)
    with db.connect(settings.database_url) as conn:
        load_routes(conn, f, source, text, audit.Actor.cli())
    print(f"loaded {source} into {db.describe(settings.database_url)}: {_summary(f)}")
    return 0


def load_routes(conn: Any, f: RouteFile, source: str, text: str, actor: audit.Actor) -> None:
    """Replace the routing and write its audit entry, in one transaction."""
    sha = hashlib.sha256(text.encode()).hexdigest()
    with conn.transaction():
        before = q.read_routes(conn)
        q.replace_routes(conn, f, source, sha)
        audit.record(
            conn,
            actor,
            "load",
            "alert_routes",
            sha[:12],
            before={"routes": len(before.routes)} if before else None,
            after={
                "source": source,
                "sha256": sha,
                "routes": len(f.routes),
                "crews": sorted(f.crews),
                "channels": sorted(f.channels),
            },
        )


def _summary(f: RouteFile) -> str:
    return (
        f"{len(f.routes)} routes, {len(f.crews)} crews, {len(f.channels)} channels, "
        f"{len(f.units)} units"
    )


def cmd_notify(args: argparse.Namespace, settings: Settings) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    notifier = Notifier(settings)
    notifier.routes(notifier.conn.get())  # refuse to start without routes
    logger.info("notifier %s running; Ctrl-C to stop", notifier.name)
    notifier.run(stop)
    return 0


def cmd_receiver(args: argparse.Namespace, settings: Settings) -> int:
    secret = None
    if args.secret_env:
        secret = os.environ.get(args.secret_env)
        if not secret:
            raise UsageError(f"--secret-env: environment variable {args.secret_env} is not set")
    try:
        server = Server(args.host, args.port, ReceiverState(secret, Path(args.log)))
    except OSError as exc:
        raise RuntimeProblem(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from exc
    print(f"receiving on {server.url}; log {args.log}", flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server.start()
    stop.wait()
    server.stop()
    return 0
