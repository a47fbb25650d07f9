"""`urbanwatch users add|passwd|role|disable|list` and `urbanwatch keys create|revoke|list`.

Every change is audited as `cli:<os user>@<host>`. Passwords are read from a prompt
(twice) or, with --password-stdin, from the first line of standard input; never from argv.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr, ValidationError

from urbanwatch import audit, db
from urbanwatch.errors import RuntimeProblem, UsageError
from urbanwatch.identity import accounts, passwords
from urbanwatch.identity.errors import IdentityError
from urbanwatch.identity.models import ApiKeyCreate, UserCreate, UserUpdate
from urbanwatch.identity.passwords import check_policy
from urbanwatch.identity.roles import ORDER, Role
from urbanwatch.queries import api_keys as key_queries
from urbanwatch.queries import users as user_queries
from urbanwatch.settings import Settings

ROLES = [r.value for r in ORDER]
ROLE_HELP = "viewer < crew < operator < admin (a higher role may do what a lower may)"


def read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UsageError("--password-stdin: standard input is empty")
        password = line.rstrip("\r\n")
    else:
        password = getpass.getpass("new password: ")
        if getpass.getpass("again: ") != password:
            raise UsageError("the two passwords differ")
    try:
        return check_policy(password)
    except ValueError as exc:
        raise UsageError(f"password: {exc}") from None


def _fail(exc: IdentityError) -> Exception:
    if exc.status == 422:
        return UsageError(f"{exc.field}: {exc.message}")
    return RuntimeProblem(exc.message)


def _invalid(exc: ValidationError) -> UsageError:
    first = exc.errors()[0]
    field = ".".join(map(str, first["loc"])) or "value"
    return UsageError(f"{field}: {first['msg'].removeprefix('Value error, ')}")


def _run(settings: Settings, action: Any) -> Any:
    passwords.apply_settings(settings)
    with db.connect(settings.database_url) as conn:
        try:
            with conn.transaction():
                return action(conn, audit.Actor.cli())
        except IdentityError as exc:
            raise _fail(exc) from None


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = UserCreate(
            username=args.name,
            password=SecretStr("x" * 12),  # checked with the real one below
            role=Role(args.role),
            unit=args.unit,
            display_name=args.display_name,
        )
    except ValidationError as exc:
        raise _invalid(exc) from None
    body = body.model_copy(update={"password": SecretStr(read_password(args))})
    user = _run(settings, lambda conn, actor: accounts.create_user(conn, actor, body))
    print(f"created {user.role.value} {user.username}" + (f" ({user.unit})" if user.unit else ""))
    return 0


def cmd_users_passwd(args: argparse.Namespace, settings: Settings) -> int:
    password = read_password(args)
    _run(settings, lambda conn, actor: accounts.reset_password(conn, actor, args.name, password))
    print(f"password of {args.name} changed; its sessions are signed out")
    return 0


def _update(settings: Settings, name: str, **fields: Any) -> Any:
    try:
        body = UserUpdate(**fields)
    except ValidationError as exc:
        raise _invalid(exc) from None
    return _run(settings, lambda conn, actor: accounts.update_user(conn, actor, name, body))


def cmd_users_role(args: argparse.Namespace, settings: Settings) -> int:
    fields: dict[str, Any] = {"role": Role(args.role)}
    if args.unit is not None:
        fields["unit"] = args.unit or None  # --unit '' clears it
    user = _update(settings, args.name, **fields)
    print(f"{user.username} is now {user.role.value}" + (f" ({user.unit})" if user.unit else ""))
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    user = _update(settings, args.name, disabled=not args.enable)
    print(f"{user.username} {'disabled' if user.disabled else 'enabled'}")
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        users = user_queries.list_users(conn)
    for u in users:
        state = "disabled" if u.disabled else "active"
        print(f"{u.username:24} {u.role.value:9} {state:9} {u.unit or '-'}")
    print(f"{len(users)} account(s)")
    return 0


def expiry(text: str) -> datetime:
    """`90d` (days from now) or an ISO 8601 time with its zone."""
    if text.endswith("d") and text[:-1].isdigit() and int(text[:-1]) > 0:
        return datetime.now(UTC) + timedelta(days=int(text[:-1]))
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not Nd (e.g. 90d) or an ISO time") from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no time zone (add +08:00 or Z)")
    return value


def cmd_keys_create(args: argparse.Namespace, settings: Settings) -> int:
    try:
        body = ApiKeyCreate(
            name=args.name, role=Role(args.role), unit=args.unit, expires_at=args.expires
        )
    except ValidationError as exc:
        raise _invalid(exc) from None
    created = _run(settings, lambda conn, actor: accounts.create_key(conn, actor, body))
    until = created.expires_at.isoformat() if created.expires_at else "never"
    print(
        f"API key {created.id} ({created.role.value}, expires {until}); shown once, store it now:",
        file=sys.stderr,
    )
    print(created.key.get_secret_value())
    return 0


def cmd_keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    key = _run(settings, lambda conn, actor: accounts.revoke_key(conn, actor, args.key_id))
    print(f"API key {key.id} revoked at {key.revoked_at:%Y-%m-%d %H:%M:%S %Z}")
    return 0


def cmd_keys_list(args: argparse.Namespace, settings: Settings) -> int:
    with db.connect(settings.database_url) as conn:
        keys = key_queries.list_keys(conn, include_revoked=args.all)
    for k in keys:
        state = (
            "revoked"
            if k.revoked_at
            else f"expires {k.expires_at:%Y-%m-%d}"
            if k.expires_at
            else "active"
        )
        print(f"{k.id:14} {k.role.value:9} {state:18} {k.name}")
    print(f"{len(keys)} key(s)")
    return 0


def _no_password_on_argv(text: str) -> str:
    raise argparse.ArgumentTypeError(
        "passwords are not taken on the command line (shell history, ps): use the prompt or "
        "--password-stdin"
    )


def _password_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input instead of a prompt",
    )
    # Caught by name so that argparse neither takes it for --password-stdin nor echoes it.
    p.add_argument("--password", type=_no_password_on_argv, help=argparse.SUPPRESS)


def register_users(sub: Any) -> None:
    users = sub.add_parser(
        "users",
        help="people's API accounts (admin, operator, crew, viewer)",
        description=f"Manage the API's accounts. Roles: {ROLE_HELP}. Changes are audited as "
        "cli:<you>@<host>. Passwords come from a prompt or --password-stdin, never the "
        "command line.",
    )
    users.set_defaults(func=None, parser=users)
    s = users.add_subparsers(dest="users_command", metavar="ACTION")
    p = s.add_parser("add", help="create an account", description="Create an account.")
    p.add_argument("name", help="user name: lower case letters, digits, . _ - (max 64)")
    p.add_argument("--role", choices=ROLES, required=True, help=ROLE_HELP)
    p.add_argument("--unit", help="for crew: the unit whose alerts they work, e.g. 城管局")
    p.add_argument("--display-name", help="a name people recognize, e.g. 李伟")
    _password_option(p)
    p.set_defaults(func=cmd_users_add)
    p = s.add_parser("passwd", help="set a new password (signs the account out)")
    p.add_argument("name")
    _password_option(p)
    p.set_defaults(func=cmd_users_passwd)
    p = s.add_parser("role", help="change an account's role (and unit)")
    p.add_argument("name")
    p.add_argument("role", choices=ROLES, help=ROLE_HELP)
    p.add_argument("--unit", help="the crew's unit ('' clears it)")
    p.set_defaults(func=cmd_users_role)
    p = s.add_parser("disable", help="disable an account (signs it out); --enable undoes it")
    p.add_argument("name")
    p.add_argument("--enable", action="store_true", help="enable the account again")
    p.set_defaults(func=cmd_users_disable)
    p = s.add_parser("list", help="every account with its role, state and unit")
    p.set_defaults(func=cmd_users_list)


def register_keys(sub: Any) -> None:
    keys = sub.add_parser(
        "keys",
        help="API keys for integrators (X-API-Key header)",
        description="Manage API keys. A key has a role and an optional expiry; it is printed "
        "once at creation (only its hash is stored). Changes are audited as cli:<you>@<host>.",
    )
    keys.set_defaults(func=None, parser=keys)
    s = keys.add_subparsers(dest="keys_command", metavar="ACTION")
    p = s.add_parser(
        "create",
        help="create a key and print it once (on stdout; the notice goes to stderr)",
    )
    p.add_argument("--name", required=True, help="what uses it, e.g. 'city dashboard'")
    p.add_argument("--role", choices=ROLES, required=True, help=ROLE_HELP)
    p.add_argument("--unit", help="for crew keys: the unit")
    p.add_argument("--expires", type=expiry, help="Nd (e.g. 90d) or an ISO time with zone")
    p.set_defaults(func=cmd_keys_create)
    p = s.add_parser("revoke", help="revoke a key (refused from the next request on)")
    p.add_argument("key_id", help="the key's id (`urbanwatch keys list`)")
    p.set_defaults(func=cmd_keys_revoke)
    p = s.add_parser("list", help="keys with role, expiry and name (not the keys themselves)")
    p.add_argument("--all", action="store_true", help="include revoked keys")
    p.set_defaults(func=cmd_keys_list)
