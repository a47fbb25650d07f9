"""规划进度 Plan progress, the landing board: each target T1–T10 against its line, its status,
days to its deadline and the clause; per district, the worst districts, the history with the
line drawn, and links to the API behind each figure (docs/kpis.md)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.bargauge import Panel as BarGauge
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import (
    Dashboard,
    DashboardLink,
    QueryVariable,
    Row,
    TextBoxVariable,
)
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models.dashboard import (
    DashboardLinkType,
    DynamicConfigValue,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
)

from dashboards import plan_sql as q
from dashboards.panels import PG, SQL, district_variable, thresholds, timeseries

UID = "uw-plan"
# Where operators reach the API (docs/api.md): the board's links to /targets/{id} and /kpis.
API_DEFAULT = "http://localhost:8000"


def target_variable() -> QueryVariable:
    return (
        QueryVariable("target")
        .label("目标 Target")
        .datasource(PG)
        .query(
            "SELECT id || ' ' || title_zh AS __text, id AS __value FROM plan_targets "
            "WHERE kpi IS NOT NULL ORDER BY (regexp_replace(id, '\\D', '', 'g'))::int, id"
        )
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .current(VariableOption(selected=True, text="T1", value="T1"))
    )


def status_mappings() -> list[ValueMap]:
    return [
        ValueMap(
            options={
                code: ValueMappingResult(
                    text=q.status_text(code), color=q.STATUS_COLOURS[code], index=i
                )
                for i, code in enumerate(q.STATUS_CODES)
            }
        )
    ]


def _coloured_status(panel: Table) -> Table:
    return panel.mappings(status_mappings()).override_by_name(  # type: ignore[arg-type]
        "状态 status",
        [DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})],
    )


def _link(title: str, url: str) -> dict[str, object]:
    return {"title": title, "url": url, "targetBlank": True}


def targets_table() -> Table:
    panel = (
        Table()
        .id(1)
        .title("规划目标 Plan targets T1–T10")
        .description(
            "状态按 urbanwatch/kpi/status.py 的规则：达标 / 进度正常（近90天趋势到截止日达标）/ "
            "存在风险 / 未达标。Status as the API decides it: met, on track (the 90-day trend "
            "carried to the deadline meets the line), at risk, missed; from the daily snapshots "
            "up to the end of the time range. Click an id for GET /targets/{id}, a KPI for the "
            "list behind it (GET /kpis/{key}/items)."
        )
        .datasource(PG)
        .span(24)
        .height(11)
        .with_target(SQL(q.targets_sql(), table=True))
    )
    panel = _coloured_status(panel).override_by_name(
        "id",
        [
            DynamicConfigValue(
                id_val="links",
                value=[
                    _link("目标详情 GET /targets/${__value.raw}", "${api}/targets/${__value.raw}")
                ],
            )
        ],
    )
    panel = panel.override_by_name(
        "kpi",
        [
            DynamicConfigValue(
                id_val="links",
                value=[
                    _link(
                        "清单 GET /kpis/${__value.raw}/items",
                        '${api}/kpis/${__value.raw}/items?scope=${__data.fields["范围 scope"]}',
                    )
                ],
            )
        ],
    )
    return panel.override_by_name(
        "距截止（天）days to deadline",
        [
            DynamicConfigValue(id_val="unit", value="d"),
            DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
            DynamicConfigValue(
                id_val="thresholds",
                value=thresholds((None, "red"), (0, "orange"), (90, "green")).build(),
            ),
        ],
    )


def status_counts() -> BarGauge:
    return (
        BarGauge()
        .id(2)
        .title("目标状态 Targets by status")
        .datasource(PG)
        .span(8)
        .height(8)
        .unit("none")
        .min(0)
        .reduce_options(ReduceDataOptions().values(True).calcs(["lastNotNull"]))
        .orientation(cm.VizOrientation.HORIZONTAL)
        .thresholds(thresholds((None, "blue")))
        .with_target(SQL(q.status_counts_sql(), table=True))
    )


def worst_districts() -> BarGauge:
    return (
        BarGauge()
        .id(3)
        .title("差距最大的区 Worst districts ($target)")
        .description("The five districts furthest short of the chosen target's line.")
        .datasource(PG)
        .span(8)
        .height(8)
        .min(0)
        .reduce_options(ReduceDataOptions().values(True).calcs(["lastNotNull"]))
        .orientation(cm.VizOrientation.HORIZONTAL)
        .thresholds(thresholds((None, "orange")))
        .with_target(SQL(q.worst_sql(), table=True))
    )


def per_district() -> Table:
    panel = (
        Table()
        .id(4)
        .title("各区进度 Per district ($target)")
        .description(
            "The chosen target in each chosen district of its scope, worst first; click a "
            "district for the list behind its value: GET /kpis/{key}/items?scope=DISTRICT."
        )
        .datasource(PG)
        .span(8)
        .height(8)
        .with_target(SQL(q.districts_sql(), table=True))
    )
    return _coloured_status(panel).override_by_name(
        "区 district",
        [
            DynamicConfigValue(
                id_val="links",
                value=[
                    _link(
                        "清单 GET /kpis/{key}/items?scope=DISTRICT",
                        "${api}/kpis/${__data.fields.kpi}/items"
                        '?scope=${__data.fields["代码 code"]}',
                    )
                ],
            )
        ],
    )


def board() -> Dashboard:
    titles = "目标线按所选目标绘出 the chosen target's line is drawn as a second series"
    return (
        Dashboard("规划进度 Plan progress (2021–2023)")
        .uid(UID)
        .description("安阳市城市运行安全三年行动计划目标进度 Progress on the plan's targets T1–T10")
        .tags(["urbanwatch", "plan"])
        .refresh("1h")
        .time("now-1y", "now")
        .timezone("browser")
        .with_variable(target_variable())
        .with_variable(district_variable())
        .with_variable(
            TextBoxVariable("api")
            .label("API 地址 API URL")
            .default_value(API_DEFAULT)
            .current(VariableOption(selected=True, text=API_DEFAULT, value=API_DEFAULT))
        )
        .link(
            DashboardLink("KPI 日快照 GET /kpis")
            .type(DashboardLinkType.LINK)
            .url("${api}/kpis")
            .target_blank(True)
        )
        .link(
            DashboardLink("目标 GET /targets")
            .type(DashboardLinkType.LINK)
            .url("${api}/targets")
            .target_blank(True)
        )
        .with_panel(targets_table())
        .with_row(Row("所选目标 Chosen target").id(100))
        .with_panel(status_counts())
        .with_panel(worst_districts())
        .with_panel(per_district())
        .with_panel(
            timeseries(
                5,
                "目标历史 History of $target",
                "none",
                q.history_sql(),
                description=f"Daily snapshots (kpi_daily) in the target's scope; {titles}.",
            )
        )
        .with_panel(
            timeseries(
                6,
                "各区历史 $target by district",
                "none",
                q.district_history_sql(),
                description="Daily snapshots per chosen district.",
            )
        )
    )
