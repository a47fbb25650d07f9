"""实时运行 Live operations: open alerts, the alert stream, the device map and ingest health."""

from __future__ import annotations

from grafana_foundation_sdk.builders.bargauge import Panel as BarGauge
from grafana_foundation_sdk.builders.common import (
    FrameGeometrySource,
    MapLayerOptions,
    ReduceDataOptions,
)
from grafana_foundation_sdk.builders.dashboard import Dashboard, Row
from grafana_foundation_sdk.builders.geomap import MapViewConfig, TooltipOptions
from grafana_foundation_sdk.builders.geomap import Panel as Geomap
from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as TimeSeries
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models.dashboard import (
    ValueMap,
    ValueMappingResult,
)
from grafana_foundation_sdk.models.geomap import TooltipMode

from dashboards.live_extra import delivery_panels, storm_panels
from dashboards.panels import (
    PG,
    SHORT,
    SQL,
    by_span,
    district_variable,
    kind_titles_sql,
    kind_variable,
    thresholds,
)
from urbanwatch.alerting import default_rules
from urbanwatch.kinds import KINDS, SPECS

UID = "uw-live"
SEVERITY_ORDER = "array_position(ARRAY['critical', 'alarm', 'warning', 'info'], severity)"
# Alerts about no device (a DMA, a storm) have no district when they span several.
ALERT_SCOPE = "a.kind IN ($kind) AND (a.district IS NULL OR a.district IN ($district))"
# District outlines (approximate, scripts/district_outlines.py): docker-compose.yml mounts
# dashboards/geo/ where Grafana serves static maps, so the browser loads it from Grafana.
OUTLINES_SRC = "public/maps/urbanwatch/anyang-districts.geojson"
# Local time of the map's "open since" (Anyang, UTC+8).
TZ = "Asia/Shanghai"
# Anyang's centre: the map opens on the city.
CENTRE = (36.0975, 114.3925)


def default_offline_rules() -> tuple[str, ...]:
    """The packaged rule file's offline rules: the engine runs them while no rule set was
    ever loaded (alert_rules empty)."""
    return tuple(sorted(r.id for r in default_rules().rules if r.type == "offline"))


def device_state_sql() -> str:
    """Each device's state from the registry and its unresolved alerts, never from readings:
    an offline rule's alert (alert_rules' type 'offline', through the alert_rule_types view;
    the packaged file's offline rules while none was loaded) → 1 offline, any other → 2
    alerting, none → 0 ok. Offline wins: a silent device's other alerts are stale.

    Every device in scope is a row (71k at city scale) and moving rows to Grafana is most of
    the cost (the server's part is ~30 ms): so few, short columns — the kind's code (the
    panel's value mappings name it), the district's code, and one `alert` text (worst open
    alert, how many, since when) that is NULL for the ~95 % of devices with none."""
    defaults = ", ".join(f"'{r}'" for r in default_offline_rules())
    return f"""WITH offline_rules AS (
    SELECT rule_id FROM alert_rule_types WHERE type = 'offline'
    UNION ALL
    SELECT unnest(ARRAY[{defaults}]) WHERE NOT EXISTS (SELECT FROM alert_rule_types)
), oa AS (
    SELECT a.device_id, bool_or(a.rule_id IN (SELECT rule_id FROM offline_rules)) AS offline,
           count(*) AS n, min(a.opened_at) AS since,
           (array_agg(a.title ORDER BY {SEVERITY_ORDER}, a.opened_at))[1] AS worst
    FROM alerts a
    WHERE a.status <> 'resolved' AND a.device_id IS NOT NULL
    GROUP BY a.device_id
)
SELECT d.device_id, d.kind, d.district, d.lat, d.lon,
       CASE WHEN o.offline THEN 1 WHEN o.n > 0 THEN 2 ELSE 0 END AS state,
       o.worst || CASE WHEN o.n > 1 THEN '（共 ' || o.n || ' 条 open）' ELSE '' END
       || ' · ' || to_char(o.since AT TIME ZONE '{TZ}', 'MM-DD HH24:MI') AS alert
FROM devices d LEFT JOIN oa o USING (device_id)
WHERE d.kind IN ($kind) AND d.district IN ($district) AND d.status IN ('active', 'maintenance')"""


