"""Broker accounts: their usernames, what each may do, and the text of Mosquitto's password
and ACL files (pure: no I/O).

A device's username is its topic path below the prefix, `<kind>/<id>`; a gateway's is
`gateway/<id>`; a service's `service/<name>`. So two `pattern` lines grant every device and
gateway exactly its own topics (`{prefix}/%u/telemetry`, `{prefix}/%u/status`), whatever
the fleet's size. Per-user ACL blocks are not an option at city scale: Mosquitto 2.0.11 looks
users up in a list, and a reload took 3 s with 5,000 user blocks and 66 s with 20,000 (the
broker answers nobody meanwhile), against 0.8 s for 20,000 accounts and two patterns
(docs/security-devices.md).

Mosquitto's password file ends a username at its first `:`, which device ids may contain:
such an id's username has `%3A` instead (`%` is never in an id, so the mapping stays
one-to-one), and gets a user block of its own, since the pattern cannot produce its topics.

The broker runs with `use_username_as_clientid true`: a client's id is its username, so no
account can take over another's session by connecting with its client id (measured on
Mosquitto 2.0.11: without it, a device connecting with ingest's client id closes ingest's
connection and, with a clean start, discards its session).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from urbanwatch.kinds import KINDS
from urbanwatch.models import DEVICE_ID_RE
from urbanwatch.topics import GATEWAY, OUTBOUND

Principal = Literal["device", "gateway", "service"]
Access = Literal["read", "write"]

# Service accounts and the topics (below the prefix) each may read and write: exactly what
# the service does. Ingest stores everything under the prefix and publishes nothing; the
# alert engine (`alerts run`) reads readings and statuses; the notifier (`alerts notify`)
# publishes urbanwatch's outbound alerts ({prefix}/alerts/...); the simulator publishes as
# any device and any gateway.
SERVICES: dict[str, tuple[tuple[Access, str], ...]] = {
    "ingest": (("read", "#"),),
    "alerts": (("read", "+/+/telemetry"), ("read", "+/+/status")),
    "notify": tuple(("write", f"{level}/#") for level in OUTBOUND),
    "simulator": (("write", "+/+/telemetry"), ("write", "+/+/status")),
}
SERVICE = "service"
# Topics the patterns would grant but that belong to nobody: a gateway has no status topic,
# and `service/<name>` is no device. Denials are checked before any grant.
DENIED = (f"{GATEWAY}/+/status", f"{SERVICE}/#")


@dataclass(frozen=True)
class Account:
    """One active account as the broker files need it."""

    principal: Principal
    principal_id: str
    password_hash: str
    kind: str | None = None  # a device's kind: its username and topics contain it

    @property
    def username(self) -> str:
        return username_for(self.principal, self.principal_id, self.kind)


def username_for(principal: Principal, principal_id: str, kind: str | None = None) -> str:
    if principal == "service":
        if principal_id not in SERVICES:
            raise ValueError(f"unknown service {principal_id!r} (one of {', '.join(SERVICES)})")
        return f"{SERVICE}/{principal_id}"
    if not DEVICE_ID_RE.fullmatch(principal_id):
        raise ValueError(f"{principal} id {principal_id!r} is not a valid id")
    if principal == "gateway":
        level = GATEWAY
    elif kind in KINDS:
        level = kind
    else:
        raise ValueError(f"device {principal_id!r} has no known kind ({kind!r})")
    return f"{level}/{principal_id.replace(':', '%3A')}"


def acl_rules(account: Account, prefix: str) -> list[tuple[Access, str]]:
    """The (access, topic) pairs the account is granted; nothing else is allowed."""
    if account.principal == "service":
        return [(access, f"{prefix}/{topic}") for access, topic in SERVICES[account.principal_id]]
    if account.principal == "gateway":
        return [("write", f"{prefix}/{GATEWAY}/{account.principal_id}/telemetry")]
    base = f"{prefix}/{account.kind}/{account.principal_id}"
    # Its readings and its status, which is also where its last will goes.
    return [("write", f"{base}/telemetry"), ("write", f"{base}/status")]


def needs_own_rules(account: Account) -> bool:
    """Whether the patterns cannot grant this account's topics (services; ':' in the id)."""
    return account.principal == "service" or ":" in account.principal_id


def render_password_file(accounts: Iterable[Account]) -> str:
    lines = [f"{a.username}:{a.password_hash}\n" for a in sorted(accounts, key=_order)]
    return "".join(lines)


def render_acl_file(accounts: Iterable[Account], prefix: str) -> str:
    """Mosquitto's acl_file: denials, the two patterns for devices and gateways, then a
    `user` block for each account the patterns cannot serve. No rule precedes the first
    `user` line but patterns, so anonymous clients (refused anyway) are granted nothing."""
    if any(c.isspace() for c in prefix) or "%" in prefix:
        raise ValueError(
            f"topic prefix {prefix!r} contains white space or %, which acl_file cannot hold"
        )
    out = [
        "# Written by `urbanwatch broker sync` from the database; edits here are lost.\n",
        *(f"pattern deny {prefix}/{topic}\n" for topic in DENIED),
        "# A device's username is <kind>/<id>, a gateway's gateway/<id>: its own topics.\n",
        f"pattern write {prefix}/%u/telemetry\n",
        f"pattern write {prefix}/%u/status\n",
    ]
    for account in sorted(accounts, key=_order):
        if needs_own_rules(account):
            out.append(f"\nuser {account.username}\n")
            out.extend(f"topic {access} {topic}\n" for access, topic in acl_rules(account, prefix))
    return "".join(out)


def _order(account: Account) -> str:
    return account.username
