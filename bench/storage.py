"""Part 5: bytes per reading, everything a reading costs on disk (heap, TOAST, indexes;
on TimescaleDB every chunk, before and after compression). Rollups are counted apart."""

from __future__ import annotations

import psycopg
from psycopg import sql

from urbanwatch.kinds import KINDS


def sizes(conn: psycopg.Connection, storage: str) -> dict:
    readings = rows = rollups = 0
    per_kind = {}
    for kind in KINDS:
        table = f"{kind}_readings"
        n = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
        count = int(n.fetchone()[0])  # type: ignore[index]
        if storage == "timescale":
            size = conn.execute("SELECT hypertable_size(%s)", (table,)).fetchone()[0]  # type: ignore[index]
            rollup = conn.execute(
                """SELECT hypertable_size(format('%%I.%%I', materialization_hypertable_schema,
                          materialization_hypertable_name))
                   FROM timescaledb_information.continuous_aggregates WHERE view_name = %s""",
                (f"{kind}_hourly",),
            ).fetchone()[0]  # type: ignore[index]
        else:
            size = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()[0]  # type: ignore[index]
            rollup = conn.execute(
                "SELECT pg_total_relation_size(%s)", (f"{kind}_hourly_data",)
            ).fetchone()[0]  # type: ignore[index]
        per_kind[kind] = {"rows": count, "bytes_per_reading": round(size / max(count, 1), 1)}
        readings, rows, rollups = readings + int(size), rows + count, rollups + int(rollup or 0)
    return {
        "rows": rows,
        "readings_bytes": readings,
        "bytes_per_reading": round(readings / max(rows, 1), 1),
        "rollup_bytes": rollups,
        "per_kind": per_kind,
    }


def compress_like_the_policy(conn: psycopg.Connection) -> int:
    """What the 7-day compression policy would have done to a backfill: every chunk
    older than 7 days compressed."""
    done = 0
    for kind in KINDS:
        chunks = conn.execute(
            "SELECT show_chunks(%s, older_than => INTERVAL '7 days')", (f"{kind}_readings",)
        ).fetchall()
        for (chunk,) in chunks:
            conn.execute("SELECT compress_chunk(%s, if_not_compressed => true)", (chunk,))
            done += 1
    return done