def _count_by(column: str, label: str, order: str) -> str:
    return f"""SELECT {column} AS "{label}", count(*) AS "未解决 open"
FROM alerts a WHERE a.status <> 'resolved' AND {ALERT_SCOPE}
GROUP BY 1 ORDER BY {order}"""


def alert_panels() -> list[BarGauge | Table]:
    def bars(panel_id: int, title: str, sql: str) -> BarGauge:
        return (
            BarGauge()
            .id(panel_id)
            .title(title)
            .datasource(PG)
            .span(8)
            .height(7)
            .unit("none")
            .min(0)
            .reduce_options(ReduceDataOptions().values(True).calcs(["lastNotNull"]))
            .orientation(cm.VizOrientation.HORIZONTAL)
            .thresholds(thresholds((None, "orange"), (10, "red")))
            .with_target(SQL(sql, table=True))
        )

    by_severity = _count_by("severity", "级别 severity", f"min({SEVERITY_ORDER})")
    by_unit = _count_by("coalesce(a.unit, '未分派 unassigned')", "单位 unit", "2 DESC")
    by_kind = f"""SELECT kt.kind_title AS "类型 kind", count(*) AS "未解决 open"
FROM alerts a JOIN {kind_titles_sql()} ON kt.kind = a.kind
WHERE a.status <> 'resolved' AND {ALERT_SCOPE} GROUP BY 1 ORDER BY 2 DESC"""
    stream = f"""SELECT e.at AS time, e.event AS "事件 event", e.severity AS "级别 severity",
       a.rule_id AS "规则 rule", a.title AS "告警 alert", a.subject AS "对象 subject",
       a.district AS "区 district", a.unit AS "单位 unit", e.actor AS "操作者 actor"
FROM alert_events e JOIN alerts a ON a.id = e.alert_id
WHERE $__timeFilter(e.at) AND {ALERT_SCOPE}
ORDER BY e.at DESC LIMIT 500"""
    return [
        bars(1, "未解决告警（按级别）Open alerts by severity", by_severity),
        bars(2, "未解决告警（按单位）Open alerts by unit", by_unit),
        bars(3, "未解决告警（按类型）Open alerts by kind", by_kind),
        Table()
        .id(4)
        .title("告警流 Alert stream")
        .datasource(PG)
        .span(24)
        .height(9)
        .with_target(SQL(stream, table=True)),
    ]


