"""Ledger tables (urbanwatch/sql/014_ledgers.sql): one row by natural key, insert, update,
the whole ledger in key order, and freezing a 2021 baseline. Tables and columns come from a
`LedgerSpec`, never from user input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import date, datetime
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel

from urbanwatch.ledgers.base import LedgerSpec


def _where_key(spec: LedgerSpec) -> sql.Composed:
    return sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in spec.key
    )


def _columns(spec: LedgerSpec) -> sql.Composed:
    return sql.SQL(", ").join(sql.Identifier(n) for n in spec.names)


def get_row(
    conn: psycopg.Connection, spec: LedgerSpec, key: Mapping[str, Any], *, lock: bool = False
) -> dict[str, Any] | None:
    query = sql.SQL("SELECT {} FROM {} WHERE {}{}").format(
        _columns(spec),
        sql.Identifier(spec.table),
        _where_key(spec),
        sql.SQL(" FOR UPDATE" if lock else ""),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(query, {k: key[k] for k in spec.key}).fetchone()


def insert_row(conn: psycopg.Connection, spec: LedgerSpec, row: Mapping[str, Any]) -> None:
    names = list(row)
    conn.execute(
        sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(spec.table),
            sql.SQL(", ").join(sql.Identifier(n) for n in names),
            sql.SQL(", ").join(sql.Placeholder(n) for n in names),
        ),
        dict(row),
    )


def update_row(
    conn: psycopg.Connection,
    spec: LedgerSpec,
    key: Mapping[str, Any],
    changed: Mapping[str, Any],
) -> None:
    sets = sql.SQL(", ").join(
        sql.SQL("{} = {}").format(sql.Identifier(n), sql.Placeholder(f"new_{n}")) for n in changed
    )
    params = {k: key[k] for k in spec.key} | {f"new_{n}": v for n, v in changed.items()}
    conn.execute(
        sql.SQL("UPDATE {} SET {}, updated_at = now() WHERE {}").format(
            sql.Identifier(spec.table), sets, _where_key(spec)
        ),
        params,
    )


def delete_row(conn: psycopg.Connection, spec: LedgerSpec, key: Mapping[str, Any]) -> int:
    cur = conn.execute(
        sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier(spec.table), _where_key(spec)),
        {k: key[k] for k in spec.key},
    )
    return cur.rowcount


def iter_rows(
    conn: psycopg.Connection, spec: LedgerSpec, *, district: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every row in key order (the export); only one district's when given."""
    has_district = "district" in spec.names
    where = sql.SQL(" WHERE district = %(district)s" if district and has_district else "")
    query = sql.SQL("SELECT {} FROM {}{} ORDER BY {}").format(
        _columns(spec),
        sql.Identifier(spec.table),
        where,
        sql.SQL(", ").join(sql.Identifier(k) for k in spec.key),
    )
    with conn.cursor(row_factory=dict_row) as cur:
        yield from cur.execute(query, {"district": district})


def count_rows(conn: psycopg.Connection, spec: LedgerSpec) -> int:
    row = conn.execute(
        sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(spec.table))
    ).fetchone()
    return int(row[0]) if row else 0


def district_names(conn: psycopg.Connection) -> dict[str, str]:
    """Both codes and Chinese names -> code (`文峰区` and `wenfeng` both work)."""
    names: dict[str, str] = {}
    for code, name_zh in conn.execute("SELECT code, name_zh FROM districts"):
        names[code] = code
        names[name_zh] = code
    return names


FREEZE_BASELINE = """INSERT INTO ledger_baselines (ledger, frozen_by) VALUES (%s, %s)
ON CONFLICT (ledger) DO NOTHING RETURNING frozen_at"""


def freeze_baseline(conn: psycopg.Connection, ledger: str, actor: str) -> bool:
    """Freeze the 2021 baseline of `ledger`; False when it already was."""
    return conn.execute(FREEZE_BASELINE, (ledger, actor)).fetchone() is not None


