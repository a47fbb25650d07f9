"""实时运行, part 2: storm incidents (group alerts, sql/016_detectors.sql) and notification
delivery health (notify_outbox / notify_attempts, sql/012_notify.sql)."""

from __future__ import annotations

from grafana_foundation_sdk.builders.table import Panel as Table
from grafana_foundation_sdk.builders.timeseries import Panel as TimeSeries

from dashboards.panels import END, table, thresholds, timeseries

# A storm overlaps the range: opened before its end and not resolved before its start.
STORMS = f"""SELECT s.opened_at AS time, s.subject AS "暴雨事件 storm",
       s.severity AS "级别 severity",
       s.status AS "状态 status", s.events AS "积水事件 WL events",
       s.max_depth_cm AS "最大积水深度 max depth (cm)", s.children AS "下属告警 child alerts",
       s.children_open AS "未解决 open", s.resolved_at AS "解除 resolved"
FROM storm_incidents s
WHERE s.opened_at <= {END}
  AND (s.resolved_at IS NULL OR s.resolved_at >= $__timeFrom()::timestamptz)
ORDER BY s.opened_at DESC"""

# Outbox rows created in the range, per channel: pending rows not yet tried, retrying (tried
# and failed, another attempt due), sent, dead (out of attempts), skipped (digested, muted).
DELIVERY = """SELECT o.channel AS "通道 channel",
       count(*) FILTER (WHERE o.status = 'sent') AS "已发送 sent",
       count(*) FILTER (WHERE o.status = 'pending' AND o.attempts = 0) AS "待发送 pending",
       count(*) FILTER (WHERE o.status = 'pending' AND o.attempts > 0) AS "重试中 retrying",
       count(*) FILTER (WHERE o.status = 'dead') AS "失败 dead",
       count(*) FILTER (WHERE o.status = 'skipped') AS "跳过 skipped",
       min(o.created_at) FILTER (WHERE o.status = 'pending') AS "最早待发 oldest pending"
FROM notify_outbox o WHERE $__timeFilter(o.created_at)
GROUP BY 1 ORDER BY 1"""

LATENCY = """SELECT $__timeGroupAlias(o.sent_at, $__interval), o.channel AS metric,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM o.sent_at - o.created_at))
       AS value
FROM notify_outbox o
WHERE o.status = 'sent' AND $__timeFilter(o.sent_at)
GROUP BY 1, 2 ORDER BY 1"""

FAILURES = """SELECT $__timeGroupAlias(a.started_at, $__interval),
       a.channel || ' ' || CASE a.outcome WHEN 'ok' THEN '成功 ok' WHEN 'failed' THEN '失败 failed'
                                          ELSE '发送中 sending' END AS metric,
       count(*) AS value
FROM notify_attempts a WHERE $__timeFilter(a.started_at)
GROUP BY 1, 2 ORDER BY 1"""


def storm_panels() -> list[Table]:
    return [
        table(11, "暴雨事件 Storm incidents", STORMS, height=7).description(
            "STORM_INCIDENT group alerts overlapping the range, with their WL events and the "
            "child alerts grouped under them (docs/alerts.md)."
        )
    ]


def delivery_panels() -> list[Table | TimeSeries]:
    return [
        table(12, "通知投递（按通道）Notification delivery by channel", DELIVERY, span=12),
        timeseries(
            13,
            "投递延迟 p95 Delivery latency (queued → sent)",
            "s",
            LATENCY,
            steps=thresholds((None, "green"), (60, "orange"), (300, "red")),
        ),
        timeseries(
            14,
            "投递尝试 Delivery attempts by outcome",
            "none",
            FAILURES,
            span=24,
            bars=True,
        ),
    ]
