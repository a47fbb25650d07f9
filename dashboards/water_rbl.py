"""供水 R_BL per DMA, district and region against its line (9.7 % central city, 11 % county-level
cities; docs/domain.md §5.7, plan T8), from the stored daily snapshots: kpi_daily for the city,
the regions and the districts, kpi_daily_dma (migration 021) for the DMAs."""

from __future__ import annotations

from grafana_foundation_sdk.builders.bargauge import Panel as BarGauge
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models.dashboard import DynamicConfigValue

from dashboards.ledger_panels import RBL_CENTRAL, RBL_COUNTY
from dashboards.panels import ALL, PG, SQL, table, thresholds
from dashboards.plan_sql import AS_OF

KPI = "water.loss_rate_R_BL"
LINES = {"central": RBL_CENTRAL, "county": RBL_COUNTY}
LINE = (
    f"(CASE dd.district_class WHEN 'central' THEN {RBL_CENTRAL} ELSE {RBL_COUNTY} END)"
    "::double precision"
)
REGION_NAMES = {"central": "中心城市 central", "county": "县级城市 county"}
REGION = "CASE dd.district_class WHEN 'central' THEN '中心城市 central' ELSE '县级城市 county' END"
OVER = "超线 over line (pp)"

# Each DMA's latest snapshot up to the end of the time range, furthest over its line first.
PER_DMA = f"""SELECT m.dma_id AS "分区 DMA", dd.name_zh || ' ' || dd.name_en AS "区 district",
       {REGION} AS "区域 region", m.value AS "R_BL (%)", {LINE} AS "控制线 line (%)",
       m.value - {LINE} AS "{OVER}",
       m.supply_m3 AS "供水量 supply (m³)", m.authorised_m3 AS "注册用水量 authorised (m³)",
       m.day AS "快照日 snapshot day", m.note AS "说明 note"
FROM (
    SELECT DISTINCT ON (k.dma_id) k.dma_id, k.district, k.value, k.supply_m3,
           k.authorised_m3, k.day, k.note
    FROM kpi_daily_dma k
    WHERE k.kpi = '{KPI}' AND k.day <= {AS_OF}
      AND ('{ALL}' IN ($dma) OR k.dma_id IN ($dma))
    ORDER BY k.dma_id, k.day DESC
) m JOIN districts dd ON dd.code = m.district
WHERE m.district IN ($district)
ORDER BY m.value - {LINE} DESC NULLS LAST, m.dma_id"""


def by_region_sql(region: str) -> str:
    """The region's value and each chosen district's in it, latest snapshot up to the end of
    the time range: one row per scope (a bar each); nothing when no chosen district is in
    the region."""
    return f"""SELECT s.scope_name AS metric, s.value
FROM (
    SELECT DISTINCT ON (k.scope)
           k.scope, k.value,
           CASE WHEN k.scope = '{region}' THEN '{REGION_NAMES[region]}'
                ELSE dd.name_zh || ' ' || dd.name_en END AS scope_name,
           k.scope = '{region}' AS is_region
    FROM kpi_daily k LEFT JOIN districts dd ON dd.code = k.scope
    WHERE k.kpi = '{KPI}' AND k.day <= {AS_OF} AND k.value IS NOT NULL
      AND EXISTS (SELECT FROM districts c WHERE c.district_class = '{region}'
                  AND c.code IN ($district))
      AND (k.scope = '{region}' OR (dd.district_class = '{region}' AND k.scope IN ($district)))
    ORDER BY k.scope, k.day DESC
) s
ORDER BY s.is_region DESC, s.value DESC"""


def region_gauge(panel_id: int, region: str, title: str) -> BarGauge:
    line = LINES[region]
    return (
        BarGauge()
        .id(panel_id)
        .title(title)
        .description(
            f"最近一日快照（kpi_daily）。Latest daily snapshot up to the end of the time range "
            f"(calendar year to the day); red at or above the line ({line} %)."
        )
        .datasource(PG)
        .span(12)
        .height(8)
        .unit("percent")
        .min(0)
        .max(2 * line)
        .reduce_options(ReduceDataOptions().values(True).calcs(["lastNotNull"]))
        .orientation(cm.VizOrientation.HORIZONTAL)
        .thresholds(thresholds((None, "green"), (0.9 * line, "orange"), (line, "red")))
        .with_target(SQL(by_region_sql(region), table=True))
    )


def per_dma_table(panel_id: int) -> Table:
    return (
        table(panel_id, "各分区漏损率 R_BL per DMA (against its region's line)", PER_DMA, height=9)
        .description(
            "每日快照（kpi_daily_dma）中各分区的漏损率，超线者在前。Each DMA's R_BL from the "
            "latest daily snapshot up to the end of the time range, furthest over its line "
            "first (9.7 % central city, 11 % county-level cities); the volumes behind it: "
            f"GET /kpis/{KPI}/items."
        )
        .override_by_name(
            "R_BL (%)",
            [
                DynamicConfigValue(id_val="unit", value="percent"),
                DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-text"}),
                DynamicConfigValue(
                    id_val="thresholds",
                    value=thresholds(
                        (None, "green"), (RBL_CENTRAL, "orange"), (RBL_COUNTY, "red")
                    ).build(),
                ),
            ],
        )
        .override_by_name(
            OVER,
            [
                DynamicConfigValue(id_val="decimals", value=2),
                DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
                DynamicConfigValue(
                    id_val="thresholds",
                    value=thresholds((None, "green"), (0, "red")).build(),
                ),
            ],
        )
    )


def rbl_panels() -> list[BarGauge | Table]:
    return [
        region_gauge(7, "central", "中心城市漏损率 R_BL central city (≤ 9.7 %)"),
        region_gauge(8, "county", "县级城市漏损率 R_BL county-level cities (≤ 11 %)"),
        per_dma_table(9),
    ]