# --- verification by data (urbanwatch/ledgers/verify.py) -------------------------------------


class PendingPoint(BaseModel):
    point_id: str
    name: str
    district: str
    sensor_id: str
    rain_gauge_id: str | None
    accepted_on: date
    responsible_unit: str | None


def pending_points(conn: psycopg.Connection) -> list[PendingPoint]:
    """Accepted points with a depth sensor whose verification is still pending."""
    with conn.cursor(row_factory=class_row(PendingPoint)) as cur:
        return cur.execute(
            "SELECT point_id, name, district, sensor_id, rain_gauge_id, accepted_on, "
            "responsible_unit FROM waterlog_points WHERE verification = 'pending' "
            "AND accepted_on IS NOT NULL AND sensor_id IS NOT NULL ORDER BY point_id"
        ).fetchall()


def district_gauge(conn: psycopg.Connection, district: str) -> str | None:
    """The district's first rain gauge (a waterlog device with attrs role = rain)."""
    row = conn.execute(
        "SELECT device_id FROM devices WHERE kind = 'waterlog' AND district = %s "
        "AND attrs ->> 'role' = 'rain' ORDER BY device_id LIMIT 1",
        (district,),
    ).fetchone()
    return row[0] if row else None


def rain_readings(
    conn: psycopg.Connection, gauge: str, since: datetime, until: datetime
) -> list[tuple[datetime, float]]:
    return [
        (ts, mm)
        for ts, mm in conn.execute(
            "SELECT ts, rain_mm FROM waterlog_readings WHERE device_id = %s AND ts >= %s "
            "AND ts <= %s AND rain_mm IS NOT NULL ORDER BY ts",
            (gauge, since, until),
        )
    ]


def depth_readings(
    conn: psycopg.Connection, sensor: str, since: datetime, until: datetime
) -> list[tuple[datetime, float]]:
    return [
        (ts, depth)
        for ts, depth in conn.execute(
            "SELECT ts, depth_cm FROM waterlog_readings WHERE device_id = %s AND ts >= %s "
            "AND ts <= %s AND depth_cm IS NOT NULL ORDER BY ts",
            (sensor, since, until),
        )
    ]


def set_verdict(
    conn: psycopg.Connection, point_id: str, verdict: str, day: date, detail: dict[str, Any]
) -> None:
    conn.execute(
        "UPDATE waterlog_points SET verification = %s, verified_on = %s, "
        "verification_detail = %s, updated_at = now() WHERE point_id = %s",
        (verdict, day, Jsonb(detail), point_id),
    )


OPEN_ALERT = """
INSERT INTO alerts (rule_id, subject, device_id, kind, district, unit, severity, opened_at,
                    title, detail)
VALUES ('WL_REGRESSED', %s, %s, 'waterlog', %s, %s, 'alarm', %s, %s, %s)
ON CONFLICT (rule_id, subject) WHERE status <> 'resolved' DO NOTHING
RETURNING id"""
# The plan's lead unit for waterlogging points (三(三)5) when the ledger names none.
WATERLOG_LEAD_UNIT = "市住房城乡建设局"


def open_regressed_alert(
    conn: psycopg.Connection, point: PendingPoint, at: datetime, detail: dict[str, Any]
) -> int | None:
    title = f"积水点整治后复发:{point.name} / waterlogging point regressed after remediation"
    row = conn.execute(
        OPEN_ALERT,
        (point.point_id, point.sensor_id, point.district,
         point.responsible_unit or WATERLOG_LEAD_UNIT, at, title, Jsonb(detail)),
    ).fetchone()  # fmt: skip
    if row is None:
        return None
    conn.execute(
        "INSERT INTO alert_events (alert_id, event, actor, severity, detail) "
        "VALUES (%s, 'opened', 'service:ledgers-verify', 'alarm', %s)",
        (row[0], Jsonb(detail)),
    )
    return int(row[0])
