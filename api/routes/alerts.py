"""/alerts: list and read alerts, and work them (issue #10 "Lifecycle and work",
docs/api-alerts.md). Viewers read; a crew acknowledges, assigns, notes, resolves and reopens
alerts routed to its own unit (403 otherwise); operators and admins any alert. Every
transition writes an alert_events row with the caller as actor, and an audit entry."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.auth import Principal, require
from api.deps import Conn, field_error
from urbanwatch import audit
from urbanwatch.identity.roles import Role
from urbanwatch.queries import alert_work as q

router = APIRouter(prefix="/alerts", tags=["alerts"])
Viewer = Annotated[Principal, require(Role.viewer)]
Crew = Annotated[Principal, require(Role.crew)]
MAX_PAGE = 500
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL
Status = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "alarm", "critical"]
Kind = Literal["manhole", "waterlog", "streetlight", "watermeter"]
Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=r"^[^\x00]*[^\x00\s][^\x00]*$")]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f]+$")]


class AlertPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[q.AlertRow]


class AlertDetail(BaseModel):
    alert: q.AlertRow
    events: list[q.EventRow]
    readings: list[dict[str, Any]]
    children: list[q.AlertRow]


class Note(BaseModel):
    """POST /alerts/{id}/note and the optional note of acknowledge."""

    model_config = ConfigDict(extra="forbid")
    note: Text


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text | None = None


class ResolveBody(BaseModel):
    """A person resolves with a note saying what was done."""

    model_config = ConfigDict(extra="forbid")
    note: Text


class ReopenBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text


class AssignBody(BaseModel):
    """To a crew (notify_crews.name), a person (user name), or both."""

    model_config = ConfigDict(extra="forbid")
    crew: Name | None = None
    person: Name | None = None
    note: Text | None = None

    @model_validator(mode="after")
    def _someone(self) -> AssignBody:
        if self.crew is None and self.person is None:
            raise ValueError("name a crew or a person (or both)")
        return self


class Transition(BaseModel):
    alert: q.AlertRow
    event_id: int


@router.get("", response_model=AlertPage)
def list_alerts(
    conn: Conn,
    _: Viewer,
    status: Status | None = None,
    active: bool | None = None,
    kind: Kind | None = None,
    district: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    severity: Severity | None = None,
    unit: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    crew: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    assignee: Annotated[str | None, Query(max_length=100, pattern=NO_NUL)] = None,
    rule_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    parent_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> AlertPage:
    """Alerts newest first, filtered; `unit` is the alert's routed unit, `crew` its assigned
    crew."""
    f = q.AlertFilter(
        status=status,
        active=active,
        kind=kind,
        district=district,
        severity=severity,
        unit=unit,
        crew=crew,
        assignee=assignee,
        rule_id=rule_id,
        parent_id=parent_id,
        since=since,
        until=until,
    )
    total, items = q.list_alerts(conn, f, limit, offset)
    return AlertPage(total=total, limit=limit, offset=offset, items=items)


AlertId = Annotated[int, Path(ge=1, le=2**62)]


def _found(conn: Conn, alert_id: int, lock: bool = False) -> q.AlertRow:
    alert = q.get_alert(conn, alert_id, lock=lock)
    if alert is None:
        raise HTTPException(404, detail=f"alert_id: no alert {alert_id}")
    return alert


@router.get("/{alert_id}", response_model=AlertDetail)
def get_alert(conn: Conn, _: Viewer, alert_id: AlertId) -> AlertDetail:
    """One alert with its history (alert_events), the readings around it and its children."""
    alert = _found(conn, alert_id)
    children = q.list_alerts(conn, q.AlertFilter(parent_id=alert.id), MAX_PAGE, 0)[1]
    return AlertDetail(
        alert=alert,
        events=q.alert_events(conn, alert.id),
        readings=q.readings_around(conn, alert),
        children=children,
    )


def _may_work(conn: Conn, principal: Principal, alert: q.AlertRow) -> None:
    """Operators and admins any alert; a crew only its own unit's (by id or name)."""
    if principal.role.allows(Role.operator):
        return
    names = q.unit_names(conn, alert.unit)
    if principal.role is Role.crew and principal.unit is not None and principal.unit in names:
        return
    raise HTTPException(
        403,
        detail=f"alert {alert.id} is routed to unit {alert.unit or '(none)'}; "
        f"your unit is {principal.unit or '(none)'}",
    )


