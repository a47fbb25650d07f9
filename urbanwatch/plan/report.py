"""The plan's progress table: each target with its clause, lead unit, value, line, status,
projection and worst districts, as the bureau answering for it hands it up.

`build_report` reads (targets, KPIs, kpi_daily); `urbanwatch.plan.render` writes it as text,
CSV, Excel or A4 HTML. Ledger KPIs can be recomputed for any past day, so where no daily
snapshots exist yet the trend is drawn from values recomputed at monthly steps.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import psycopg

from urbanwatch.kpi import snapshot, status
from urbanwatch.kpi.base import KpiSpec, KpiValue, Scope, effective_config, load_all
from urbanwatch.plan.targets import Target
from urbanwatch.plan.values import Values
from urbanwatch.queries import kpi as kpi_queries
from urbanwatch.queries import targets as target_queries

WORST_SHOWN = 3
# Without snapshots, the trend comes from the KPI recomputed this many days back (monthly).
RECOMPUTE_BACK_DAYS = (90, 60, 30)


@dataclass(frozen=True)
class DistrictValue:
    code: str
    name_zh: str
    name_en: str
    value: float


@dataclass(frozen=True)
class ReportRow:
    target: Target
    kpi: KpiSpec | None
    scope: str
    assessment: status.Assessment
    numerator: float | None = None
    denominator: float | None = None
    worst: tuple[DistrictValue, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    as_of: date
    district: str | None
    rows: list[ReportRow]


def _scope_for(target: Target, scopes: Mapping[str, Scope], district: str | None) -> Scope:
    if district is not None:
        return scopes[district]
    return scopes[
        target.district if target.scope == "district" and target.district else target.scope
    ]


def _compute(
    conn: psycopg.Connection,
    spec: KpiSpec,
    day: date,
    scope: Scope,
    config: Mapping[str, Any],
    values: Values | None,
) -> KpiValue:
    """The KPI on `day`: from `values` (the API's cache) when given, else computed."""
    if values is not None:
        return values.compute(spec, day, scope, config)
    return spec.compute(conn, day, scope, config)


def _history(
    conn: psycopg.Connection,
    spec: KpiSpec,
    scope: Scope,
    as_of: date,
    config: Mapping[str, Any],
    values: Values | None = None,
) -> list[tuple[date, float | None]]:
    since = as_of - timedelta(days=status.TREND_DAYS)
    history = kpi_queries.daily_points(conn, spec.key, scope.name, since, as_of)
    if len(history) < status.MIN_POINTS:
        for back in RECOMPUTE_BACK_DAYS:
            day = as_of - timedelta(days=back)
            history.append((day, _compute(conn, spec, day, scope, config, values).value))
    return history


def _worst(
    conn: psycopg.Connection,
    spec: KpiSpec,
    target: Target,
    scope: Scope,
    as_of: date,
    config: Mapping[str, Any],
    names: Mapping[str, tuple[str, str]],
    values: Values | None = None,
) -> tuple[DistrictValue, ...]:
    codes = scope.districts if scope.districts is not None else tuple(sorted(names))
    if len(codes) < 2 or spec.unit != "%":
        return ()  # counts (points per year) are not comparable across districts
    found = []
    for code in codes:
        v = _compute(conn, spec, as_of, Scope(code, (code,)), config, values).value
        if v is not None:
            found.append(DistrictValue(code, *names[code], v))
    lower_is_worse = spec.better == "higher"
    found.sort(key=lambda d: d.value if lower_is_worse else -d.value)
    if target.comparator and target.target_value is not None:
        line, comp = target.target_value, target.comparator
        found = [d for d in found if not status.meets(d.value, comp, line)]
    return tuple(found[:WORST_SHOWN])


def assess_target(
    conn: psycopg.Connection,
    target: Target,
    spec: KpiSpec | None,
    scope: Scope,
    as_of: date,
    overrides: Mapping[str, Any] | None,
    values: Values | None = None,
) -> tuple[status.Assessment, Any]:
    if spec is None or target.comparator is None or target.target_value is None:
        why = (
            "no KPI measures this target"
            if target.kpi is None
            else f"KPI {target.kpi} is not installed"
        )
        return status.Assessment("no_data", None, None, None, None, why), None
    config = effective_config(spec, overrides)
    value = _compute(conn, spec, as_of, scope, config, values)
    history = [*_history(conn, spec, scope, as_of, config, values), (as_of, value.value)]
    if target.deadline and as_of > target.deadline:
        at_deadline = _compute(conn, spec, target.deadline, scope, config, values)
        history.append((target.deadline, at_deadline.value))
    return (
        status.assess(target.comparator, target.target_value, target.deadline, as_of,
                      value.value, history),
        value,
    )  # fmt: skip


def build_report(
    conn: psycopg.Connection,
    as_of: date,
    *,
    district: str | None = None,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    target_ids: Collection[str] | None = None,
    worst: bool = True,
    values: Values | None = None,
) -> Report:
    """The plan's progress on `as_of`: every target (or those of `target_ids`) assessed, with
    its worst districts unless `worst` is False (the API's list and feed do not show them;
    each costs the KPI once per district). `values`: take the KPI values from the API's
    cache (urbanwatch/plan/values.py); the caller closes it. Without it, one uncached
    `Values` for the report: a KPI value two targets (or a target's history and another's
    deadline) share is computed once."""
    if values is None:
        values = Values(conn, cache=None)
    registry = load_all()
    scopes = {s.name: s for s in snapshot.scopes(conn)}
    if district is not None and district not in scopes:
        raise KeyError(district)
    names = {
        code: (zh, en)
        for code, zh, en in conn.execute("SELECT code, name_zh, name_en FROM districts")
    }
    with kpi_queries.facts_cache(conn):  # lazy: a cache hit reads no ledger
        rows = [_row(conn, t, registry, scopes, district, config, names, as_of, worst, values)
                for t in target_queries.list_targets(conn)
                if target_ids is None or t.id in target_ids]  # fmt: skip
    return Report(as_of, district, rows)


def _row(
    conn: psycopg.Connection,
    target: Target,
    registry: Mapping[str, KpiSpec],
    scopes: Mapping[str, Scope],
    district: str | None,
    config: Mapping[str, Mapping[str, Any]] | None,
    names: Mapping[str, tuple[str, str]],
    as_of: date,
    with_worst: bool = True,
    values: Values | None = None,
) -> ReportRow:
    spec = registry.get(target.kpi) if target.kpi else None
    scope = _scope_for(target, scopes, district)
    overrides = (config or {}).get(target.kpi or "")
    assessment, value = assess_target(conn, target, spec, scope, as_of, overrides, values)
    worst: tuple[DistrictValue, ...] = ()
    if with_worst and spec is not None and value is not None and district is None:
        config_of = effective_config(spec, overrides)
        worst = _worst(conn, spec, target, scope, as_of, config_of, names, values)
    return ReportRow(
        target, spec, scope.name, assessment,
        value.numerator if value else None, value.denominator if value else None,
        worst, dict(value.defaults) if value else {},
    )  # fmt: skip
