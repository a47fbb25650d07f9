"""`urbanwatch alerts`: run the engine, check or load rule files, show or set the SLA."""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import Any

from alerts.detectors import default_detectors, parse_config
from alerts.detectors.cli import register_daily
from alerts.detectors.nightly import NightlyTimer
from alerts.notify.cli import register_notify
from alerts.service import AlertService
from alerts.session import ClaimRefused
from alerts.sla_cli import register_sla
from urbanwatch import db
from urbanwatch.alerting import RuleFileError, RuleSet, parse_rules
from urbanwatch.audit import Actor
from urbanwatch.errors import RuntimeProblem, UsageError
from urbanwatch.queries import rules as rule_queries
from urbanwatch.settings import Settings

logger = logging.getLogger("alerts")


def register(sub: Any) -> None:
    alerts = sub.add_parser(
        "alerts",
        help="the alert engine and its rules",
        description="Raise and clear alerts from live telemetry (docs/alerts.md).",
    )
    alerts.set_defaults(func=None, parser=alerts)
    asub = alerts.add_subparsers(dest="alerts_command", metavar="ACTION")
    p = asub.add_parser(
        "run",
        help="run the alert engine until Ctrl-C or SIGTERM",
        description="Subscribe (MQTT 5, QoS 1, its own persistent session) to telemetry and "
        "status under the topic prefix, evaluate the rules stored in the database (the "
        "shipped defaults until a set is loaded) and write alerts and alert_events. A "
        "message is acknowledged only after its alert changes are committed. Offline and "
        "minimum durations run on timers that survive a restart. ALERTS_PARTITIONS=N lets N "
        "engines split the devices (each takes a free slot). The daily MNF rules run once "
        "per night, DETECTORS_CONFIG daily_delay_s (900) after 05:00 local, in one of the "
        "engines; missed nights are caught up.",
    )
    p.set_defaults(func=cmd_run)
    rules = asub.add_parser(
        "rules", help="check or load a rule file", description="Rule files (YAML)."
    )
    rules.set_defaults(func=None, parser=rules)
    rsub = rules.add_subparsers(dest="rules_command", metavar="ACTION")
    p = rsub.add_parser(
        "check",
        help="validate a rule file",
        description="Validate a rule file; a broken one is refused as a whole, each problem "
        "with its line and field. Without FILE, the shipped defaults are checked.",
    )
    p.add_argument("file", nargs="?", help="a YAML rule file (default: the shipped rules)")
    p.set_defaults(func=cmd_check)
    p = rsub.add_parser(
        "load",
        help="validate a rule file and store it as the rules in force (audited)",
        description="Validate FILE and replace the stored rules and overrides with it in one "
        "transaction, recorded in the audit log. Running engines pick it up within "
        "ALERTS_RULES_POLL_S.",
    )
    p.add_argument("file", help="a YAML rule file")
    p.add_argument("--note", help="why (kept in the audit log)")
    p.set_defaults(func=cmd_load)
    register_daily(asub)
    register_sla(asub)
    register_notify(asub)  # notify, receiver, routes check|load


def read_rules(path: str | None) -> RuleSet:
    if path is None:
        from urbanwatch.alerting.loader import default_rules_text

        text = default_rules_text()
    else:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read {path}: {exc}") from None
    try:
        return parse_rules(text)
    except RuleFileError as exc:
        raise UsageError(f"{path or 'rules.yaml'}: {exc}") from None


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    rules = read_rules(args.file)
    print(f"{args.file or 'shipped rules'}: {len(rules.rules)} rules, "
          f"{len(rules.overrides)} overrides, valid")  # fmt: skip
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    rules = read_rules(args.file)
    with db.connect(settings.database_url, autocommit=True) as conn:
        version = rule_queries.store_rule_set(conn, rules, Actor.cli(), args.note)
    print(f"rule set version {version}: {len(rules.rules)} rules, "
          f"{len(rules.overrides)} overrides")  # fmt: skip
    return 0


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    service = AlertService(settings, detectors=default_detectors(settings))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: service.stop.set())
    try:
        service.start()
    except ClaimRefused as exc:
        raise RuntimeProblem(f"cannot start the alert engine: {exc}") from None
    delay = parse_config(settings.detectors_config).daily_delay_s
    timer = NightlyTimer(settings.database_url, delay, service.stop)
    timer.start()
    logger.info("alerts engine running; Ctrl-C to stop")
    service.run()
    timer.join(timeout=10)
    return 0
