"""Ledger tables (urbanwatch/sql/014_ledgers.sql): one row by natural key, insert, update,
the whole ledger in key order, and freezing a 2021 baseline. Tables and columns come from a
`LedgerSpec`, never from user input."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

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
