"""积水点 Waterlogging: depth per ledger point against the 15/20/27/40 cm tiers, rain."""

from __future__ import annotations

from grafana_foundation_sdk.builders.bargauge import Panel as BarGauge
from grafana_foundation_sdk.builders.common import ReduceDataOptions
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.models import common as cm

from dashboards import ledger_panels
from dashboards.panels import END, PG, SQL, by_span, kind_board, table, thresholds, timeseries

UID = "uw-waterlog"
# docs/domain.md §3.1: L1 内涝 15 cm, L2 yellow 20 cm, L3 red (close the road) 27 cm,
# L4 severe 40 cm.
TIERS = thresholds((None, "green"), (15, "blue"), (20, "yellow"), (27, "red"), (40, "purple"))
POINT = "coalesce(d.attrs->>'point_name', d.attrs->>'point_id', d.device_id)"
DEPTH_SENSORS = "d.kind = 'waterlog' AND d.attrs->>'role' = 'depth' AND d.district IN ($district)"
RAIN_GAUGES = "d.kind = 'waterlog' AND d.attrs->>'role' = 'rain' AND d.district IN ($district)"


def depth_sql() -> str:
    raw = f"""SELECT $__timeGroupAlias(r.ts, $__interval), {POINT} AS metric,
       max(r.depth_cm) AS value
FROM waterlog_readings r JOIN devices d ON d.device_id = r.device_id
WHERE $__timeFilter(r.ts) AND {DEPTH_SENSORS} AND {{cond}} GROUP BY 1, 2"""
    rollup = f"""SELECT $__timeGroupAlias(h.bucket, $__interval), {POINT} AS metric,
       max(h.max_depth_cm) AS value
FROM waterlog_hourly h JOIN devices d ON d.device_id = h.device_id
WHERE $__timeFilter(h.bucket) AND {DEPTH_SENSORS} AND {{cond}} GROUP BY 1, 2"""
    return by_span(raw, rollup)


def rain_sql() -> str:
    raw = f"""SELECT $__timeGroupAlias(r.ts, $__interval), d.device_id AS metric,
       sum(r.rain_mm) AS value
FROM waterlog_readings r JOIN devices d ON d.device_id = r.device_id
WHERE $__timeFilter(r.ts) AND {RAIN_GAUGES} AND {{cond}} GROUP BY 1, 2"""
    rollup = f"""SELECT $__timeGroupAlias(h.bucket, $__interval), d.device_id AS metric,
       sum(h.rain_mm) AS value
FROM waterlog_hourly h JOIN devices d ON d.device_id = h.device_id
WHERE $__timeFilter(h.bucket) AND {RAIN_GAUGES} AND {{cond}} GROUP BY 1, 2"""
    return by_span(raw, rollup)


def latest_depth_sql() -> str:
    return f"""SELECT {POINT} AS point, (SELECT r.depth_cm FROM waterlog_readings r
        WHERE r.device_id = d.device_id AND r.ts <= {END} AND r.depth_cm IS NOT NULL
        ORDER BY r.ts DESC LIMIT 1) AS "积水深度 depth"
FROM devices d WHERE {DEPTH_SENSORS} ORDER BY 2 DESC NULLS LAST"""


def ledger_sql() -> str:
    return f"""SELECT {POINT} AS "积水点 point", d.district AS "区 district",
       d.attrs->>'remediation_status' AS "整治状态 remediation",
       d.attrs->>'remediated_at' AS "整治完成 remediated",
       max(h.max_depth_cm) AS "最大深度 max depth (cm)",
       count(*) FILTER (WHERE h.max_depth_cm >= 15) AS "≥15 cm 小时数 hours",
       sum(h.rain_mm) AS "点位雨量 rain here (mm)"
FROM devices d LEFT JOIN waterlog_hourly h
  ON h.device_id = d.device_id AND $__timeFilter(h.bucket)
WHERE {DEPTH_SENSORS}
GROUP BY 1, 2, 3, 4 ORDER BY 5 DESC NULLS LAST"""


def board() -> Dashboard:
    dash = (
        kind_board(
            UID,
            "积水点 Waterlogging",
            "积水深度、分级与降雨 Depth per point with tiers, rain (docs/domain.md §3)",
            "waterlog",
        )
        .with_panel(
            timeseries(
                1,
                "积水深度（各点）Depth per point",
                "suffix: cm",
                depth_sql(),
                span=24,
                steps=TIERS,
                description="Tiers: L1 15 cm 内涝, L2 20 cm, L3 27 cm 封路, L4 40 cm.",
            )
        )
        .with_panel(
            BarGauge()
            .id(2)
            .title("当前积水深度 Depth now")
            .datasource(PG)
            .span(12)
            .height(10)
            .unit("suffix: cm")
            .min(0)
            .max(50)
            .thresholds(TIERS)
            .reduce_options(ReduceDataOptions().values(True).calcs(["lastNotNull"]))
            .orientation(cm.VizOrientation.HORIZONTAL)
            .with_target(SQL(latest_depth_sql(), table=True))
        )
        .with_panel(timeseries(3, "降雨量 Rain (mm)", "lengthmm", rain_sql(), bars=True))
        .with_panel(table(4, "积水点台账 Ledger points in the range", ledger_sql(), height=10))
    )
    dash = dash.with_row(Row("台账与计划指标 Ledgers and plan KPIs").id(100))
    for panel in ledger_panels.waterlog_panels():
        dash = dash.with_panel(panel)
    return dash
