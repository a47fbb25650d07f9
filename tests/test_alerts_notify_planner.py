"""The pure planner: which events are sent, to which channels, and the acknowledge clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from alerts.notify.planner import plan_event
from urbanwatch.queries.notify import InboxRow
from urbanwatch.routing.load import default_text, parse_route_file

ROUTES = parse_route_file(default_text())
AT = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
ENV = {"WECOM_CGJ_URL": "http://robot", "URBANWATCH_WEBHOOK_SECRET": "s"}


def row(event: str, **over: Any) -> InboxRow:
    base: dict[str, Any] = {
        "event_id": 7,
        "event": event,
        "at": AT,
        "actor": "engine",
        "event_severity": "critical",
        "event_detail": {},
        "alert_id": 3,
        "rule_id": "MH_FLIP",
        "subject": "MH-1",
        "device_id": "MH-1",
        "kind": "manhole",
        "district": "wenfeng",
        "unit": None,
        "severity": "critical",
        "status": "open",
        "suppressed": False,
        "title": "井盖翻转",
        "opened_at": AT,
        "ack_due_at": None,
        "escalation_level": 0,
    }
    return InboxRow(**{**base, **over})


@pytest.mark.parametrize(
    ("event", "over", "sent", "set_due"),
    [
        ("opened", {}, True, True),
        ("reopened", {"ack_due_at": AT - timedelta(hours=1)}, True, True),
        ("refired", {"ack_due_at": AT - timedelta(hours=1)}, True, False),  # clock keeps running
        ("refired", {}, True, True),
        ("unsuppressed", {}, True, True),
        ("acknowledged", {"status": "acknowledged"}, True, False),
        ("cleared", {}, True, False),
        ("resolved", {"status": "resolved"}, True, False),
        ("updated", {}, False, False),
        ("updated", {"prev_severity": "critical"}, False, False),
        ("updated", {"prev_severity": "alarm"}, True, False),  # severity rose: news
        ("updated", {"prev_severity": "critical", "event_severity": "alarm"}, False, False),
        ("commented", {}, False, False),
        ("suppressed", {"suppressed": True}, False, False),
        ("opened", {"suppressed": True}, False, True),  # inhibited: silent, clock set
        ("opened", {"status": "acknowledged"}, True, False),
    ],
)
def test_events_sent_and_clock(event, over, sent, set_due):
    plan = plan_event(ROUTES, row(event, **over), ENV)
    assert bool(plan.rows) == sent
    assert plan.set_due == set_due
    if set_due:
        assert plan.ack_due_at == AT + timedelta(minutes=10)  # critical: 10 min


def test_channels_of_the_route_and_unset_secrets_skipped():
    plan = plan_event(ROUTES, row("opened"), ENV)
    by_channel = {r.channel: r for r in plan.rows}
    assert set(by_channel) == {"cgj-wecom", "ops-webhook", "city-platform"}
    assert all(r.status == "pending" for r in plan.rows)
    plan = plan_event(ROUTES, row("opened"), {})
    skipped = {r.channel: r.last_error for r in plan.rows if r.status == "skipped"}
    assert skipped == {
        "cgj-wecom": "environment variable WECOM_CGJ_URL is not set",
        "ops-webhook": "environment variable URBANWATCH_WEBHOOK_SECRET is not set",
    }


def test_escalation_level_adds_the_next_crews():
    plan = plan_event(ROUTES, row("escalated", event_detail={"level": 2}), ENV)
    crews = {c for r in plan.rows for c in r.crews}
    assert crews == {"cgj-manhole", "cgj-duty", "zjj-duty"}
    assert "zjj-dingtalk" in {r.channel for r in plan.rows}
    assert plan.rows[0].message["route"]["level"] == 2
