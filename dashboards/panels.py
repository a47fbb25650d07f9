"""The pieces every board is built from: the PostgreSQL query type the SDK lacks, the
provisioned datasource, thresholds, template variables and span-dependent SQL."""

from __future__ import annotations

from typing import Any, Self

from grafana_foundation_sdk.builders.common import GraphThresholdsStyleConfig
from grafana_foundation_sdk.builders.dashboard import CustomVariable, Dashboard, QueryVariable
from grafana_foundation_sdk.builders.dashboard import ThresholdsConfig as Thresholds
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as TimeSeries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.common import GraphDrawStyle, GraphThresholdsStyleMode
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    Threshold,
    ThresholdsMode,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

from urbanwatch.kinds import SPECS

# The provisioned datasource (dashboards/provisioning/datasources/urbanwatch.yaml): every
# panel and variable names this uid, so the boards work wherever the YAML is provisioned.
DATASOURCE_UID = "urbanwatch-pg"
DATASOURCE_TYPE = "grafana-postgresql-datasource"  # the plugin id since Grafana 10.2.3
PG = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)

# Value a dma/road variable's "All" sends: matches devices without the attribute too.
ALL = "__all"
# Panels that span more than this read the hourly rollups instead of raw readings. Six
# hours, not a day: a day of raw lamp readings is 2.4 M rows at city scale, seconds to
# aggregate (bench/dashboards.py); the rollups hold the live hour too.
RAW_SPAN = "interval '6 hours'"
_SPAN = "($__timeTo()::timestamptz - $__timeFrom()::timestamptz)"
SHORT = f"{_SPAN} <= {RAW_SPAN}"
LONG = f"{_SPAN} > {RAW_SPAN}"
# Panel SQL's "now": the end of the dashboard's range (now on a live board), so a board
# looking at the past shows the state at the end of its range.
END = "$__timeTo()::timestamptz"


class SQLQuery(cogvariants.Dataquery):
    """Grafana's core PostgreSQL target in code mode (the SDK has no builder for it)."""

    def __init__(
        self,
        raw_sql: str = "",
        ref_id: str | None = None,
        format_: str = "time_series",
        datasource: DataSourceRef | None = None,
    ) -> None:
        self.raw_sql = raw_sql
        self.ref_id = ref_id
        self.format = format_
        self.datasource = datasource

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "rawSql": self.raw_sql,
            "format": self.format,
            "rawQuery": True,
            "editorMode": "code",
        }
        if self.ref_id is not None:
            out["refId"] = self.ref_id
        if self.datasource is not None:
            out["datasource"] = self.datasource.to_json()
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        ds = data.get("datasource")
        return cls(
            data.get("rawSql", ""),
            data.get("refId"),
            data.get("format", "time_series"),
            DataSourceRef.from_json(ds) if ds else None,
        )


class SQL(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, raw_sql: str, ref_id: str = "A", table: bool = False) -> None:
        self._internal = SQLQuery(
            raw_sql.strip(), ref_id, "table" if table else "time_series", datasource=PG
        )

    def build(self) -> SQLQuery:
        return self._internal


# Dashboard.from_json() decodes targets of these datasource types back into SQLQuery.
for _ident in (DATASOURCE_TYPE, "postgres"):
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=_ident, from_json_hook=SQLQuery.from_json)
    )


def thresholds(*steps: tuple[float | None, str]) -> Thresholds:
    """Absolute steps; the first value is None (from -infinity)."""
    return (
        Thresholds()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def by_span(raw: str, rollup: str) -> str:
    """Raw readings for ranges up to RAW_SPAN, hourly rollups beyond: both branches return the
    same columns; the planner drops the branch whose constant condition is false. Each
    branch must end its WHERE clause with `{cond}`."""
    return (
        f"{raw.strip().format(cond=SHORT)}\nUNION ALL\n{rollup.strip().format(cond=LONG)}\n"
        "ORDER BY 1"
    )


def kind_titles_sql() -> str:
    """VALUES list naming each kind for people (from urbanwatch/kinds, Chinese first)."""
    rows = ", ".join(f"('{name}', '{spec.title}')" for name, spec in SPECS.items())
    return f"(VALUES {rows}) AS kt(kind, kind_title)"


def district_variable() -> QueryVariable:
    return (
        QueryVariable("district")
        .label("区 District")
        .datasource(PG)
        .query("SELECT name_zh || ' ' || name_en AS __text, code AS __value FROM districts")
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def kind_variable() -> CustomVariable:
    values = ",".join(f"{spec.title} : {name}" for name, spec in SPECS.items())
    return (
        CustomVariable("kind")
        .label("类型 Kind")
        .values(values)
        .multi(True)
        .include_all(True)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def attr_variable(name: str, label: str, kind: str, attr: str) -> QueryVariable:
    """A device attribute (DMA, road) of one kind in the chosen districts; All matches
    devices without it too (`'__all' IN ($name) OR ...`)."""
    return (
        QueryVariable(name)
        .label(label)
        .datasource(PG)
        .query(
            f"SELECT DISTINCT attrs->>'{attr}' FROM devices WHERE kind = '{kind}' "
            f"AND district IN ($district) AND attrs ? '{attr}' ORDER BY 1"
        )
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .multi(True)
        .include_all(True)
        .all_value(ALL)
        .current(VariableOption(selected=True, text=["All"], value=["$__all"]))
    )


def attr_filter(name: str, attr: str, alias: str = "d") -> str:
    return f"('{ALL}' IN (${name}) OR {alias}.attrs->>'{attr}' IN (${name}))"


def timeseries(
    panel_id: int,
    title: str,
    unit: str,
    sql: str,
    *,
    span: int = 12,
    steps: Thresholds | None = None,
    bars: bool = False,
    description: str | None = None,
) -> TimeSeries:
    """A time-series panel on one long-format query (columns time, metric, value); its
    thresholds, when given, are drawn as dashed lines."""
    panel = (
        TimeSeries()
        .id(panel_id)
        .title(title)
        .datasource(PG)
        .span(span)
        .height(8)
        .unit(unit)
        .with_target(SQL(sql))
    )
    if steps is not None:
        panel = panel.thresholds(steps).thresholds_style(
            GraphThresholdsStyleConfig().mode(GraphThresholdsStyleMode.DASHED)
        )
    if bars:
        panel = panel.draw_style(GraphDrawStyle.BARS).fill_opacity(60)
    if description:
        panel = panel.description(description)
    return panel


def table(panel_id: int, title: str, sql: str, *, span: int = 24, height: int = 8) -> Table:
    return (
        Table()
        .id(panel_id)
        .title(title)
        .datasource(PG)
        .span(span)
        .height(height)
        .with_target(SQL(sql, table=True))
    )


def kind_board(uid: str, title: str, description: str, kind: str) -> Dashboard:
    """A per-kind board's frame: district variable, a day by default, refreshed every minute."""
    return (
        Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(["urbanwatch", kind])
        .refresh("1m")
        .time("now-24h", "now")
        .timezone("browser")
        .with_variable(district_variable())
    )
