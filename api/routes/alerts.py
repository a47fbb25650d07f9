"""/alerts: list and read alerts, and work them (issue #10 "Lifecycle and work",
docs/api-alerts.md). Viewers, operators and admins read every alert; a crew reads, and
acknowledges, assigns, notes, resolves and reopens, only the alerts routed or assigned to its
own unit (`Principal.works_for`; another unit's alert is a 404, as if it did not exist);
operators and admins work any alert. Every transition writes an alert_events row with the
caller as actor, and an audit entry."""

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
from urbanwatch.storable import NO_NUL, NO_NUL_NOT_BLANK

router = APIRouter(prefix="/alerts", tags=["alerts"])
Viewer = Annotated[Principal, require(Role.viewer)]
Crew = Annotated[Principal, require(Role.crew)]
MAX_PAGE = 500
Status = Literal["open", "acknowledged", "resolved"]
Severity = Literal["info", "warning", "alarm", "critical"]
Kind = Literal["manhole", "waterlog", "streetlight", "watermeter"]
Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=NO_NUL_NOT_BLANK)]
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
    principal: Viewer,
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
    crew. A crew sees only its own unit's."""
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
        visible_to=read_scope(principal),
    )
    total, items = q.list_alerts(conn, f, limit, offset)
    return AlertPage(total=total, limit=limit, offset=offset, items=items)


AlertId = Annotated[int, Path(ge=1, le=2**62)]


def read_scope(principal: Principal) -> q.Scope | None:
    """The alerts the caller reads: a crew its own unit's, everyone else every alert."""
    return q.Scope(principal.unit) if principal.reads_own_unit_only else None


def _found(
    conn: Conn, principal: Principal, alert_id: int, lock: bool = False, work: bool = False
) -> q.AlertRow:
    """The alert, if the caller may read it (and work it, with `work`). A crew asking for
    another unit's alert gets the 404 of a missing one: its existence is not told."""
    alert = q.get_alert(conn, alert_id, lock=lock)
    works = alert is not None and principal.works_for(q.unit_aliases(conn, alert))
    if alert is None or (principal.reads_own_unit_only and not works):
        raise HTTPException(404, detail=f"alert_id: no alert {alert_id}")
    if work and not works:  # a role that reads every alert but works none
        raise HTTPException(403, detail=f"your role {principal.role.value} cannot work alerts")
    return alert


@router.get("/{alert_id}", response_model=AlertDetail)
def get_alert(conn: Conn, principal: Viewer, alert_id: AlertId) -> AlertDetail:
    """One alert with its history (alert_events), the readings around it and its children
    (those the caller may read)."""
    alert = _found(conn, principal, alert_id)
    children_of = q.AlertFilter(parent_id=alert.id, visible_to=read_scope(principal))
    children = q.list_alerts(conn, children_of, MAX_PAGE, 0)[1]
    return AlertDetail(
        alert=alert,
        events=q.alert_events(conn, alert.id),
        readings=q.readings_around(conn, alert),
        children=children,
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
    alert = _found(conn, principal, alert_id, lock=True, work=True)
    if alert.status != "open":
        raise _conflict(alert, "acknowledge")
    q.acknowledge(conn, alert.id, principal.actor)
    detail = {"note": body.note} if body.note else {}
    return _transition(conn, principal, alert, "acknowledged", detail)


@router.post("/{alert_id}/assign", response_model=Transition)
def assign(conn: Conn, principal: Crew, alert_id: AlertId, body: AssignBody) -> Transition:
    alert = _found(conn, principal, alert_id, lock=True, work=True)
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
    alert = _found(conn, principal, alert_id, lock=True, work=True)
    return _transition(conn, principal, alert, "commented", {"note": body.note})


@router.post("/{alert_id}/resolve", response_model=Transition)
def resolve(conn: Conn, principal: Crew, alert_id: AlertId, body: ResolveBody) -> Transition:
    alert = _found(conn, principal, alert_id, lock=True, work=True)
    if alert.status == "resolved":
        raise _conflict(alert, "resolve")
    q.resolve(conn, alert.id, principal.actor)
    return _transition(conn, principal, alert, "resolved", {"note": body.note})


@router.post("/{alert_id}/reopen", response_model=Transition)
def reopen(conn: Conn, principal: Crew, alert_id: AlertId, body: ReopenBody) -> Transition:
    """A resolved alert back to open (its flap count goes up); refused while another
    unresolved alert holds the same rule and subject."""
    alert = _found(conn, principal, alert_id, lock=True, work=True)
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
    principal: Viewer,
    status: Status | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
) -> list[q.Incident]:
    """Alerts that group others (storm incidents, circuit alerts, suspected bursts) with the
    count of their children and of those still unresolved; a crew sees its own unit's."""
    return q.list_incidents(conn, status, limit, offset, read_scope(principal))