def device_map() -> Geomap:
    states = {
        "0": ValueMappingResult(text="正常 ok", color="green", index=0),
        "1": ValueMappingResult(text="离线 offline", color="#8e8e8e", index=1),
        "2": ValueMappingResult(text="告警 alerting", color="red", index=2),
    }
    # The query sends the kind's code (short rows); the tooltip shows its name.
    kinds = {k: ValueMappingResult(text=SPECS[k].title, index=3 + i) for i, k in enumerate(KINDS)}
    markers = (
        MapLayerOptions()
        .type("markers")
        .name("设备 Devices")
        .location(
            FrameGeometrySource()
            .mode(cm.FrameGeometrySourceMode.COORDS)
            .latitude("lat")
            .longitude("lon")
        )
        .config(
            {
                "showLegend": True,
                "style": {"color": {"field": "state", "fixed": "green"}, "size": {"fixed": 4}},
            }
        )
    )
    outlines = (
        MapLayerOptions()
        .type("geojson")
        .name("区界（近似）District outlines (approximate)")
        .config(
            {
                "src": OUTLINES_SRC,
                "rules": [],
                "style": {
                    "color": {"fixed": "#5794F2"},
                    "opacity": 0.08,
                    "lineWidth": 2,
                    "text": {"mode": "field", "field": "name", "fixed": ""},
                    "textConfig": {"fontSize": 12, "textAlign": "center"},
                },
            }
        )
    )
    return (
        Geomap()
        .id(5)
        .title("设备状态地图 Device map (ok / offline / alerting)")
        .description(
            "离线：有未解决的离线告警；告警：有其他未解决告警。Offline: an unresolved offline "
            "alert (the alert engine's rule: two heartbeats plus the kind's grace); alerting: "
            "any other unresolved alert; ok: none. Read from the registry and the alerts, not "
            "the readings: the map shows now, whatever the time range. District outlines "
            "are approximate (from the simulator's layout, dashboards/geo/), not surveyed."
        )
        .datasource(PG)
        .span(24)
        .height(14)
        # The SDK types lat/lon as int; Grafana reads any number.
        .view(MapViewConfig().id("coords").lat(CENTRE[0]).lon(CENTRE[1]).zoom(10))  # type: ignore[arg-type]
        .basemap(MapLayerOptions().type("default").name("底图 Basemap"))
        .layers([outlines, markers])  # outlines under the devices
        .tooltip(TooltipOptions().mode(TooltipMode.DETAILS))  # device, kind, worst open alert
        .mappings([ValueMap(options=states | kinds)])
        .thresholds(thresholds((None, "green"), (1, "#8e8e8e"), (2, "red")))
        .with_target(SQL(device_state_sql(), table=True))
    )


def _per_kind(template: str) -> str:
    branches = [
        template.format(kind=k, title=SPECS[k].title, cond=f"'{k}' IN ($kind) AND {{cond}}")
        for k in KINDS
    ]
    return "\nUNION ALL\n".join(branches)


# Buckets of ingest_minutes.lag_hist: as many as ingest_lag_bounds() has bounds (migration
# 029; tests/test_ingest_minutes.py checks they agree).
LAG_BUCKETS = 15


def ingest_lag_sql() -> str:
    """p95 of received_at − ts per minute and kind from ingest_minutes' histograms (summed
    over workers): the upper bound (ingest_lag_bounds(), migration 029) of the first bucket
    where the running count reaches 95 % of the readings, capped by the minute's largest
    lag. One pass of plain aggregates: no unnest, no window. Ranges up to six hours."""
    sums = ",\n           ".join(
        f"sum(lag_hist[{i}])::bigint AS s{i}" for i in range(1, LAG_BUCKETS + 1)
    )
    running = [" + ".join(f"s{j}" for j in range(1, i + 1)) for i in range(1, LAG_BUCKETS + 1)]
    case = "\n                 ".join(
        f"WHEN {r} >= 0.95 * n THEN {i}" for i, r in enumerate(running, 1)
    )
    return f"""SELECT $__timeGroupAlias(minute, '1m'), kt.kind_title AS metric,
       greatest(least((ingest_lag_bounds())[
           CASE {case} END], lag_max), 0) AS value
FROM (
    SELECT minute, kind, max(lag_max) AS lag_max, sum(readings) AS n,
           {sums}
    FROM ingest_minutes
    WHERE $__timeFilter(minute) AND kind IN ($kind) AND {SHORT}
    GROUP BY 1, 2
) h JOIN {kind_titles_sql()} USING (kind)
WHERE n > 0
ORDER BY 1"""


