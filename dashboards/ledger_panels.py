"""Per-kind panels on the ledgers and the daily KPI snapshots (part 2): manhole defect
remediation and safety nets, the waterlogging ledger and WL events, lighting KPIs, water
R_BL against 9.7 % / 11 %, minimum night flow with its baseline, suspected bursts."""

from __future__ import annotations

from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as TimeSeries

from dashboards.panels import END, attr_filter, table, thresholds, timeseries
from dashboards.plan_sql import AS_OF, FROM_DAY, TZ, kpi_history_sql

# docs/domain.md §5.7 / plan T8: R_BL ≤ 9.7 % in the central city, ≤ 11 % in county cities.
RBL_CENTRAL, RBL_COUNTY = 9.7, 11
LIGHT_INTACT_LINE = 96  # T6a
DAY_TIME = f"(k.day::timestamp AT TIME ZONE '{TZ}')"
SCOPE_NAME = (
    "CASE k.scope WHEN 'city' THEN '全市 city' WHEN 'central' THEN '中心城市 central' "
    "WHEN 'county' THEN '县级城市 county' ELSE coalesce(dd.name_zh || ' ' || dd.name_en, "
    "k.scope) END"
)


def _kpi_by_scope(kpi: str) -> str:
    """A KPI's daily snapshots for the city, its two regions and the chosen districts."""
    return f"""SELECT {DAY_TIME} AS time, {SCOPE_NAME} AS metric, k.value
FROM kpi_daily k LEFT JOIN districts dd ON dd.code = k.scope
WHERE k.kpi = '{kpi}' AND (k.scope IN ('city', 'central', 'county') OR k.scope IN ($district))
  AND k.day BETWEEN {FROM_DAY} AND {AS_OF}
ORDER BY 1"""


# ---- manhole ----
MANHOLE_KPIS = {
    "manhole.defect_remediation_rate_baseline": "病害治理率(2021基线) remediation, 2021 census",
    "manhole.defect_remediation_rate_all": "病害治理率(全部) remediation, all",
    "manhole.anti_fall_install_rate": "防坠网安装率 safety nets fitted",
    "manhole.intact_rate": "完好率 intact",
}
DEFECTS = """SELECT c.district AS "区 district", d.defect_type AS "病害 defect",
       count(*) AS "确认 confirmed",
       count(*) FILTER (WHERE d.remediated_on IS NULL) AS "未治理 open",
       count(*) FILTER (WHERE d.remediated_on IS NOT NULL AND d.verified_on IS NULL)
           AS "待验收 awaiting verification",
       count(*) FILTER (WHERE d.verified_on IS NOT NULL) AS "已验收 verified",
       count(*) FILTER (WHERE d.baseline_2021) AS "2021基线 baseline"
FROM manhole_defects d JOIN manhole_covers c USING (cover_id)
WHERE d.status = 'confirmed' AND c.district IN ($district)
GROUP BY 1, 2 ORDER BY 4 DESC, 1, 2"""
NETS = f"""SELECT dd.name_zh || ' ' || dd.name_en AS "区 district",
       100.0 * count(*) FILTER (WHERE c.anti_fall_installed_on <= {AS_OF})
       / nullif(count(*), 0) AS "防坠网 safety nets (%)"
FROM manhole_covers c JOIN districts dd ON dd.code = c.district
WHERE c.anti_fall_required AND c.district IN ($district)
GROUP BY 1 ORDER BY 2"""


def manhole_panels() -> list[TimeSeries | Table]:
    return [
        timeseries(
            7,
            "病害治理与防坠网进度 Defect remediation and safety nets (city, daily)",
            "percent",
            kpi_history_sql(tuple(MANHOLE_KPIS), MANHOLE_KPIS),
            steps=thresholds((None, "red"), (40, "orange"), (100, "green")),
        ).max(100),
        table(8, "各区防坠网安装率 Safety nets fitted by district (%)", NETS, span=12),
        table(9, "窨井盖病害台账 Defects by district and type", DEFECTS),
    ]


