"""Alert event -> outbox rows: which channels hear of it, with what, and the acknowledge
deadline it sets. Pure: the routing, the event and the environment come in as arguments."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from alerts.notify.messages import AlertPart, EventPart, Notice, RoutePart
from urbanwatch.queries.notify import InboxRow, OutboxInsert
from urbanwatch.routing.model import Channel, RouteFile

# Events that tell a crew something changed. 'updated', 'commented', 'deescalated' and
# 'suppressed' do not (nothing repeated while nothing changed; a suppressed alert is
# covered by its parent's notification).
NOTIFY_EVENTS = frozenset(
    {
        "opened",
        "refired",
        "reopened",
        "escalated",
        "unsuppressed",
        "acknowledged",
        "on_site",
        "cleared",
        "resolved",
    }
)
SEVERITY_RANK = {"info": 0, "warning": 1, "alarm": 2, "critical": 3}


def is_news(ev: InboxRow) -> bool:
    """Sent events, and an 'updated' that raised the severity (a storm incident or circuit
    alert growing worse); other updates are not news."""
    if ev.event == "updated":
        before = SEVERITY_RANK.get(ev.prev_severity or "", 99)
        return SEVERITY_RANK.get(ev.event_severity, -1) > before
    return ev.event in NOTIFY_EVENTS


# Events that (re)start the acknowledge clock; 'refired' and 'unsuppressed' only start one
# that is not running (a flapping alert must not postpone its escalation forever).
STARTS_CLOCK = frozenset({"opened", "reopened"})
STARTS_STOPPED_CLOCK = frozenset({"refired", "unsuppressed"})


@dataclass(frozen=True)
class Plan:
    rows: list[OutboxInsert]
    ack_due_at: datetime | None  # set on the alert when `set_due`
    set_due: bool


def idempotency_key(event_id: int, channel: str) -> str:
    return f"uw-{event_id}-{channel}"


def missing_config(channel: Channel, env: Mapping[str, str]) -> str | None:
    """Why the channel cannot deliver in this environment (an unset variable), or None."""
    for name in (channel.url_env, channel.secret_env, channel.username_env, channel.password_env):
        if name and not env.get(name):
            return f"environment variable {name} is not set"
    return None


def plan_event(routes: RouteFile, ev: InboxRow, env: Mapping[str, str]) -> Plan:
    sla = routes.sla.get(ev.severity)  # type: ignore[call-overload]
    set_due = ev.status == "open" and (
        ev.event in STARTS_CLOCK or (ev.event in STARTS_STOPPED_CLOCK and ev.ack_due_at is None)
    )
    due = ev.ack_due_at
    if set_due:
        due = ev.at + timedelta(seconds=sla.ack) if sla and sla.ack else None
    if not is_news(ev) or ev.suppressed:
        return Plan([], due, set_due)
    route = routes.resolve(ev.kind, ev.district, ev.severity, unit=ev.unit)
    if route is None:  # a loaded file always has a catch-all; kept for safety
        return Plan([], due, set_due)
    level = int(ev.event_detail.get("level", ev.escalation_level) or 0)
    if ev.event != "escalated":
        level = 0
    crews = route.crews_at(level)
    unit = routes.units[route.unit]
    notice_base = {
        "event": EventPart(
            id=ev.event_id, type=ev.event, at=ev.at, actor=ev.actor, detail=ev.event_detail
        ),
        "alert": AlertPart(
            id=ev.alert_id,
            rule_id=ev.rule_id,
            subject=ev.subject,
            device_id=ev.device_id,
            kind=ev.kind,
            district=ev.district,
            severity=ev.severity,
            status=ev.status,
            title=ev.title,
            opened_at=ev.opened_at,
            ack_due_at=due,
            escalation_level=ev.escalation_level,
        ),
    }
    by_channel: dict[str, list[str]] = {}
    for crew in crews:
        for ch in routes.crews[crew].channels:
            by_channel.setdefault(ch, []).append(crew)
    rows = []
    for ch, ch_crews in by_channel.items():
        key = idempotency_key(ev.event_id, ch)
        notice = Notice(
            idempotency_key=key,
            route=RoutePart(
                unit=route.unit,
                unit_name=unit.name,
                unit_name_en=unit.name_en,
                crews=ch_crews,
                crew_labels=[routes.crews[c].label or c for c in ch_crews],
                line=route.line,
                level=level,
            ),
            **notice_base,  # type: ignore[arg-type]
        )
        problem = missing_config(routes.channels[ch], env)
        rows.append(
            OutboxInsert(
                event_id=ev.event_id,
                alert_id=ev.alert_id,
                channel=ch,
                crews=ch_crews,
                idempotency_key=key,
                message=notice.model_dump(mode="json"),
                status="skipped" if problem else "pending",
                last_error=problem,
            )
        )
    return Plan(rows, due, set_due)
