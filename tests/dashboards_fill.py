"""A database the dashboards' tests query: two days of the simulated small fleet (storm
scenario) by backfill, plus what the simulation has no source for yet: alerts in the shape
of the alerts contract (sql/008_alerts.sql), dead letters, an ingest session and its
per-minute counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from ingest.minutes import Minutes, add_readings
from simulators.backfill import backfill
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.scenario import Scenario, load_scenario
from simulators.sun import to_ms
from tests import dashboards_fill_plan as plan
from urbanwatch import registry
from urbanwatch.kinds import KINDS
from urbanwatch.queries import ingest_minutes as minute_counts
from urbanwatch.queries.dead_letters import DeadLetterRow, copy_dead_letters

START = datetime(2024, 7, 1, tzinfo=UTC)
END = START + timedelta(days=2)
SEVERITIES = ("critical", "alarm", "warning", "info")


def scenario(fleet) -> Scenario:
    """The shipped storm, plus recurring gas and open-cover events on covers that report
    them, so every manhole panel has something to show in any 6-hour window."""
    storm = load_scenario("storm").model_dump(mode="json", exclude_none=True)
    gas = next(d.device_id for d in fleet.devices if getattr(d, "has_gas", False))
    cover = next(d.device_id for d in fleet.devices if d.kind == "manhole")
    storm["events"] += [
        {"type": "gas", "at": "+30m", "every": "3h", "duration": "1h", "device": gas},
        {"type": "cover_open", "at": "+1h", "every": "3h", "duration": "20m", "device": cover},
    ]
    return Scenario.model_validate(storm)


def ingest_minutes(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """The per-minute counts ingest would have written for the backfilled readings
    arriving in [start, end) (the backfill bypasses ingest), counted and upserted by
    ingest's own code, a worker per half of the fleet's kinds."""
    for i, kind in enumerate(KINDS):
        minutes: Minutes = {}
        rows = conn.execute(
            sql.SQL(
                "SELECT ts, device_id, received_at FROM {} "
                "WHERE received_at >= %s AND received_at < %s ORDER BY received_at"
            ).format(sql.Identifier(f"{kind}_readings")),
            (start, end),
        )
        add_readings(minutes, kind, rows)
        with conn.cursor() as cur:
            minute_counts.add(
                cur, f"dashboards-test-{i % 2}", [(*k, *m.as_tuple()) for k, m in minutes.items()]
            )


def fill(conn: psycopg.Connection) -> None:
    fleet = make_fleet(1, "small")
    registry.import_rows(conn, registry_rows(fleet))
    start_ms, end_ms = to_ms(START), to_ms(END)
    world = build_world(fleet, start_ms, end_ms, scenario(fleet))
    backfill(conn, Simulation(fleet, world, start_ms), start_ms, end_ms, progress=False)
    devices = conn.execute(
        "SELECT DISTINCT ON (kind) device_id, kind, district FROM devices ORDER BY kind, device_id"
    ).fetchall()
    for i, (device_id, kind, district) in enumerate(devices):
        opened = END - timedelta(hours=1 + i)
        alert_id = conn.execute(
            """INSERT INTO alerts (rule_id, subject, device_id, kind, district, unit, severity,
                   opened_at, title, detail)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
            (
                f"TEST_{kind.upper()}",
                device_id,
                device_id,
                kind,
                district,
                None if i % 2 else "市政 municipal",
                SEVERITIES[i % len(SEVERITIES)],
                opened,
                f"测试告警 test alert {device_id}",
                Jsonb({"value": i}),
            ),
        ).fetchone()[0]
        conn.execute(
            """INSERT INTO alert_events (alert_id, at, event, actor, severity)
               VALUES (%s, %s, 'opened', 'engine', %s)""",
            (alert_id, opened, SEVERITIES[i % len(SEVERITIES)]),
        )
    # An open offline alert of a packaged offline rule (no rule set loaded: the map falls
    # back on the packaged file's offline rules), on a device with no other alert.
    silent, silent_district = conn.execute(
        "SELECT device_id, district FROM devices WHERE kind = 'manhole' "
        "AND device_id <> %s ORDER BY device_id LIMIT 1",
        (next(d for d, k, _ in devices if k == "manhole"),),
    ).fetchone()
    conn.execute(
        """INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity,
               opened_at, title)
           VALUES ('MH_OFFLINE', %s, %s, 'manhole', %s, 'warning', %s,
                   '井盖监测器离线 Cover monitor offline')""",
        (silent, silent, silent_district, END - timedelta(minutes=30)),
    )
    with conn.cursor() as cur:
        copy_dead_letters(
            cur,
            [
                DeadLetterRow(
                    END - timedelta(minutes=10 * i),
                    "urbanwatch/manhole/MH-000001/telemetry",
                    b"{not json",
                    None,
                    "MH-000001",
                    ("invalid_json", "out_of_range")[i % 2],
                    "payload: not valid JSON",
                )
                for i in range(6)
            ],
        )
    conn.execute(
        "INSERT INTO ingest_sessions (client_id, filters, updated_at) VALUES (%s, %s, %s)",
        ("dashboards-test-ingest", ["urbanwatch/+/+/telemetry"], END),
    )
    ingest_minutes(conn, END - timedelta(hours=7), END)
    plan.ledgers(conn)
    plan.groups(conn, START, END)
    plan.deliveries(conn)
    plan.snapshots(conn, [*plan.PAST_DAYS, *(START.date() + timedelta(days=n) for n in range(3))])
