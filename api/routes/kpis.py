"""/kpis: stored daily values, a KPI now, the list behind it, and the 一网统管 feed (T10)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from api.auth import Principal, require
from api.deps import Conn
from api.routes.alerts import read_scope
from api.routes.targets import value_cache
from urbanwatch.identity.roles import Role
from urbanwatch.kpi import snapshot
from urbanwatch.kpi.base import effective_config, load_all
from urbanwatch.kpi.cli import today_local
from urbanwatch.plan.report import build_report
from urbanwatch.plan.values import Values
from urbanwatch.queries import alert_work
from urbanwatch.queries import kpi as queries

router = APIRouter(tags=["plan"])
Viewer = Annotated[Principal, require(Role.viewer)]


class KpiInfo(BaseModel):
    key: str
    area: str
    title_zh: str
    title_en: str
    unit: str
    better: str
    section: str
    defaults: dict[str, Any]


class KpiNow(BaseModel):
    key: str
    scope: str
    day: date
    value: float | None  # null: no data (nothing to count), never 0 %
    numerator: float | None
    denominator: float | None
    exclusions: list[str]
    defaults: dict[str, Any]
    computed_at: datetime  # when the value was computed (cached: docs/kpis.md)


def _spec(key: str) -> Any:
    spec = load_all().get(key)
    if spec is None:
        raise HTTPException(404, detail=f"KPI {key!r} not found (GET /kpis/catalog lists them)")
    return spec


def _scope(conn: Conn, name: str) -> snapshot.Scope:
    try:
        return snapshot.scope_named(conn, name)
    except KeyError:
        raise HTTPException(
            422,
            detail=[
                {"loc": ["query", "scope"], "msg": f"unknown scope {name!r}", "type": "value_error"}
            ],
        ) from None


@router.get("/kpis/catalog", response_model=list[KpiInfo])
def catalog(principal: Viewer) -> list[KpiInfo]:
    return [
        KpiInfo(key=s.key, area=s.area, title_zh=s.title_zh, title_en=s.title_en, unit=s.unit,
                better=s.better, section=s.section, defaults=dict(s.defaults))
        for s in load_all().values()
    ]  # fmt: skip


@router.get("/kpis", response_model=list[queries.DailyValue])
def daily_values(
    conn: Conn,
    principal: Viewer,
    kpi: str,
    scope: str = "city",
    since: date | None = None,
    until: date | None = None,
) -> list[queries.DailyValue]:
    """Stored daily snapshots of one KPI in one scope (city, central, county or a district)."""
    _spec(kpi)
    end = until or today_local()
    return queries.daily_series(conn, kpi, scope, since or date(end.year, 1, 1), end)


@router.get("/kpis/{key}", response_model=KpiNow)
def kpi_now(
    request: Request,
    key: str,
    conn: Conn,
    principal: Viewer,
    scope: str = "city",
    day: date | None = None,
) -> KpiNow:
    """The KPI computed now from the ledgers and readings (or as it stood on `day`); a
    cached value until a ledger or alert changes, or a minute passes (docs/kpis.md)."""
    spec, when = _spec(key), day or today_local()
    values = Values(conn, value_cache(request))
    v = values.compute(spec, when, _scope(conn, scope), effective_config(spec, None))
    values.close()
    return KpiNow(key=key, scope=scope, day=when, value=v.value, numerator=v.numerator,
                  denominator=v.denominator, exclusions=list(v.exclusions),
                  defaults=dict(v.defaults), computed_at=values.computed_at)  # fmt: skip


@router.get("/kpis/{key}/items")
def kpi_items(
    key: str,
    conn: Conn,
    principal: Viewer,
    scope: str = "city",
    day: date | None = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
) -> list[dict[str, Any]]:
    """The list behind the KPI: the covers, points or dangers that hold it back."""
    spec = _spec(key)
    if spec.items is None:
        return []
    config = effective_config(spec, None)
    return spec.items(conn, day or today_local(), _scope(conn, scope), config)[:limit]


FEED_COLUMNS = "id, rule_id, subject, kind, district, unit, severity, status, opened_at, title"
FEED_ALERTS = (
    f"SELECT {FEED_COLUMNS} FROM alerts WHERE status <> 'resolved' "
    "ORDER BY opened_at DESC LIMIT 500"
)
# A crew's feed: the open alerts routed or assigned to its own unit only, as GET /alerts lists
# them for it (docs/api-alerts.md "Who sees and works what"); `unit` is the effective unit.
CREW_FEED_ALERTS = (
    f"SELECT {FEED_COLUMNS} FROM ({alert_work.ROUTED_BASE}) a "
    f"WHERE a.status <> 'resolved' AND {alert_work.IN_SCOPE.format(unit='a.unit')} "
    "ORDER BY a.opened_at DESC LIMIT 500"
)


def _feed_alerts(principal: Principal) -> tuple[str, list[Any]]:
    scope = read_scope(principal)
    if scope is None:
        return FEED_ALERTS, []
    return CREW_FEED_ALERTS, [scope.unit, scope.unit]


@router.get("/feed")
def platform_feed(
    request: Request, conn: Conn, principal: Viewer, as_of: date | None = None
) -> dict[str, Any]:
    """The JSON feed for the city's comprehensive management platform (一网统管, T10):
    every target with value and status, and the open alerts (a crew's: its own unit's only).
    Documented in docs/kpis.md."""
    day = as_of or today_local()
    values = Values(conn, value_cache(request))
    report = build_report(conn, day, worst=False, values=values)
    values.close()
    alerts = conn.execute(*_feed_alerts(principal)).fetchall()
    names = ("id", "rule_id", "subject", "kind", "district", "unit", "severity", "status",
             "opened_at", "title")  # fmt: skip
    return {
        "schema": "urbanwatch.feed/1",
        "as_of": day.isoformat(),
        "computed_at": values.computed_at.isoformat(),
        "targets": [
            {
                "id": r.target.id,
                "kpi": r.target.kpi,
                "title_zh": r.target.title_zh,
                "clause_zh": r.target.clause_zh,
                "lead_units": r.target.lead_units,
                "scope": r.scope,
                "comparator": r.target.comparator,
                "target_value": r.target.target_value,
                "unit": r.target.unit,
                "deadline": r.target.deadline.isoformat() if r.target.deadline else None,
                "value": r.assessment.value,
                "status": r.assessment.status,
                "projection": r.assessment.projection,
                "reasoning": r.assessment.reasoning,
            }
            for r in report.rows
        ],
        "open_alerts": [
            {
                k: (v.isoformat() if hasattr(v, "isoformat") else v)
                for k, v in zip(names, a, strict=True)
            }
            for a in alerts
        ],
    }
