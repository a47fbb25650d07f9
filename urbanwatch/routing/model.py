"""The route file: who hears about which alert, through what (docs/notifications.md).

Pure: parsing, validation and route resolution do no I/O. A file is accepted or refused as a
whole; a refusal names the line and the field (`RouteFileError`).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

SEVERITIES = ("info", "warning", "alarm", "critical")
Severity = Literal["info", "warning", "alarm", "critical"]
ChannelType = Literal["webhook", "wecom", "dingtalk", "mqtt", "email"]
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$")]
EnvName = Annotated[str, StringConstraints(pattern=r"^[A-Z_][A-Z0-9_]{0,127}$")]
DURATION_RE = re.compile(r"^(\d+)\s*([smhd])$")
UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# The robots' documented limit is 20 messages a minute each (docs/notifications.md).
ROBOT_RATE_LIMIT = 20


def parse_duration(value: object) -> int:
    """`90s`, `10m`, `4h`, `1d` or a whole number of seconds -> seconds (> 0)."""
    if isinstance(value, bool):
        raise ValueError("must be a duration like 10m, 4h or 90s")
    if isinstance(value, int) and value > 0:
        return value
    match = DURATION_RE.match(str(value).strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not a duration like 10m, 4h or 90s")
    return int(match.group(1)) * UNIT_S[match.group(2)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Sla(Strict):
    """Acknowledge within `ack` (seconds), else escalate, up to `max_level` times."""

    ack: int | None
    max_level: int = Field(2, ge=0, le=10)

    @model_validator(mode="before")
    @classmethod
    def _durations(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("ack") is not None:
            return {**data, "ack": parse_duration(data["ack"])}
        return data


class Unit(Strict):
    name: str = Field(min_length=1, max_length=100)
    name_en: str = Field("", max_length=200)


class Channel(Strict):
    """Where messages go. Secrets (a robot URL's key, signing secrets, SMTP passwords) are
    named by their environment variable, never written here."""

    type: ChannelType
    url: str | None = Field(None, pattern=r"^https?://\S+$")
    url_env: EnvName | None = None
    secret_env: EnvName | None = None
    rate_per_min: int | None = Field(None, ge=1, le=10_000)
    # email
    to: list[Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+$")]] = []
    sender: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+$")
    smtp_host: str | None = None
    smtp_port: int = Field(25, ge=1, le=65535)
    starttls: bool = False
    username_env: EnvName | None = None
    password_env: EnvName | None = None
    # dingtalk / wecom: mobiles to @ on critical messages
    at_mobiles: list[Annotated[str, StringConstraints(pattern=r"^\+?\d{5,20}$")]] = []

    @model_validator(mode="after")
    def _complete(self) -> Channel:
        if self.type in ("webhook", "wecom", "dingtalk") and (self.url is None) == (
            self.url_env is None
        ):
            raise ValueError(f"a {self.type} channel needs exactly one of url or url_env")
        if self.type == "email" and (not self.to or self.smtp_host is None or not self.sender):
            raise ValueError("an email channel needs to, sender and smtp_host")
        if self.type in ("wecom", "dingtalk") and (self.rate_per_min or 0) > ROBOT_RATE_LIMIT:
            raise ValueError(f"rate_per_min above the robots' limit of {ROBOT_RATE_LIMIT}")
        return self

    def limit(self) -> int | None:
        """Messages a minute: a robot's limit by default, otherwise unlimited."""
        if self.rate_per_min is None and self.type in ("wecom", "dingtalk"):
            return ROBOT_RATE_LIMIT
        return self.rate_per_min


class Crew(Strict):
    unit: Name
    label: str = Field("", max_length=200)
    channels: list[Name] = Field(min_length=1)


class Route(Strict):
    kind: Name | None = None
    district: str | None = Field(None, min_length=1, max_length=64)
    min_severity: Severity | None = None
    unit: Name
    crews: list[Name] = Field(min_length=1)
    escalate: list[Name] = []  # crews added at escalation level 1, 2, …
    line: int = 0  # filled in by the loader

    def matches(self, kind: str, district: str | None, severity: str) -> bool:
        return (
            (self.kind is None or self.kind == kind)
            and (self.district is None or self.district == district)
            and (
                self.min_severity is None
                or SEVERITIES.index(severity) >= SEVERITIES.index(self.min_severity)
            )
        )

    def specificity(self) -> tuple[int, int, int, int]:
        """More matchers win; then a district beats a kind (local crews know the ground);
        then the higher minimum severity."""
        rank = SEVERITIES.index(self.min_severity) if self.min_severity else -1
        count = sum(x is not None for x in (self.kind, self.district, self.min_severity))
        return (count, self.district is not None, self.kind is not None, rank)

    def crews_at(self, level: int) -> list[str]:
        """The crews to tell at escalation `level`: the route's own, plus the first
        `level` escalation crews."""
        extra = [c for c in self.escalate[: max(level, 0)] if c not in self.crews]
        return [*self.crews, *extra]


class RouteFile(Strict):
    version: Literal[1]
    sla: dict[Severity, Sla]
    units: dict[Name, Unit] = Field(min_length=1)
    channels: dict[Name, Channel] = Field(min_length=1)
    crews: dict[Name, Crew] = Field(min_length=1)
    routes: list[Route] = Field(min_length=1)

    def resolve(
        self, kind: str, district: str | None, severity: str, unit: str | None = None
    ) -> Route | None:
        """The most specific route that matches (None only for a file without catch-all,
        which the loader refuses). An alert that names its unit (by id or Chinese name, e.g.
        a ledger point's responsible unit) goes by that unit's routes when it has any."""
        found = [r for r in self.routes if r.matches(kind, district, severity)]
        uid = next((k for k, u in self.units.items() if unit in (k, u.name)), None)
        own = [r for r in found if r.unit == uid]
        return max(own or found, key=Route.specificity, default=None)