def ingest_panels() -> list[TimeSeries | Table]:
    # Up to six hours: ingest's per-minute counts (ingest_minutes, migration 029: rows per
    # minute, kind and worker, written with each batch), never the raw readings; beyond,
    # the hourly rollups (by measured hour). Grafana's macro is applied to the grouped rows.
    rate = by_span(
        "SELECT $__timeGroupAlias(minute, '1m'), kt.kind_title AS metric, "
        "sum(readings) / 60.0 AS value "
        f"FROM ingest_minutes JOIN {kind_titles_sql()} USING (kind) "
        "WHERE $__timeFilter(minute) AND kind IN ($kind) AND {cond} GROUP BY 1, 2",
        _per_kind(
            "SELECT $__timeGroupAlias(bucket, '1h'), '{title}' AS metric, sum(n) / 3600.0 "
            "AS value FROM {kind}_district_hourly WHERE $__timeFilter(bucket) AND {cond} "
            "GROUP BY 1"
        ),
    )
    lag = ingest_lag_sql()
    dead = """SELECT $__timeGroupAlias(received_at, $__interval), reason_code AS metric,
       count(*) AS value
FROM dead_letters WHERE $__timeFilter(received_at) GROUP BY 1, 2 ORDER BY 1"""
    recent_dead = """SELECT received_at AS time, reason_code AS "原因 code",
       reason AS "原因 reason",
       device_id AS "设备 device", topic AS "主题 topic"
FROM dead_letters WHERE $__timeFilter(received_at) ORDER BY received_at DESC LIMIT 200"""
    workers = """SELECT updated_at AS time, client_id AS "客户端 client id",
       array_to_string(filters, ' ') AS "订阅 subscriptions"
FROM ingest_sessions ORDER BY updated_at DESC"""
    return [
        TimeSeries()
        .id(6)
        .title("接入速率 Ingest rate (readings/s)")
        .datasource(PG)
        .span(12)
        .height(8)
        .unit("suffix: /s")
        .min(0)
        .with_target(SQL(rate)),
        TimeSeries()
        .id(7)
        .title("接入延迟 p95 Ingest lag (received − measured)")
        .description(
            "每分钟延迟直方图的 p95（桶上界，不超过该分钟最大延迟）；仅六小时以内。 "
            "p95 of each minute's lag histogram (ingest_minutes): its bucket's upper bound, "
            "at most the minute's largest lag. Ranges up to six hours."
        )
        .datasource(PG)
        .span(12)
        .height(8)
        .unit("s")
        .min(0)
        .thresholds(thresholds((None, "green"), (60, "orange"), (300, "red")))
        .with_target(SQL(lag)),
        TimeSeries()
        .id(8)
        .title("死信（按原因）Dead letters by reason")
        .datasource(PG)
        .span(12)
        .height(8)
        .unit("none")
        .min(0)
        .draw_style(cm.GraphDrawStyle.BARS)
        .with_target(SQL(dead)),
        Table()
        .id(9)
        .title("最近死信 Recent dead letters")
        .datasource(PG)
        .span(12)
        .height(8)
        .with_target(SQL(recent_dead, table=True)),
        Table()
        .id(10)
        .title("接入进程 Ingest workers")
        .datasource(PG)
        .span(24)
        .height(5)
        .with_target(SQL(workers, table=True)),
    ]


def board() -> Dashboard:
    dash = (
        Dashboard("实时运行 Live operations")
        .uid(UID)
        .description("告警、设备状态与数据接入 Alerts, device state and ingest health")
        .tags(["urbanwatch", "live"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .with_variable(district_variable())
        .with_variable(kind_variable())
        .with_row(Row("告警 Alerts").id(100))
    )
    for panel in alert_panels():
        dash = dash.with_panel(panel)
    dash = dash.with_row(Row("设备 Devices").id(101)).with_panel(device_map())
    dash = dash.with_row(Row("数据接入 Ingest health").id(102))
    for ingest_panel in ingest_panels():
        dash = dash.with_panel(ingest_panel)
    dash = dash.with_row(Row("暴雨事件 Storms").id(103))
    for storm_panel in storm_panels():
        dash = dash.with_panel(storm_panel)
    dash = dash.with_row(Row("通知投递 Notification delivery").id(104))
    for delivery_panel in delivery_panels():
        dash = dash.with_panel(delivery_panel)
    return dash
