"""/alert-sla: the on-site and resolve periods per severity (table `alert_sla`, migration
018) from which every alert's `site_due_at` / `resolve_due_at` are set (docs/api-alerts.md).
Viewers read them; an admin changes one severity's periods, audited. They change every
crew's deadlines, hence admin rather than operator (who edits rules and routes). A change
applies to alerts written or reopened after it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import Field

from api.auth import Principal, require
from api.deps import Conn
from api.routes.alerts_body import refuse_unstorable
from urbanwatch.alerting.model import Severity
from urbanwatch.identity.roles import Role
from urbanwatch.queries import alert_sla as q

router = APIRouter(prefix="/alert-sla", tags=["alerts"])
Viewer = Annotated[Principal, require(Role.viewer)]
Admin = Annotated[Principal, require(Role.admin)]
SeverityPath = Annotated[Severity, Path(description="info, warning, alarm or critical")]


class AlertSlaPublic(q.AlertSla):
    """One severity's periods, seconds; null: no deadline."""


class AlertSlaUpdate(q.SlaPeriods):
    """PUT /alert-sla/{severity}: both periods (null for none) and why they change."""

    site_s: int | None = Field(..., strict=True, gt=0, le=q.MAX_PERIOD_S)
    resolve_s: int | None = Field(..., strict=True, gt=0, le=q.MAX_PERIOD_S)
    note: str | None = Field(None, max_length=500)


@router.get("", response_model=list[AlertSlaPublic])
def get_alert_sla(conn: Conn, _: Viewer) -> list[q.AlertSla]:
    """Every severity's periods, critical first."""
    return q.list_sla(conn)


@router.get("/{severity}", response_model=AlertSlaPublic)
def get_one(conn: Conn, _: Viewer, severity: SeverityPath) -> q.AlertSla:
    return next(r for r in q.list_sla(conn) if r.severity == severity)


@router.put("/{severity}", response_model=AlertSlaPublic)
def put_alert_sla(
    conn: Conn, principal: Admin, severity: SeverityPath, body: AlertSlaUpdate
) -> q.AlertSla:
    """Replace one severity's on-site and resolve periods; audited (`alert_sla.update`,
    before and after). Deadlines already set on alerts stay as they are."""
    refuse_unstorable(body.model_dump())
    periods = q.SlaPeriods(site_s=body.site_s, resolve_s=body.resolve_s)
    return q.set_sla(conn, severity, periods, principal.audit_actor(), body.note)
