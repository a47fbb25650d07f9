"""POST /alerts/{id}/on-site: a crew member records being at the site of an alert (issue #10
"Lifecycle and work", docs/notifications.md "On-site and resolve deadlines"). It stops the
on-site deadline from escalating; recorded once per round of work (a reopened alert starts a
new one). An alert still open is acknowledged by the same call (arriving on site acknowledges
it), with its own 'acknowledged' event before the 'on_site' one. Same permissions as the
other transitions in api/routes/alerts.py: a crew for its own unit's alerts, operators and
admins for any."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict

from api.auth import Principal, require
from api.deps import Conn
from api.routes.alerts import AlertId, Text, _conflict, _found, _transition
from urbanwatch.identity.roles import Role
from urbanwatch.queries import alert_work as q
from urbanwatch.queries import sla

router = APIRouter(prefix="/alerts", tags=["alerts"])
Crew = Annotated[Principal, require(Role.crew)]


class OnSiteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Text | None = None


class OnSite(BaseModel):
    alert: q.AlertRow
    event_id: int  # the 'on_site' event
    acknowledged_event_id: int | None  # when the call also acknowledged an open alert
    on_site_at: datetime
    on_site_by: str


@router.post("/{alert_id}/on-site", response_model=OnSite)
def on_site(conn: Conn, principal: Crew, alert_id: AlertId, body: OnSiteBody) -> OnSite:
    """Record that the caller is on site (到场). 409 when the alert is resolved or someone
    is already recorded on site (nothing is written twice)."""
    alert = _found(conn, principal, alert_id, lock=True, work=True)
    if alert.status == "resolved":
        raise _conflict(alert, "be marked on site")
    at, by = sla.on_site(conn, alert.id)
    if at is not None:
        raise HTTPException(
            409, detail=f"on_site: alert {alert.id} is already on site since {at} ({by})"
        )
    acked = None
    if alert.status == "open":
        q.acknowledge(conn, alert.id, principal.actor)
        acked = _transition(conn, principal, alert, "acknowledged", {"by": "on_site"})
        alert = acked.alert
    when = sla.mark_on_site(conn, alert.id, principal.actor)
    assert when is not None  # the row is locked and had no on-site record
    detail = {"note": body.note} if body.note else {}
    done = _transition(conn, principal, alert, "on_site", detail)
    return OnSite(
        alert=done.alert,
        event_id=done.event_id,
        acknowledged_event_id=None if acked is None else acked.event_id,
        on_site_at=when,
        on_site_by=principal.actor,
    )