def _transition(
    conn: Conn,
    principal: Principal,
    alert: q.AlertRow,
    event: str,
    detail: dict[str, Any],
) -> Transition:
    event_id = q.write_event(conn, alert.id, event, principal.actor, alert.severity, detail)
    after = q.get_alert(conn, alert.id)
    assert after is not None
    audit.record(
        conn,
        principal.audit_actor(),
        f"alert.{event}",
        "alert",
        str(alert.id),
        before={"status": alert.status, "assigned_crew": alert.assigned_crew},
        after={"status": after.status, "assigned_crew": after.assigned_crew},
        detail=detail,
    )
    return Transition(alert=after, event_id=event_id)


def _conflict(alert: q.AlertRow, action: str) -> HTTPException:
    return HTTPException(409, detail=f"status: alert {alert.id} is {alert.status}; cannot {action}")


@router.post("/{alert_id}/acknowledge", response_model=Transition)
def acknowledge(conn: Conn, principal: Crew, alert_id: AlertId, body: AckBody) -> Transition:
    alert = _found(conn, alert_id, lock=True)
    _may_work(conn, principal, alert)
    if alert.status != "open":
        raise _conflict(alert, "acknowledge")
    q.acknowledge(conn, alert.id, principal.actor)
    detail = {"note": body.note} if body.note else {}
    return _transition(conn, principal, alert, "acknowledged", detail)


@router.post("/{alert_id}/assign", response_model=Transition)
def assign(conn: Conn, principal: Crew, alert_id: AlertId, body: AssignBody) -> Transition:
    alert = _found(conn, alert_id, lock=True)
    _may_work(conn, principal, alert)
    if alert.status == "resolved":
        raise _conflict(alert, "assign")
    if body.crew is not None and not q.crew_exists(conn, body.crew):
        raise field_error(422, ["body", "crew"], f"no crew {body.crew!r} in the routing")
    q.assign(conn, alert.id, body.crew, body.person)
    detail = {"crew": body.crew, "person": body.person}
    if body.note:
        detail["note"] = body.note
    return _transition(conn, principal, alert, "assigned", detail)


@router.post("/{alert_id}/note", response_model=Transition)
def note(conn: Conn, principal: Crew, alert_id: AlertId, body: Note) -> Transition:
    alert = _found(conn, alert_id, lock=True)
    _may_work(conn, principal, alert)
    return _transition(conn, principal, alert, "commented", {"note": body.note})


@router.post("/{alert_id}/resolve", response_model=Transition)
def resolve(conn: Conn, principal: Crew, alert_id: AlertId, body: ResolveBody) -> Transition:
    alert = _found(conn, alert_id, lock=True)
    _may_work(conn, principal, alert)
    if alert.status == "resolved":
        raise _conflict(alert, "resolve")
    q.resolve(conn, alert.id, principal.actor)
    return _transition(conn, principal, alert, "resolved", {"note": body.note})


@router.post("/{alert_id}/reopen", response_model=Transition)
def reopen(conn: Conn, principal: Crew, alert_id: AlertId, body: ReopenBody) -> Transition:
    """A resolved alert back to open (its flap count goes up); refused while another
    unresolved alert holds the same rule and subject."""
    alert = _found(conn, alert_id, lock=True)
    _may_work(conn, principal, alert)
    if alert.status != "resolved":
        raise _conflict(alert, "reopen")
    twin = q.unresolved_twin(conn, alert)
    if twin is not None:
        raise HTTPException(
            409, detail=f"alert_id: alert {twin} is the unresolved alert of this fault; work that"
        )
    q.reopen(conn, alert.id)
    return _transition(conn, principal, alert, "reopened", {"note": body.note})


incidents = APIRouter(prefix="/incidents", tags=["alerts"])


@incidents.get("", response_model=list[q.Incident])
def list_incidents(
    conn: Conn,
    _: Viewer,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[q.Incident]:
    """Alerts that group others (storm incidents, circuit alerts, suspected bursts) with the
    count of their children and of those still unresolved."""
    return q.list_incidents(conn, status, limit, offset)
