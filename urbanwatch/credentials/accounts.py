"""Broker accounts: their usernames, what each may do, and the text of Mosquitto's password
and ACL files (pure: no I/O).

Usernames name the principal, so a device, a gateway and a service with the same id never
share an account: `device/<id>`, `gateway/<id>`, `service/<name>`. Mosquitto's password file
ends a username at the first `:`, which device ids may contain, so `:` is written `%3A`
(`%` is never in an id, so the mapping stays one-to-one).

The broker runs with `use_username_as_clientid true`: a client's id is its username, so no
account can take over another's session by connecting with its client id (measured on
Mosquitto 2.0.11: without it, a device connecting as ingest's client id closes ingest's
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


@dataclass(frozen=True)
class Account:
    """One active account as the broker files need it."""

    principal: Principal
    principal_id: str
    password_hash: str
    kind: str | None = None  # a device's kind: its topics contain it

    @property
    def username(self) -> str:
        return username_for(self.principal, self.principal_id)


def username_for(principal: Principal, principal_id: str) -> str:
    if principal == "service":
        if principal_id not in SERVICES:
            raise ValueError(f"unknown service {principal_id!r} (one of {', '.join(SERVICES)})")
    elif not DEVICE_ID_RE.fullmatch(principal_id):
        raise ValueError(f"{principal} id {principal_id!r} is not a valid id")
    return f"{principal}/{principal_id.replace(':', '%3A')}"


def acl_rules(account: Account, prefix: str) -> list[tuple[Access, str]]:
    """The (access, topic) pairs the account is granted; nothing else is allowed."""
    if account.principal == "device":
        if account.kind not in KINDS:
            raise ValueError(f"device {account.principal_id!r} has no known kind")
        base = f"{prefix}/{account.kind}/{account.principal_id}"
        # Its readings and its status, which is also where its last will goes.
        return [("write", f"{base}/telemetry"), ("write", f"{base}/status")]
    if account.principal == "gateway":
        return [("write", f"{prefix}/{GATEWAY}/{account.principal_id}/telemetry")]
    return [(access, f"{prefix}/{topic}") for access, topic in SERVICES[account.principal_id]]


def render_password_file(accounts: Iterable[Account]) -> str:
    lines = [f"{a.username}:{a.password_hash}\n" for a in sorted(accounts, key=_order)]
    return "".join(lines)


def render_acl_file(accounts: Iterable[Account], prefix: str) -> str:
    """Mosquitto's acl_file: one `user` block per account. No rule precedes the first
    `user` line, so anonymous clients (refused anyway) would be granted nothing."""
    if any(c.isspace() for c in prefix):
        raise ValueError(
            f"topic prefix {prefix!r} contains white space, which acl_file cannot hold"
        )
    out = ["# Written by `urbanwatch broker sync` from the database; edits here are lost.\n"]
    for account in sorted(accounts, key=_order):
        out.append(f"\nuser {account.username}\n")
        out.extend(f"topic {access} {topic}\n" for access, topic in acl_rules(account, prefix))
    return "".join(out)


def _order(account: Account) -> str:
    return account.username
