"""`urbanwatch targets list|show|set|load`: the plan's targets as data, edited from the shell."""

from __future__ import annotations

import argparse
from typing import Any

from urbanwatch import audit, db
from urbanwatch.errors import UsageError
from urbanwatch.plan import targets
from urbanwatch.queries import targets as queries
from urbanwatch.settings import Settings


def describe_line(t: targets.Target) -> str:
    line = f"{t.comparator} {t.target_value:g} {t.unit}" if t.comparator else "(no KPI line)"
    when = t.deadline.isoformat() if t.deadline else "ongoing"
    return f"{t.id:5} {line:14} {when:10}  {t.scope:8} {t.title_zh}"


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        found = queries.list_targets(conn)
    if not found:
        print("no targets stored; `urbanwatch migrate` seeds the plan's")
    for t in found:
        print(describe_line(t))
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        target = queries.get_target(conn, args.id)
        if target is None:
            raise UsageError(f"no target {args.id!r} (see `urbanwatch targets list`)")
        history = queries.list_history(conn, args.id)
    for name, value in target.model_dump().items():
        if isinstance(value, list):
            value = "、".join(value)
        print(f"{name:14} {value if value is not None else '—'}")
    print("history:")
    for h in history:
        changed = sorted(k for k in h.after if (h.before or {}).get(k) != h.after[k])
        what = "created" if h.action == "create" else f"changed {', '.join(changed)}"
        print(f"  {h.changed_at:%Y-%m-%d %H:%M} {h.changed_by}: {what}")
    return 0


def cmd_set(args: argparse.Namespace, settings: Settings) -> int:
    try:
        changes = targets.parse_assignments(args.assignments)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    with db.connect(settings.database_url) as conn:
        try:
            before, after = targets.edit_target(conn, args.id, changes, audit.Actor.cli())
        except KeyError:
            raise UsageError(f"no target {args.id!r} (see `urbanwatch targets list`)") from None
        except ValueError as exc:
            raise UsageError(f"{args.id}: {exc}") from None
    if before == after:
        print(f"{args.id}: unchanged")
    else:
        old, new = before.model_dump(mode="json"), after.model_dump(mode="json")
        for name in (k for k in new if old[k] != new[k]):
            print(f"{args.id}.{name}: {old[name]!r} -> {new[name]!r}")
    return 0


def cmd_load(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        created, replaced = targets.seed_targets(conn, audit.Actor.cli(), replace=args.replace)
    print(f"targets: {created} created, {replaced} replaced from the shipped plan")
    return 0


def register_targets(sub: Any) -> None:
    p = sub.add_parser(
        "targets",
        help="the plan's targets (安政办〔2021〕23号): list, show, set, load",
        description="The plan's targets as data: KPI, scope, comparator and value, deadline, "
        "lead and partner units and the plan's clause. Edits keep their history.",
    )
    p.set_defaults(func=None, parser=p)
    tsub = p.add_subparsers(dest="targets_command", metavar="ACTION")
    a = tsub.add_parser("list", help="one line per target")
    a.set_defaults(func=cmd_list)
    a = tsub.add_parser("show", help="every field of one target and its history")
    a.add_argument("id", help="T1, T2a, ...")
    a.set_defaults(func=cmd_show)
    a = tsub.add_parser(
        "set",
        help="change fields of a target (kept in its history and the audit log)",
        description="Change fields: `urbanwatch targets set T3 target_value=80 "
        "deadline=2024-06-30`. Lists (lead_units, partner_units) are comma-separated; "
        "`null` clears a field. Fields: " + ", ".join(targets.EDITABLE) + ".",
    )
    a.add_argument("id", help="T1, T2a, ...")
    a.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    a.set_defaults(func=cmd_set)
    a = tsub.add_parser(
        "load",
        help="seed the plan's targets shipped with urbanwatch",
        description="Insert the shipped targets (urbanwatch/plan/targets.yaml) that are "
        "missing; edited targets are kept unless --replace. `urbanwatch migrate` runs the "
        "same seed (without --replace) on every run, so this is needed only for --replace.",
    )
    a.add_argument("--replace", action="store_true", help="overwrite edits with the shipped text")
    a.set_defaults(func=cmd_load)
