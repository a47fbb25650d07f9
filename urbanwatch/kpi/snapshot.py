"""Daily KPI snapshots (kpi_daily): every registered KPI, for the city, the central city,
the county-level cities and each district, with numerator, denominator, exclusions and the
configuration used. A day is recomputed by computing it again (late data, docs/domain.md §6)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any

import psycopg

from urbanwatch.kpi.base import KpiSpec, KpiValue, Scope, effective_config, load_all
from urbanwatch.queries import kpi as q

# docs/domain.md §6: readings may arrive up to 72 h late, so a run also redoes the 3 days before.
LATE_DAYS = 3
# KPIs whose per-DMA list (the items of the city-wide value) is stored too (kpi_daily_dma):
# the water board draws R_BL per DMA from it.
DMA_KPIS = ("water.loss_rate_R_BL",)


def scopes(conn: psycopg.Connection) -> list[Scope]:
    classes = q.district_classes(conn)
    central = tuple(sorted(c for c, k in classes.items() if k == "central"))
    county = tuple(sorted(c for c, k in classes.items() if k == "county"))
    return [
        Scope("city", None),
        Scope("central", central),
        Scope("county", county),
        *(Scope(code, (code,)) for code in sorted(classes)),
    ]


def scope_named(conn: psycopg.Connection, name: str) -> Scope:
    for scope in scopes(conn):
        if scope.name == name:
            return scope
    raise KeyError(name)


def compute(
    conn: psycopg.Connection,
    spec: KpiSpec,
    day: date,
    scope: Scope,
    overrides: Mapping[str, Any] | None = None,
) -> KpiValue:
    return spec.compute(conn, day, scope, effective_config(spec, overrides))


def snapshot_day(
    conn: psycopg.Connection,
    day: date,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    kpis: Iterable[str] | None = None,
) -> int:
    """Compute and store one day's values; the number of rows written."""
    registry = load_all()
    wanted = [registry[k] for k in (kpis or registry)]
    rows = []
    with q.facts_cache(conn):
        for scope, spec in ((s, k) for s in scopes(conn) for k in wanted):
            v = compute(conn, spec, day, scope, (config or {}).get(spec.key))
            defaults = {k: _plain(x) for k, x in v.defaults.items()}
            rows.append(
                (day, spec.key, scope.name, v.value, v.numerator, v.denominator,
                 v.exclusions, defaults, v.note)
            )  # fmt: skip
        dma_rows = {
            spec.key: _dma_rows(conn, spec, day, (config or {}).get(spec.key))
            for spec in wanted
            if spec.key in DMA_KPIS and spec.items is not None
        }
    with conn.transaction():
        q.upsert_daily(conn, rows)
        for kpi, per_dma in dma_rows.items():
            q.replace_dma_daily(conn, day, kpi, per_dma)
    return len(rows)


def _dma_rows(
    conn: psycopg.Connection, spec: KpiSpec, day: date, overrides: Mapping[str, Any] | None
) -> list[tuple[Any, ...]]:
    """The KPI's per-DMA items over the whole city as kpi_daily_dma rows."""
    assert spec.items is not None
    items = spec.items(conn, day, Scope("city", None), effective_config(spec, overrides))
    return [
        (i["dma_id"], i.get("district"), i.get("R_BL"), i.get("supply_m3"),
         i.get("authorised_m3"), i.get("note", ""))
        for i in items
    ]  # fmt: skip


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def days_to_snapshot(today: date, day: date | None, since: date | None) -> list[date]:
    """--date D: D alone; --since D: D..today; neither: today and the LATE_DAYS before."""
    if day is not None:
        return [day]
    start = since if since is not None else today - timedelta(days=LATE_DAYS)
    return [start + timedelta(days=i) for i in range((today - start).days + 1)]
