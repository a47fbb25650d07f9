"""`<kind>_readings`: the binary COPY layout shared by ingest and the backfill, and the
deduplicating write ingest falls back to when a batch repeats readings.

Columns are `ts, device_id, received_at, <the model's fields>, extra`; their types come from
the kind's reading model through urbanwatch/schema.py, which also renders the tables, so a
row tuple built in this order is what the table takes (tests/test_schema.py checks both).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from urbanwatch.kinds import SPECS
from urbanwatch.schema import reading_columns

_COPY_TYPES = {"boolean": "bool", "integer": "int4", "double precision": "float8", "text": "text"}


class CopyLayout(NamedTuple):
    names: sql.Composed  # the column list, quoted
    types: list[str]  # binary COPY type of each column, in the same order


def columns(kind: str) -> tuple[str, ...]:
    return (
        "ts",
        "device_id",
        "received_at",
        *(n for n, _ in reading_columns(SPECS[kind])),
        "extra",
    )


def _layout(kind: str) -> CopyLayout:
    measured = [_COPY_TYPES[t] for _, t in reading_columns(SPECS[kind])]
    names = sql.SQL(", ").join(map(sql.Identifier, columns(kind)))
    return CopyLayout(names, ["timestamptz", "text", "timestamptz", *measured, "jsonb"])


COPY_LAYOUT: dict[str, CopyLayout] = {kind: _layout(kind) for kind in SPECS}


def copy_readings(
    cur: psycopg.Cursor[Any],
    kind: str,
    rows: Iterable[Sequence[Any]],
    table: str | None = None,
) -> None:
    """Binary COPY of row tuples in `columns(kind)` order into `<kind>_readings` (or into
    `table`, e.g. a staging table shaped like it). `extra` may be a dict or None."""
    names, types = COPY_LAYOUT[kind]
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT BINARY)").format(
        sql.Identifier(table or f"{kind}_readings"), names
    )
    with cur.copy(statement) as copy:
        copy.set_types(types)
        write_row = copy.write_row
        for row in rows:
            write_row(row)


def insert_new_readings(cur: psycopg.Cursor[Any], kind: str, rows: Sequence[Sequence[Any]]) -> int:
    """Write rows that may repeat stored ones: COPY into a temp staging table, then insert
    what is new (ON CONFLICT DO NOTHING). Returns how many were new."""
    return len(added_readings(cur, kind, rows))


def added_readings(
    cur: psycopg.Cursor[Any], kind: str, rows: Sequence[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """insert_new_readings, returning the (ts, device_id, received_at) of the rows that were
    new (ingest counts them per minute: ingest/minutes.py)."""
    table, stage = sql.Identifier(f"{kind}_readings"), sql.Identifier(f"stage_{kind}")
    names = COPY_LAYOUT[kind].names
    cur.execute(
        sql.SQL(
            "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        ).format(stage, table)
    )
    copy_readings(cur, kind, rows, table=f"stage_{kind}")
    cur.execute(
        sql.SQL(
            "INSERT INTO {} ({}) SELECT {} FROM {} ON CONFLICT DO NOTHING "
            "RETURNING ts, device_id, received_at"
        ).format(table, names, names, stage)
    )
    added = cur.fetchall()
    cur.execute(sql.SQL("TRUNCATE {}").format(stage))
    return added
