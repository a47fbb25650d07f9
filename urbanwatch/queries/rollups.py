"""The hourly rollups `<kind>_hourly` and `<kind>_district_hourly` (docs/architecture.md)."""

from __future__ import annotations

import time
from datetime import datetime

import psycopg
from psycopg import sql

from urbanwatch.kinds import KINDS
from urbanwatch.queries.meta import get_storage

# The rollups each kind has: per device and hour, and per district and hour.
ROLLUP_VIEWS = ("{kind}_hourly", "{kind}_district_hourly")
# Rollups of one kind only: the water board's per-DMA pressure and its boundary meters' hours
# (migration 031), the water meters' 15-min means (033, the alert engine's expected flow). On
# plain storage triggers keep them with watermeter_hourly; on TimescaleDB each is its own
# aggregate.
EXTRA_ROLLUPS = ("watermeter_dma_hourly", "watermeter_boundary_hourly", "watermeter_quarter")
# Plain storage: materialize complete hours of both levels; returns the rows written.
REFRESH_PLAIN = "SELECT urbanwatch_refresh_rollups()"
# A policy run of the same aggregate holds its refresh lock for a moment; wait it out.
CAGG_LOCK_RETRIES = 60
CAGG_LOCK_WAIT_S = 0.5


def refresh_rollups(
    conn: psycopg.Connection, start: datetime | None = None, end: datetime | None = None
) -> str:
    """Bring the rollups up to date; says what it did. On TimescaleDB this refreshes the
    continuous aggregates over [start, end) (all time when omitted), which a backfill of old
    data needs since the policy only looks 4 days back. Needs an autocommit connection."""
    if get_storage(conn) == "timescale":
        for kind in KINDS:
            for view in ROLLUP_VIEWS:
                _refresh_cagg(conn, view.format(kind=kind), start, end)
        for view in EXTRA_ROLLUPS:
            _refresh_cagg(conn, view, start, end)
        return "refreshed continuous aggregates"
    row = conn.execute(REFRESH_PLAIN).fetchone()
    return f"materialized {row[0] if row else 0} hourly rows"


def _refresh_cagg(
    conn: psycopg.Connection, view: str, start: datetime | None, end: datetime | None
) -> None:
    for attempt in range(CAGG_LOCK_RETRIES):
        try:
            conn.execute(
                "CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)",
                (view, start, end),
            )
            return
        except psycopg.errors.LockNotAvailable:
            if attempt == CAGG_LOCK_RETRIES - 1:
                raise
            time.sleep(CAGG_LOCK_WAIT_S)


def settle_after_bulk_load(conn: psycopg.Connection) -> None:
    """VACUUM ANALYZE the readings tables after a bulk load (a backfill): fresh statistics,
    and on plain storage the BRIN ranges get summarized — an unsummarized range matches every
    time-range query, which turned a 3 ms rollup query into 270 ms. Needs autocommit."""
    for kind in KINDS:
        conn.execute(sql.SQL("VACUUM (ANALYZE) {}").format(sql.Identifier(f"{kind}_readings")))
    conn.execute("ANALYZE devices")  # imported with the fleet; rollup joins plan on its stats
