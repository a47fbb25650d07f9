"""Roles, ordered: a higher role may do whatever a lower one may."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    viewer = "viewer"  # reads
    crew = "crew"  # works the alerts of its own unit
    operator = "operator"  # rules, routes, ledgers, devices, targets
    admin = "admin"  # accounts, keys, audit

    @property
    def rank(self) -> int:
        return ORDER.index(self)

    def allows(self, needed: Role) -> bool:
        """True when this role may do what `needed` may."""
        return self.rank >= needed.rank

    def below(self) -> list[Role]:
        """The roles lower than this one, lowest first."""
        return list(ORDER[: self.rank])


ORDER: tuple[Role, ...] = (Role.viewer, Role.crew, Role.operator, Role.admin)
