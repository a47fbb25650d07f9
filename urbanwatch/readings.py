"""The binary COPY layout of the `<kind>_readings` tables, shared by ingest and the backfill.

Columns are `ts, device_id, received_at, <the model's fields>, extra`; their COPY types come
from the reading models (urbanwatch/models.py), and tests/test_migrate.py checks both against
the migrated tables, so a row tuple built in this order is what the table takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import psycopg
from psycopg import sql

from urbanwatch.models import KINDS, READING_MODELS, measurement_fields

_PG_TYPES = {bool: "bool", int: "int4", float: "float8", str: "text"}


class CopyLayout(NamedTuple):
    names: sql.Composed  # the column list, quoted
    types: list[str]  # binary COPY type of each column, in the same order


def columns(kind: str) -> tuple[str, ...]:
    return ("ts", "device_id", "received_at", *measurement_fields(kind), "extra")


def _pg_type(annotation: Any) -> str:
    """`float | None` -> float8; Literal and str -> text."""
    args = [a for a in getattr(annotation, "__args__", (annotation,)) if a is not type(None)]
    return _PG_TYPES.get(args[0], "text") if args else "text"


def _layout(kind: str) -> CopyLayout:
    model_fields = READING_MODELS[kind].model_fields
    measured = [_pg_type(model_fields[f].annotation) for f in measurement_fields(kind)]
    names = sql.SQL(", ").join(map(sql.Identifier, columns(kind)))
    return CopyLayout(names, ["timestamptz", "text", "timestamptz", *measured, "jsonb"])


COPY_LAYOUT: dict[str, CopyLayout] = {kind: _layout(kind) for kind in KINDS}


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
