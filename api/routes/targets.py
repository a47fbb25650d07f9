"""/targets: the plan's targets with value, status, projection and history (issue #11)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Principal, require
from api.deps import Conn, field_error
from urbanwatch.identity.roles import Role
from urbanwatch.kpi.cli import today_local
from urbanwatch.plan import targets as plan_targets
from urbanwatch.plan.report import build_report
from urbanwatch.plan.values import ValueCache, Values
from urbanwatch.queries import kpi as kpi_queries
from urbanwatch.queries import targets as queries

router = APIRouter(prefix="/targets", tags=["plan"])
Viewer = Annotated[Principal, require(Role.viewer)]
Operator = Annotated[Principal, require(Role.operator)]


class Assessment(BaseModel):
    status: str
    value: float | None
    projection: float | None
    trend_per_month: float | None
    required_per_month: float | None
    reasoning: str


class TargetPublic(plan_targets.Target):
    as_of: date
    # When the KPI values were computed: a cached value is reused until a ledger or alert
    # changes, or for up to a minute for what readings feed (docs/kpis.md "Cached values").
    computed_at: datetime
    assessment: Assessment


def value_cache(request: Request) -> ValueCache:
    """The app's KPI value cache (urbanwatch/plan/values.py), made on first use."""
    cache = getattr(request.app.state, "plan_values", None)
    if cache is None:
        cache = request.app.state.plan_values = ValueCache()
    return cache


class DistrictValue(BaseModel):
    code: str
    name_zh: str
    value: float


class MonthValue(BaseModel):
    month: str  # YYYY-MM: the month's last stored daily value
    value: float | None


class TargetDetail(TargetPublic):
    numerator: float | None
    denominator: float | None
    defaults: dict[str, Any]
    worst_districts: list[DistrictValue]
    monthly: list[MonthValue]
    history: list[queries.HistoryEntry]


class TargetUpdate(BaseModel):
    """Fields to change; the others stay. Checked as a whole target after the change."""

    model_config = ConfigDict(extra="forbid")
    kpi: str | None = None
    title_zh: str | None = Field(None, min_length=1)
    title_en: str | None = Field(None, min_length=1)
    scope: plan_targets.Scope | None = None
    district: str | None = None
    comparator: plan_targets.Comparator | None = None
    target_value: float | None = Field(None, allow_inf_nan=False)
    unit: str | None = None
    deadline: date | None = None
    period_start: date | None = None
    clause_ref: str | None = Field(None, min_length=1)
    clause_zh: str | None = Field(None, min_length=1)
    lead_units: list[str] | None = None
    partner_units: list[str] | None = None
    note: str | None = None


@router.get("", response_model=list[TargetPublic])
def list_targets(
    request: Request, conn: Conn, principal: Viewer, as_of: date | None = None
) -> list[TargetPublic]:
    """Every target with its value and status on `as_of` (default today, local)."""
    day = as_of or today_local()
    values = Values(conn, value_cache(request))
    rows = build_report(conn, day, worst=False, values=values).rows
    values.close()
    return [
        TargetPublic(**r.target.model_dump(), as_of=day, computed_at=values.computed_at,
                     assessment=Assessment(**vars(r.assessment)))
        for r in rows
    ]  # fmt: skip


@router.get("/{target_id}", response_model=TargetDetail)
def get_target(
    request: Request,
    target_id: str,
    conn: Conn,
    principal: Viewer,
    as_of: date | None = None,
    months: Annotated[int, Query(ge=1, le=60)] = 24,
) -> TargetDetail:
    """One target: value, status, projection, worst districts, monthly history (from the
    daily snapshots) and the target's own edit history."""
    day = as_of or today_local()
    target = queries.get_target(conn, target_id)
    if target is None:
        raise HTTPException(404, detail=f"target {target_id!r} not found")
    values = Values(conn, value_cache(request))
    (row,) = build_report(conn, day, target_ids={target_id}, values=values).rows
    values.close()
    monthly: list[MonthValue] = []
    if target.kpi:
        since = date(day.year - (months // 12) - 1, 1, 1)
        by_month: dict[str, float | None] = {}
        for d, v in kpi_queries.daily_points(conn, target.kpi, row.scope, since, day):
            by_month[d.strftime("%Y-%m")] = v
        monthly = [MonthValue(month=m, value=v) for m, v in sorted(by_month.items())][-months:]
    worst = [DistrictValue(code=w.code, name_zh=w.name_zh, value=w.value) for w in row.worst]
    return TargetDetail(
        **target.model_dump(), as_of=day, computed_at=values.computed_at,
        assessment=Assessment(**vars(row.assessment)),
        numerator=row.numerator, denominator=row.denominator, defaults=dict(row.defaults),
        worst_districts=worst, monthly=monthly, history=queries.list_history(conn, target_id),
    )  # fmt: skip


@router.patch("/{target_id}", response_model=plan_targets.Target)
def update_target(
    target_id: str, body: TargetUpdate, conn: Conn, principal: Operator
) -> plan_targets.Target:
    """Change fields of a target; kept in its history and the audit log."""
    changes = body.model_dump(exclude_unset=True)
    try:
        _, after = plan_targets.edit_target(conn, target_id, changes, principal.audit_actor())
    except KeyError:
        raise HTTPException(404, detail=f"target {target_id!r} not found") from None
    except ValueError as exc:
        field, _, message = str(exc).partition(": ")
        raise field_error(422, ["body", field], message or str(exc)) from None
    return after
