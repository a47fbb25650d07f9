"""Part 2 of the dashboards' test database: the ledgers made from the simulated fleet's
registry (the covers, their defects, the waterlogging points, the lamps, the DMAs and their
meters), the seeded targets, the daily KPI snapshots computed by the real snapshot code, and
what the detectors and the notifier would have written (a storm incident over WL events, a
suspected burst, nightly MNF rows, outbox rows and attempts), in the shape of their tables."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
from psycopg.types.json import Jsonb

from urbanwatch import audit
from urbanwatch.kpi import snapshot
from urbanwatch.plan.targets import seed_targets

ACTOR = audit.Actor("user:dashboards-test", "operator", "test")
# Snapshot days before the fill's two days: the plan's deadlines (2021–2023), and two days
# of June 2023 so a board as of 2023-06-30 draws a trend (on track / at risk).
PAST_DAYS = (
    date(2021, 12, 31),
    date(2022, 12, 31),
    date(2023, 6, 1),
    date(2023, 6, 30),
    date(2023, 12, 31),
)


def ledgers(conn: psycopg.Connection) -> None:
    """The fleet's registry as the city's ledgers: a third of the required safety nets fitted
    in 2021, a defect on every fifth cover (remediation spread over 2021–2024)."""
    conn.execute(
        """INSERT INTO manhole_covers (cover_id, district, road, in_core_area,
               anti_fall_required, anti_fall_installed_on, smart_monitor_id, lat, lon)
           SELECT device_id, district, attrs->>'road', coalesce((attrs->>'in_core_area')::bool, false),
                  coalesce((attrs->>'anti_fall_required')::bool, false),
                  CASE WHEN (attrs->>'safety_net')::bool THEN DATE '2021-05-01'
                       WHEN row_number() OVER (ORDER BY device_id) % 3 = 0
                       THEN DATE '2024-06-30' END,
                  CASE WHEN row_number() OVER (ORDER BY device_id) % 2 = 0 THEN device_id END,
                  lat, lon
           FROM devices WHERE kind = 'manhole'"""
    )
    conn.execute(
        """INSERT INTO manhole_defects (cover_id, defect_type, discovered_on, source,
               remediated_on, verified_on, baseline_2021)
           SELECT cover_id, (ARRAY['BROKEN', 'MISSING', 'LOOSE', 'HEIGHT'])[1 + n % 4],
                  DATE '2021-03-01', 'inspection',
                  CASE WHEN n % 3 <> 0 THEN DATE '2021-06-01' + (n * 17) % 1100 END,
                  CASE WHEN n % 3 <> 0 THEN DATE '2021-06-02' + (n * 17) % 1100 END, true
           FROM (SELECT cover_id, row_number() OVER (ORDER BY cover_id)::int AS n
                 FROM manhole_covers) c WHERE n % 5 = 0"""
    )
    conn.execute(
        """INSERT INTO waterlog_points (point_id, name, district, sensor_id, accepted_on,
               verification, verified_on, baseline_2021, lat, lon)
           SELECT attrs->>'point_id', attrs->>'point_name', district, device_id,
                  CASE WHEN attrs->>'remediation_status' <> 'pending'
                       THEN DATE '2021-09-30' + n * 40 END,
                  (ARRAY['pending', 'verified', 'regressed'])[1 + n % 3],
                  CASE WHEN n % 3 <> 0 THEN DATE '2023-08-01' END, n % 2 = 0, lat, lon
           FROM (SELECT *, row_number() OVER (ORDER BY device_id)::int AS n FROM devices
                 WHERE kind = 'waterlog' AND attrs ? 'point_id') d"""
    )
    conn.execute(
        """INSERT INTO lighting_facilities (facility_id, facility_type, district, lamp_type,
               rated_power_w, retrofit_on, previous_lamp_type, device_id, circuit_id)
           SELECT device_id, 'lamp', district, attrs->>'lamp_type',
                  (attrs->>'rated_power_w')::double precision,
                  CASE WHEN attrs->>'lamp_type' = 'LED' THEN DATE '2024-07-02' END,
                  CASE WHEN attrs->>'lamp_type' = 'LED' THEN 'HPS' END,
                  device_id, attrs->>'circuit_id'
           FROM devices WHERE kind = 'streetlight'"""
    )
    conn.execute(
        """INSERT INTO water_dmas (dma_id, district, mains_km, service_connections)
           SELECT attrs->>'dma_id', min(district), 12.5, 400 FROM devices
           WHERE kind = 'watermeter' GROUP BY 1"""
    )
    conn.execute(
        """INSERT INTO water_meters (meter_id, dma_id, role, device_id)
           SELECT device_id, attrs->>'dma_id', attrs->>'meter_role', device_id FROM devices
           WHERE kind = 'watermeter' AND attrs->>'meter_role' IN
                 ('inlet', 'outlet', 'customer', 'household', 'pressure')"""
    )


def snapshots(conn: psycopg.Connection, days: list[date]) -> None:
    seed_targets(conn, ACTOR)
    for day in days:
        snapshot.snapshot_day(conn, day)


def groups(conn: psycopg.Connection, start, end) -> None:  # type: ignore[no-untyped-def]
    """A storm incident with two WL events under it (the trigger of migration 016 fills
    wl_events), a suspected burst, nightly MNF rows with a baseline."""
    storm_at = start + timedelta(hours=20)
    storm = conn.execute(
        """INSERT INTO alerts (rule_id, subject, kind, severity, opened_at, title, detail)
           VALUES ('STORM_INCIDENT', 'storm@' || %s, 'waterlog', 'alarm', %s,
                   '暴雨事件 storm incident', %s) RETURNING id""",
        (storm_at.isoformat(), storm_at, Jsonb({"events": 2, "max_depth_cm": 31.0})),
    ).fetchone()[0]
    points = conn.execute(
        "SELECT device_id, district, attrs->>'point_id' FROM devices "
        "WHERE kind = 'waterlog' AND attrs ? 'point_id' ORDER BY device_id LIMIT 2"
    ).fetchall()
    for i, (device_id, district, point_id) in enumerate(points):
        opened = storm_at + timedelta(minutes=10 * i)
        detail = {
            "point_id": point_id,
            "max_depth_cm": 22.0 + 9 * i,
            "peak_at": (opened + timedelta(minutes=40)).isoformat(),
            "duration_above_15cm_min": 55.0,
            "time_to_drain_min": 80.0,
            "rain_acc_event_mm": 48.0,
            "max_intensity_mm_h": 62.0,
            "storm": f"storm@{storm_at.isoformat()}",
        }
        if i == 0:
            detail["end"] = (opened + timedelta(hours=3)).isoformat()
        conn.execute(
            """INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity,
                   opened_at, title, detail, parent_id, status, resolved_at)
               VALUES ('WL_EVENT', %s, %s, 'waterlog', %s, 'warning', %s, '积水事件 WL event',
                       %s, %s, %s, %s)""",
            (
                f"{device_id}@{opened.isoformat()}",
                device_id,
                district,
                opened,
                Jsonb(detail),
                storm,
                "resolved" if i == 0 else "open",
                opened + timedelta(hours=3) if i == 0 else None,
            ),
        )
    dmas = conn.execute(
        "SELECT DISTINCT attrs->>'dma_id', district FROM devices WHERE attrs ? 'dma_id' ORDER BY 1"
    ).fetchall()
    dma, district = dmas[0]
    conn.execute(
        """INSERT INTO alerts (rule_id, subject, kind, district, severity, opened_at, title,
               detail) VALUES ('WS_SUSPECTED_BURST', %s, 'watermeter', %s, 'critical', %s,
               '疑似爆管 suspected burst', %s)""",
        (dma, district, end - timedelta(hours=2), Jsonb({"rise_m3_h": 40})),
    )
    for dma_id, _ in dmas:
        for n in range(-14, 3):
            night = start.date() + timedelta(days=n)
            conn.execute(
                """INSERT INTO dma_night_flow (dma_id, night, method, mnf_m3_h, completeness,
                       valid, baseline_m3_h, baseline_nights)
                   VALUES (%s, %s, 'min 1h rolling mean', %s, 1.0, true, %s, 14)""",
                (dma_id, night, 10.0 + (n % 3), 10.5),
            )


def deliveries(conn: psycopg.Connection) -> None:
    """One outbox row per alert event and channel: sent, pending, retrying and dead, with
    attempts; the notifier's timestamps relative to the event."""
    events = conn.execute(
        "SELECT e.id, e.alert_id, e.at FROM alert_events e ORDER BY e.id"
    ).fetchall()
    for i, (event_id, alert_id, at) in enumerate(events):
        for channel in ("wecom", "email"):
            status, attempts = [("sent", 1), ("pending", 0), ("pending", 2), ("dead", 5)][
                (i + len(channel)) % 4
            ]
            outbox = conn.execute(
                """INSERT INTO notify_outbox (event_id, alert_id, channel, crews,
                       idempotency_key, message, status, attempts, created_at, sent_at)
                   VALUES (%s, %s, %s, '{duty}', %s, '{}', %s, %s, %s, %s) RETURNING id""",
                (
                    event_id,
                    alert_id,
                    channel,
                    f"dash-{event_id}-{channel}",
                    status,
                    attempts,
                    at + timedelta(seconds=1),
                    at + timedelta(seconds=5 + 30 * i) if status == "sent" else None,
                ),
            ).fetchone()[0]
            for k in range(attempts):
                ok = status == "sent" and k == attempts - 1
                conn.execute(
                    """INSERT INTO notify_attempts (channel, outbox_ids, started_at,
                           finished_at, outcome, status_code, notifier)
                       VALUES (%s, %s, %s, %s, %s, %s, 'dashboards-test')""",
                    (
                        channel,
                        [outbox],
                        at + timedelta(seconds=2 + 10 * k),
                        at + timedelta(seconds=3 + 10 * k),
                        "ok" if ok else "failed",
                        200 if ok else 502,
                    ),
                )
