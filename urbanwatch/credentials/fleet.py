"""Issue, rotate and revoke broker accounts for a selection of devices, gateways and
services, in one transaction with one audit entry each (resource `device_credential`, the
username as its id; never the password nor its hash).

A password exists only in memory until the caller hands it to the installer (`on_issued`);
the database keeps its `$7$` hash, which `broker sync` copies into Mosquitto's file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import psycopg
from tqdm import tqdm

from urbanwatch import audit
from urbanwatch.credentials.accounts import SERVICES, Account, Principal, acl_rules, username_for
from urbanwatch.credentials.hashing import hash_password, new_password, verify_password
from urbanwatch.errors import UsageError
from urbanwatch.queries import credentials as queries
from urbanwatch.queries.credentials import Target

Action = Literal["issue", "rotate", "revoke"]
RESOURCE = "device_credential"


@dataclass(frozen=True)
class Selection:
    """Who: named devices and/or device filters, the gateways, services, or everyone."""

    ids: tuple[str, ...] = ()
    kind: str | None = None
    district: str | None = None
    gateway: str | None = None
    gateways: bool = False  # gateway accounts (the one named by `gateway`, else all)
    services: tuple[str, ...] = ()
    everyone: bool = False  # every registered device and gateway

    @property
    def devices(self) -> bool:
        filtered = bool(self.ids or self.kind or self.district)
        return filtered or (self.gateway is not None and not self.gateways)

    def is_empty(self) -> bool:
        return not (self.devices or self.gateways or self.services or self.everyone)


@dataclass(frozen=True)
class Issued:
    target: Target
    username: str
    password: str

    def topics(self, prefix: str) -> list[str]:
        account = Account(self.target.principal, self.target.principal_id, "", self.target.kind)  # type: ignore[arg-type]
        return [topic for _, topic in acl_rules(account, prefix)]


@dataclass
class Outcome:
    done: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (username, why)
    actions: Counter[str] = field(default_factory=Counter)  # issue/rotate/revoke: how many


def resolve(conn: psycopg.Connection, selection: Selection) -> list[Target]:
    if selection.is_empty():
        raise UsageError(
            "say whose credentials: device ids, --kind/--district/--gateway, --gateways, "
            "--service NAME or --all"
        )
    targets: list[Target] = []
    if selection.everyone:
        targets += queries.select_devices(conn) + queries.select_gateways(conn)
    else:
        if selection.devices:
            found = queries.select_devices(
                conn,
                ids=list(selection.ids) or None,
                kind=selection.kind,
                district=selection.district,
                gateway=selection.gateway,
            )
            missing = set(selection.ids) - {t.principal_id for t in found}
            if missing:
                names = ", ".join(sorted(missing)[:5])
                raise UsageError(f"not in the registry (or outside the filter): {names}")
            targets += found
        if selection.gateways:
            found = queries.select_gateways(conn, selection.gateway)
            if selection.gateway and not found:
                raise UsageError(f"--gateway {selection.gateway!r}: no such gateway")
            targets += found
    for name in selection.services:
        if name not in SERVICES:
            raise UsageError(f"--service {name!r}: not one of {', '.join(SERVICES)}")
        targets.append(Target(principal="service", principal_id=name))
    return targets


def change(
    conn: psycopg.Connection,
    action: Action,
    targets: list[Target],
    actor: audit.Actor,
    *,
    on_issued: Callable[[Issued], None] = lambda _: None,
    progress: bool = False,
    rotate_existing: bool = False,
    before_commit: Callable[[], None] = lambda: None,
) -> Outcome:
    """Apply `action` to each target inside one transaction; `on_issued` gets each new
    password and `before_commit` runs last (if either raises, nothing is stored: no hash
    without its password in the installer's hands). With `rotate_existing`, `issue`
    rotates the accounts that already have a password instead of skipping them."""
    outcome = Outcome()
    usernames = [username_for(t.principal, t.principal_id, t.kind) for t in targets]  # type: ignore[arg-type]
    keys = [queries.key(t.principal, t.principal_id) for t in targets]
    with conn.transaction():
        rows = queries.list_credentials(conn, keys)
        current = {queries.key(r.principal, r.principal_id): r for r in rows}
        bar = tqdm(
            zip(targets, usernames, strict=True),
            total=len(targets),
            unit="account",
            desc=action,
            disable=not progress,
        )
        for target, username in bar:
            row = current.get(queries.key(target.principal, target.principal_id))
            active = row is not None and row.revoked_at is None
            done: Action = "rotate" if action == "issue" and active and rotate_existing else action
            if done == "issue" and active:
                outcome.skipped.append((username, "already has a password: rotate it"))
                continue
            if done in ("rotate", "revoke") and not active:
                outcome.skipped.append((username, "has no active password: issue one"))
                continue
            if done == "revoke":
                assert row is not None
                username = row.username  # as issued, even if the device's kind changed since
                queries.revoke(conn, username)
            else:
                password = new_password()
                queries.store_hash(conn, username, target, hash_password(password))
                on_issued(Issued(target, username, password))
            _audit(conn, actor, done, username, target)
            outcome.done.append(username)
            outcome.actions[done] += 1
        before_commit()
    return outcome


def set_service_password(
    conn: psycopg.Connection, name: str, password: str, actor: audit.Actor
) -> Action | None:
    """Make a service account's password `password` (a deployment's secret from its
    environment); returns what was done, None when it already was."""
    target = Target(principal="service", principal_id=name)
    username = username_for("service", name)
    with conn.transaction():
        rows = queries.list_credentials(conn, [queries.key("service", name)])
        if rows and rows[0].password_hash and verify_password(password, rows[0].password_hash):
            return None
        action: Action = "rotate" if rows and rows[0].revoked_at is None else "issue"
        queries.store_hash(conn, username, target, hash_password(password))
        _audit(conn, actor, action, username, target, source="environment")
    return action


def active_accounts(conn: psycopg.Connection) -> tuple[list[Account], list[str]]:
    """The accounts the broker should know, and the usernames left out (a device no longer
    in the registry has no topics to be granted)."""
    accounts, orphans = [], []
    for row in queries.list_credentials(conn, active=True):
        principal: Principal = row.principal  # type: ignore[assignment]
        assert row.password_hash is not None
        account = Account(principal, row.principal_id, row.password_hash, row.kind)
        if principal == "device" and (row.kind is None or account.username != row.username):
            orphans.append(row.username)  # deleted, or its kind changed: issue it again
            continue
        accounts.append(account)
    return accounts, orphans


def _audit(
    conn: psycopg.Connection,
    actor: audit.Actor,
    action: Action,
    username: str,
    target: Target,
    source: str | None = None,
) -> None:
    after = {
        "principal": target.principal,
        "id": target.principal_id,
        "state": "revoked" if action == "revoke" else "active",
    }
    detail = {"password_from": source} if source else None
    audit.record(conn, actor, action, RESOURCE, username, after=after, detail=detail)
