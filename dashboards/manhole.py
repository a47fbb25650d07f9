"""井盖 Manhole covers: opens, tilt, water level (overflow) and gas, per district."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards import ledger_panels
from dashboards.panels import by_span, kind_board, table, thresholds, timeseries

UID = "uw-manhole"
# docs/domain.md §2.3 (MH_TILT, MH_FLIP, MH_WATER_HIGH, MH_OVERFLOW, MH_GAS_L1/L2, MH_LOW_BATT).
TILT_ALARM_DEG, FLIP_DEG = 10, 90
WATER_HIGH_M, OVERFLOW_M = 0.5, 0.2
CH4_L1, CH4_L2 = 10, 50  # % LEL
H2S_L1_PPM, CO_L1_PPM, O2_MIN_PCT = 7, 17, 19.5
LOW_BATTERY_V = 3.3

RAW = """SELECT $__timeGroupAlias(r.ts, $__interval), d.district AS metric, {expr} AS value
FROM manhole_readings r JOIN devices d ON d.device_id = r.device_id
WHERE $__timeFilter(r.ts) AND d.district IN ($district) AND {{cond}} GROUP BY 1, 2"""
ROLLUP = """SELECT $__timeGroupAlias(bucket, $__interval), district AS metric, {expr} AS value
FROM manhole_district_hourly
WHERE $__timeFilter(bucket) AND district IN ($district) AND {{cond}} GROUP BY 1, 2"""


def per_district(raw_expr: str, rollup_expr: str) -> str:
    return by_span(RAW.format(expr=raw_expr), ROLLUP.format(expr=rollup_expr))


def event_condition(prefix: str = "") -> str:
    """An overflow or gas device-hour: water near the cover or gas past its first level.
    Migration 031's partial index (manhole_hourly_data_events_idx) holds exactly this
    predicate, so the planner reads only these device-hours; change both together."""
    return (
        f"{prefix}min_water_distance_m <= {WATER_HIGH_M} OR {prefix}max_ch4_pct_lel >= {CH4_L1} "
        f"OR {prefix}max_h2s_ppm >= {H2S_L1_PPM} OR {prefix}max_co_ppm >= {CO_L1_PPM} "
        f"OR {prefix}min_o2_pct_vol < {O2_MIN_PCT}"
    )


def events_sql() -> str:
    """Device-hours with water near the cover or gas above its first level (the latest 500);
    beyond six hours from the per-device hourly rollup's event hours (migration 031)."""
    columns = """{t} AS time, {p}device_id AS "设备 device", d.district AS "区 district",
       d.attrs->>'road' AS "道路 road", {agg}"""
    raw_aggs = """min(r.water_distance_m) AS min_water_distance_m,
       max(r.ch4_pct_lel) AS max_ch4_pct_lel, max(r.h2s_ppm) AS max_h2s_ppm,
       max(r.co_ppm) AS max_co_ppm, min(r.o2_pct_vol) AS min_o2_pct_vol"""
    hourly_aggs = (
        "h.min_water_distance_m, h.max_ch4_pct_lel, h.max_h2s_ppm, h.max_co_ppm, h.min_o2_pct_vol"
    )
    raw = f"""SELECT * FROM (
SELECT {columns.format(t="date_trunc('hour', r.ts)", p="r.", agg=raw_aggs)}
FROM manhole_readings r JOIN devices d ON d.device_id = r.device_id
WHERE $__timeFilter(r.ts) AND d.district IN ($district) AND {{cond}}
GROUP BY 1, 2, 3, 4) x WHERE {event_condition()}"""
    rollup = f"""SELECT {columns.format(t="h.bucket", p="h.", agg=hourly_aggs)}
FROM manhole_hourly h JOIN devices d ON d.device_id = h.device_id
WHERE $__timeFilter(h.bucket) AND d.district IN ($district)
  AND ({event_condition("h.")}) AND {{cond}}"""
    return by_span(raw, rollup).replace("ORDER BY 1", "ORDER BY 1 DESC LIMIT 500")


def board() -> Dashboard:
    dash = (
        kind_board(
            UID,
            "井盖 Manhole covers",
            "开盖、倾斜、满溢与气体 Opens, tilt, overflow and gas (docs/domain.md §2)",
            "manhole",
        )
        .with_panel(
            timeseries(
                1,
                "开盖上报 Open-cover reports",
                "none",
                per_district("count(*) FILTER (WHERE r.cover_open)", "sum(open_count)"),
                bars=True,
            )
        )
        .with_panel(
            timeseries(
                2,
                "最大倾角 Max tilt",
                "degree",
                per_district("max(r.tilt_deg)", "max(max_tilt_deg)"),
                steps=thresholds((None, "green"), (TILT_ALARM_DEG, "orange"), (FLIP_DEG, "red")),
                description="MH_TILT alarms on |tilt − baseline| > 10°; MH_FLIP at 90°.",
            )
        )
        .with_panel(
            timeseries(
                3,
                "井内水位距井盖（最小）Water below the cover (min)",
                "lengthm",
                per_district("min(r.water_distance_m)", "min(min_water_distance_m)"),
                steps=thresholds((None, "red"), (OVERFLOW_M, "orange"), (WATER_HIGH_M, "green")),
            )
        )
        .with_panel(
            timeseries(
                4,
                "甲烷（最大）CH₄ max (% LEL)",
                "percent",
                per_district("max(r.ch4_pct_lel)", "max(max_ch4_pct_lel)"),
                steps=thresholds((None, "green"), (CH4_L1, "orange"), (CH4_L2, "red")),
            )
        )
        .with_panel(
            timeseries(
                5,
                "电池电压（最低）Battery (min)",
                "volt",
                per_district("min(r.battery_v)", "min(min_battery_v)"),
                steps=thresholds((None, "red"), (LOW_BATTERY_V, "green")),
                span=24,  # full width: the SDK does not wrap a 24-wide panel after a half row
            )
        )
        .with_panel(
            table(
                6,
                "满溢与气体事件（按设备小时）Overflow and gas events (device-hours)",
                events_sql(),
            )
        )
    )
    dash = dash.with_row(Row("台账与计划指标 Ledgers and plan KPIs").id(100))
    for panel in ledger_panels.manhole_panels():
        dash = dash.with_panel(panel)
    return dash
