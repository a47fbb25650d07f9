"""供水 Water supply: DMA inflow, pressure and minimum night flow."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards import ledger_panels
from dashboards.panels import ALL, attr_filter, attr_variable, by_span, kind_board, thresholds
from dashboards.panels import timeseries as ts
from dashboards.water_rbl import rbl_panels

UID = "uw-water"
# docs/domain.md §5.6: WS_LOW_PRESSURE below 0.14 MPa, WS_HIGH_PRESSURE above ~0.6 MPa.
P_LOW, P_HIGH = 0.14, 0.6
# §5.5: urban minimum night flow falls between 02:00 and 04:00 local time; a night's MNF is
# its lowest hourly mean net inflow (method (a)).
TZ = "Asia/Shanghai"
MNF_HOURS = (2, 3)
DMA = "d.attrs->>'dma_id'"
METERS = f"d.kind = 'watermeter' AND d.district IN ($district) AND {attr_filter('dma', 'dma_id')}"
# Net inflow of a DMA: its inlets minus its outlets.
SIGN = "CASE d.attrs->>'meter_role' WHEN 'outlet' THEN -1 ELSE 1 END"
BOUNDARY = "d.attrs->>'meter_role' IN ('inlet', 'outlet')"
# The rollups of migration 031 carry district, DMA and role as they were when the hour was
# materialized (watermeter_dma_hourly, watermeter_boundary_hourly: boundary meters only).
ROLLUP_SCOPE = f"h.district IN ($district) AND ('{ALL}' IN ($dma) OR h.dma_id IN ($dma))"
BOUNDARY_METERS = f"{ROLLUP_SCOPE} AND h.meter_role IN ('inlet', 'outlet')"
BOUNDARY_SIGN = "CASE h.meter_role WHEN 'outlet' THEN -1 ELSE 1 END"


def inflow_sql() -> str:
    raw = f"""SELECT time, dma AS metric, sum(q) AS value FROM (
    SELECT $__timeGroupAlias(r.ts, $__interval), {DMA} AS dma, r.device_id,
           {SIGN} * avg(r.flow_m3_h) AS q
    FROM watermeter_readings r JOIN devices d ON d.device_id = r.device_id
    WHERE $__timeFilter(r.ts) AND {METERS} AND {BOUNDARY} AND {{cond}}
    GROUP BY 1, 2, 3, d.attrs->>'meter_role') m GROUP BY 1, 2"""
    # Beyond six hours: the boundary meters' hourly rows (migration 031), not every meter's.
    rollup = f"""SELECT time, dma AS metric, sum(q) AS value FROM (
    SELECT $__timeGroupAlias(h.bucket, $__interval), h.dma_id AS dma, h.device_id,
           {BOUNDARY_SIGN} * avg(h.avg_flow_m3_h) AS q
    FROM watermeter_boundary_hourly h
    WHERE $__timeFilter(h.bucket) AND {BOUNDARY_METERS} AND {{cond}}
    GROUP BY 1, 2, 3, h.meter_role) m GROUP BY 1, 2"""
    return by_span(raw, rollup)


def pressure_sql() -> str:
    raw = f"""SELECT $__timeGroupAlias(r.ts, $__interval), {DMA} AS metric,
       min(r.pressure_mpa) AS value
FROM watermeter_readings r JOIN devices d ON d.device_id = r.device_id
WHERE $__timeFilter(r.ts) AND {METERS} AND r.pressure_mpa IS NOT NULL AND {{cond}} GROUP BY 1, 2"""
    # Beyond six hours: the per-district, per-DMA hourly rollup (migration 031), a row per
    # DMA and hour instead of one per meter and hour.
    rollup = f"""SELECT $__timeGroupAlias(h.bucket, $__interval), h.dma_id AS metric,
       min(h.min_pressure_mpa) AS value
FROM watermeter_dma_hourly h
WHERE $__timeFilter(h.bucket) AND {ROLLUP_SCOPE} AND h.min_pressure_mpa IS NOT NULL AND {{cond}}
GROUP BY 1, 2"""
    return by_span(raw, rollup)


def night_flow_sql() -> str:
    hours = ", ".join(str(h) for h in MNF_HOURS)
    return f"""SELECT date_trunc('day', bucket AT TIME ZONE '{TZ}') AT TIME ZONE '{TZ}' AS time,
       dma AS metric, min(q) AS value
FROM (
    SELECT h.bucket, h.dma_id AS dma, sum({BOUNDARY_SIGN} * h.avg_flow_m3_h) AS q
    FROM watermeter_boundary_hourly h
    WHERE $__timeFilter(h.bucket) AND {BOUNDARY_METERS}
      AND extract(hour FROM h.bucket AT TIME ZONE '{TZ}') IN ({hours})
    GROUP BY 1, 2
) night GROUP BY 1, 2 ORDER BY 1"""


def board() -> Dashboard:
    dash = (
        kind_board(
            UID,
            "供水 Water supply (DMA)",
            "分区流量、压力与夜间最小流量 DMA inflow, pressure, minimum night flow "
            "(docs/domain.md §5)",
            "watermeter",
        )
        .with_variable(attr_variable("dma", "分区 DMA", "watermeter", "dma_id"))
        .with_panel(ts(1, "分区净进水量 DMA net inflow", "suffix: m³/h", inflow_sql(), span=24))
        .with_panel(
            ts(
                2,
                "最低压力 Lowest pressure",
                "suffix: MPa",
                pressure_sql(),
                steps=thresholds((None, "red"), (P_LOW, "green"), (P_HIGH, "orange")),
            )
        )
        .with_panel(
            ts(
                3,
                "夜间最小流量 Minimum night flow (02:00–04:00)",
                "suffix: m³/h",
                night_flow_sql(),
                bars=True,
                description="Lowest hourly mean net inflow, 02:00–04:00 local, per night.",
            ).time_from("14d")
        )
    )
    dash = dash.with_row(Row("台账与计划指标 Ledgers and plan KPIs").id(100))
    for panel in ledger_panels.water_panels():
        dash = dash.with_panel(panel)
    dash = dash.with_row(Row("漏损率 R_BL per region, district and DMA").id(101))
    for rbl_panel in rbl_panels():
        dash = dash.with_panel(rbl_panel)
    return dash