# ---- waterlogging ----
WL_LEDGER = f"""SELECT dd.name_zh || ' ' || dd.name_en AS "区 district",
       count(*) AS "台账点 points",
       count(*) FILTER (WHERE p.accepted_on <= {AS_OF}) AS "已验收 accepted",
       count(*) FILTER (WHERE p.verification = 'verified') AS "数据验证 verified",
       count(*) FILTER (WHERE p.verification = 'regressed') AS "复发 regressed",
       count(*) FILTER (WHERE p.baseline_2021) AS "2021台账 baseline"
FROM waterlog_points p JOIN districts dd ON dd.code = p.district
WHERE p.district IN ($district)
GROUP BY 1 ORDER BY 1"""
WL_EVENTS = f"""SELECT e.started_at AS time,
       coalesce(p.name, e.point_id, e.device_id) AS "积水点 point",
       e.district AS "区 district", e.max_depth_cm AS "最大深度 max depth (cm)",
       e.duration_above_15cm_min AS "≥15 cm 时长 min", e.time_to_drain_min AS "退水 drain min",
       e.rain_acc_event_mm AS "降雨 rain (mm)", e.max_intensity_mm_h AS "最大雨强 mm/h",
       CASE WHEN e.open THEN '进行中 open' ELSE '已结束 closed' END AS "状态 state",
       e.ended_at AS "结束 ended", e.storm AS "暴雨事件 storm"
FROM wl_events e LEFT JOIN waterlog_points p ON p.point_id = e.point_id
WHERE e.started_at <= {END} AND (e.ended_at IS NULL OR e.ended_at >= $__timeFrom()::timestamptz)
  AND (e.district IS NULL OR e.district IN ($district))
ORDER BY e.started_at DESC LIMIT 500"""
WL_KPIS = {
    "waterlog.remediation_rate": "整治率(验收) remediated (accepted)",
    "waterlog.remediation_rate_verified": "整治率(数据验证) remediated (verified by data)",
}


def waterlog_panels() -> list[TimeSeries | Table]:
    return [
        table(5, "积水点台账进度 Ledger: accepted / verified / regressed", WL_LEDGER, span=12),
        timeseries(
            6,
            "积水点整治率 Remediation rate (city, daily)",
            "percent",
            kpi_history_sql(tuple(WL_KPIS), WL_KPIS),
            steps=thresholds((None, "orange"), (100, "green")),
        ).max(100),
        table(7, "积水事件 WL events (≥ 15 cm)", WL_EVENTS, height=9),
    ]


# ---- street lighting ----
LIGHT_KPIS = {
    "lighting.facility_intact_rate": "设施完好率 intact (T6a)",
    "lighting.lighting_rate": "亮灯率 lit when due",
    "lighting.led_share": "LED占比 LED share (T7)",
}
DARK_KPIS = {"lighting.dark_segments_open": "无灯/不亮路段 dark segments (T6b)"}


def streetlight_panels() -> list[TimeSeries]:
    return [
        timeseries(
            5,
            "完好率、亮灯率与LED占比 Intact, lit and LED share (city, daily)",
            "percent",
            kpi_history_sql(tuple(LIGHT_KPIS), LIGHT_KPIS),
            steps=thresholds((None, "red"), (LIGHT_INTACT_LINE, "green")),
        ).max(100),
        timeseries(
            6,
            "暗段 Dark segments open (city, daily)",
            "none",
            kpi_history_sql(tuple(DARK_KPIS), DARK_KPIS),
            steps=thresholds((None, "green"), (1, "red")),
            bars=True,
        ).min(0),
    ]


# ---- water ----
MNF = f"""SELECT (n.night::timestamp AT TIME ZONE '{TZ}') AS time, n.dma_id || ' ' || s.series
       AS metric, CASE s.series WHEN 'MNF' THEN n.mnf_m3_h ELSE n.baseline_m3_h END AS value
FROM dma_night_flow n CROSS JOIN (VALUES ('MNF'), ('基线 baseline')) AS s(series)
WHERE n.night BETWEEN {FROM_DAY} - 1 AND {AS_OF}
  AND n.dma_id IN (SELECT d.attrs->>'dma_id' FROM devices d WHERE d.kind = 'watermeter'
                   AND d.district IN ($district) AND {attr_filter("dma", "dma_id")})
ORDER BY 1"""
BURSTS = f"""SELECT a.opened_at AS time, a.subject AS "分区 DMA", a.severity AS "级别 severity",
       a.status AS "状态 status", a.title AS "告警 alert", a.district AS "区 district",
       a.resolved_at AS "解除 resolved"
FROM alerts a
WHERE a.rule_id = 'WS_SUSPECTED_BURST' AND a.opened_at <= {END}
  AND (a.resolved_at IS NULL OR a.resolved_at >= $__timeFrom()::timestamptz)
  AND (a.district IS NULL OR a.district IN ($district))
ORDER BY a.opened_at DESC"""


def water_panels() -> list[TimeSeries | Table]:
    return [
        timeseries(
            4,
            "漏损率 R_BL by region and district (≤ 9.7 % central, ≤ 11 % county)",
            "percent",
            _kpi_by_scope("water.loss_rate_R_BL"),
            steps=thresholds((None, "green"), (RBL_CENTRAL, "orange"), (RBL_COUNTY, "red")),
            description="Calendar year to the day (official); the list per DMA: "
            "GET /kpis/water.loss_rate_R_BL/items.",
        ),
        timeseries(
            5,
            "夜间最小流量与基线 MNF with baseline (dma_night_flow)",
            "suffix: m³/h",
            MNF,
            description="Detector's nightly MNF (min of the 1-h rolling mean, 00:00–05:00) "
            "and its baseline (p20 of the previous 14 valid nights).",
        ),
        table(6, "疑似爆管 Suspected bursts", BURSTS, height=7),
    ]
