"""路灯 Street lighting: power, voltage, lamps on, energy; per district, or per road."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards import ledger_panels
from dashboards.panels import ALL, attr_filter, attr_variable, by_span, kind_board, thresholds
from dashboards.panels import timeseries as ts
from urbanwatch.kinds import SPECS

UID = "uw-streetlight"
# docs/domain.md §4.3: SL_V_LOW below 198 V, SL_V_HIGH above 242 V (220 V −10 % / +10 %).
V_LOW, V_HIGH = 198, 242
# Energy from power: a lit lamp reports every report_s (urbanwatch/kinds/streetlight.py), so
# Σ P × report_s is its energy; a dark lamp adds ~0 whatever its cadence.
REPORT_S = SPECS["streetlight"].cadence.report_s
ROAD = attr_filter("road", "road")
NO_ROAD = f"'{ALL}' IN ($road)"

RAW = f"""SELECT $__timeGroupAlias(r.ts, $__interval), d.district AS metric, {{expr}} AS value
FROM streetlight_readings r JOIN devices d ON d.device_id = r.device_id
WHERE $__timeFilter(r.ts) AND d.district IN ($district) AND {ROAD} AND {{{{cond}}}}
GROUP BY 1, 2"""
# Over a day: the district rollup when every road is shown, the device rollup of the chosen
# roads otherwise (the planner keeps one branch: the other's condition is a false constant).
DISTRICT_ROLLUP = f"""SELECT $__timeGroupAlias(bucket, $__interval), district AS metric,
       {{expr}} AS value
FROM streetlight_district_hourly
WHERE $__timeFilter(bucket) AND district IN ($district) AND {NO_ROAD} AND {{{{cond}}}}
GROUP BY 1, 2"""
ROAD_ROLLUP = f"""SELECT $__timeGroupAlias(h.bucket, $__interval), d.district AS metric,
       {{expr}} AS value
FROM streetlight_hourly h JOIN devices d ON d.device_id = h.device_id
WHERE $__timeFilter(h.bucket) AND d.district IN ($district) AND NOT {NO_ROAD} AND {ROAD}
  AND {{{{cond}}}}
GROUP BY 1, 2"""


def per_district(raw_expr: str, rollup_expr: str) -> str:
    rollup = (
        DISTRICT_ROLLUP.format(expr=rollup_expr)
        + "\nUNION ALL\n"
        + ROAD_ROLLUP.format(expr=rollup_expr)  # rollup columns: no device column shares a name
    )
    return by_span(RAW.format(expr=raw_expr), rollup)


def board() -> Dashboard:
    energy = f"* {REPORT_S} / 3600000.0"
    dash = (
        kind_board(
            UID,
            "路灯 Street lighting",
            "功率、电压、亮灯与能耗 Power, voltage, lamps on, energy (docs/domain.md §4)",
            "streetlight",
        )
        .with_variable(attr_variable("road", "道路 Road", "streetlight", "road"))
        .with_panel(
            ts(
                1,
                "平均功率 Mean lamp power",
                "watt",
                per_district(
                    "avg(r.active_power_w)",
                    "sum(avg_active_power_w * n) / nullif(sum(n), 0)",
                ),
            )
        )
        .with_panel(
            ts(
                2,
                "最低供电电压 Lowest supply voltage",
                "volt",
                per_district(
                    "min(r.supply_voltage_v) FILTER (WHERE r.supply_voltage_v > 0)",
                    "min(min_supply_voltage_v) FILTER (WHERE min_supply_voltage_v > 0)",
                ),
                steps=thresholds((None, "red"), (V_LOW, "green"), (V_HIGH, "red")),
                description="Zero (supply loss) left out; SL_V_LOW < 198 V, SL_V_HIGH > 242 V.",
            )
        )
        .with_panel(
            ts(
                3,
                "亮灯上报占比 Reports with the lamp on",
                "percent",
                per_district(
                    "100.0 * count(*) FILTER (WHERE r.power_state IN ('on', 'low')) / count(*)",
                    "100.0 * sum(on_count) / nullif(sum(n), 0)",
                ),
            )
        )
        .with_panel(
            ts(
                4,
                "能耗（按功率估算）Energy (from power)",
                "kwatth",
                per_district(
                    f"sum(r.active_power_w) {energy}", f"sum(avg_active_power_w * n) {energy}"
                ),
                bars=True,
                description=f"Σ power × the lit report interval ({REPORT_S} s).",
            )
        )
    )
    dash = dash.with_row(Row("台账与计划指标 Ledgers and plan KPIs").id(100))
    for panel in ledger_panels.streetlight_panels():
        dash = dash.with_panel(panel)
    return dash
