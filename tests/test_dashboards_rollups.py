"""The manhole and water panels that read migration 031's rollups over long ranges give the
numbers a query over the raw readings gives (dashboards/manhole.py events_sql,
dashboards/water.py pressure_sql), whatever the readings, late rows and refreshes; and
their plans read the event device-hours and the per-DMA rows, not every device's hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.build import load_json
from dashboards.macros import QueryContext, expand
from urbanwatch.queries.meta import get_storage
from urbanwatch.queries.rollups import refresh_rollups

ROLE = "urbanwatch_grafana"
MULTI = frozenset({"district", "kind", "dma", "road"})
HOURS = 48
MANHOLES = [(f"mh-dash2-{i}", district) for i, district in enumerate(["wenfeng", "linzhou"] * 2)]
# Two DMAs over two districts, and a meter without a DMA (its own series, metric NULL);
# inlets, an outlet (counted negative in the net inflow) and pressure points.
METERS = [
    ("wm-dash2-a1", "wenfeng", "DMA-A", "inlet"),
    ("wm-dash2-a2", "wenfeng", "DMA-A", "pressure"),
    ("wm-dash2-a3", "wenfeng", "DMA-A", "outlet"),
    ("wm-dash2-b1", "linzhou", "DMA-B", "inlet"),
    ("wm-dash2-b2", "wenfeng", "DMA-B", "inlet"),
    ("wm-dash2-x", "linzhou", None, "inlet"),
]
# Values on both sides of every event threshold (docs/domain.md §2.3), and missing ones.
WATER = st.sampled_from([None, 0.1, 0.2, 0.5, 0.51, 1.2])
CH4 = st.sampled_from([None, 0.0, 9.9, 10.0, 55.0])
H2S = st.sampled_from([None, 0.0, 7.0, 6.9])
CO = st.sampled_from([None, 0.0, 17.0, 16.9])
O2 = st.sampled_from([None, 20.9, 19.5, 19.4])
PRESSURE = st.one_of(st.none(), st.floats(0.0, 1.2, allow_nan=False))
FLOW = st.one_of(st.none(), st.floats(0.0, 500.0, allow_nan=False))
SECOND = st.integers(0, HOURS * 3600 - 1)
MANHOLE_READING = st.tuples(st.sampled_from(MANHOLES), SECOND, WATER, CH4, H2S, CO, O2)
METER_READING = st.tuples(st.sampled_from(METERS), SECOND, PRESSURE, FLOW)


def _end() -> datetime:
    """The range's end: the next whole hour, so the data straddles now (live tail)."""
    now = datetime.now(UTC)
    return now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


def _register(conn: psycopg.Connection) -> None:
    for device_id, district in MANHOLES:
        conn.execute(
            "INSERT INTO devices (device_id, kind, district, lat, lon) "
            "VALUES (%s, 'manhole', %s, 36.1, 114.3)",
            (device_id, district),
        )
    for device_id, district, dma, role in METERS:
        conn.execute(
            "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) VALUES "
            "(%s, 'watermeter', %s, 36.1, 114.3, "
            "jsonb_strip_nulls(jsonb_build_object('dma_id', %s::text, 'meter_role', %s::text)))",
            (device_id, district, dma, role),
        )


def _write(conn: psycopg.Connection, start: datetime, manholes: list, meters: list) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO manhole_readings (ts, device_id, received_at, water_distance_m, "
            "ch4_pct_lel, h2s_ppm, co_ppm, o2_pct_vol) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
            "ON CONFLICT DO NOTHING",
            [
                (start + timedelta(seconds=s), dev, start + timedelta(seconds=s), *values)
                for (dev, _district), s, *values in manholes
            ],
        )
        cur.executemany(
            "INSERT INTO watermeter_readings (ts, device_id, received_at, pressure_mpa, "
            "flow_m3_h) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [
                (start + timedelta(seconds=s), meter[0], start + timedelta(seconds=s), *values)
                for meter, s, *values in meters
            ],
        )


def _settle(conn: psycopg.Connection, upto: datetime) -> None:
    """Materialize the hours before `upto`, as the ingest timer or the policy would."""
    if get_storage(conn) == "timescale":
        refresh_rollups(conn, upto - timedelta(days=4), upto)
    else:
        conn.execute("SELECT urbanwatch_refresh_rollups(now() - %s::timestamptz)", (upto,))


def _reset(conn: psycopg.Connection) -> None:
    """No readings and nothing materialized: the state before a hypothesis example."""
    conn.execute("TRUNCATE manhole_readings, watermeter_readings")
    if get_storage(conn) == "timescale":
        refresh_rollups(conn)  # the aggregates forget the hours with no readings left
        return
    conn.execute("UPDATE rollup_watermarks SET upto = NULL, pending = NULL")
    conn.execute("DELETE FROM manhole_hourly_data")
    conn.execute("DELETE FROM watermeter_hourly_data")  # its trigger empties the DMA rows


def _target(uid: str, panel_id: int) -> str:
    for _folder, board in load_json():
        if board["uid"] == uid:
            for panel in board["panels"]:
                if panel["id"] == panel_id:
                    return str(panel["targets"][0]["rawSql"])
    raise LookupError(f"{uid}/{panel_id}")


def _panel(conn: psycopg.Connection, uid: str, panel_id: int, ctx: QueryContext) -> list:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(f"SET LOCAL ROLE {ROLE}")
        return conn.execute(expand(_target(uid, panel_id), ctx).encode()).fetchall()


def _context(start: datetime, end: datetime, **variables: Any) -> QueryContext:
    values = {"district": ["wenfeng", "linzhou"], "dma": ["__all"]} | variables
    timescaledb = False  # plain floor(epoch) grouping on both storages: same buckets
    return QueryContext(start, end, timedelta(minutes=5), timescaledb, values, MULTI)


# The raw-readings references: what each panel means, straight from the readings.
EVENTS_REFERENCE = """SELECT * FROM (
    SELECT date_bin(INTERVAL '1 hour', r.ts, TIMESTAMPTZ '2000-01-03') AS time, r.device_id,
           d.district, d.attrs->>'road', min(r.water_distance_m) AS w, max(r.ch4_pct_lel) AS c,
           max(r.h2s_ppm) AS h, max(r.co_ppm) AS co, min(r.o2_pct_vol) AS o
    FROM manhole_readings r JOIN devices d USING (device_id)
    WHERE r.ts >= %(lo)s AND r.ts <= %(hi)s AND d.district = ANY(%(districts)s)
    GROUP BY 1, 2, 3, 4) x
WHERE w <= 0.5 OR c >= 10 OR h >= 7 OR co >= 17 OR o < 19.5
ORDER BY 1 DESC, 2"""
PRESSURE_REFERENCE = """SELECT extract(epoch FROM date_bin(INTERVAL '1 hour', r.ts,
           TIMESTAMPTZ '2000-01-03')), d.attrs->>'dma_id', min(r.pressure_mpa)
FROM watermeter_readings r JOIN devices d USING (device_id)
WHERE r.ts >= %(lo)s AND r.ts <= %(hi)s AND r.pressure_mpa IS NOT NULL
  AND d.district = ANY(%(districts)s) AND (%(dma)s::text IS NULL OR d.attrs->>'dma_id' = %(dma)s)
GROUP BY 1, 2 ORDER BY 1, 2 NULLS FIRST"""
# Net inflow: per hour and DMA, the boundary meters' hourly mean flows, outlets negative.
INFLOW_HOURS = """SELECT hour, dma, sum(q) AS q FROM (
    SELECT date_bin(INTERVAL '1 hour', r.ts, TIMESTAMPTZ '2000-01-03') AS hour,
           d.attrs->>'dma_id' AS dma, r.device_id,
           CASE d.attrs->>'meter_role' WHEN 'outlet' THEN -1 ELSE 1 END * avg(r.flow_m3_h) AS q
    FROM watermeter_readings r JOIN devices d USING (device_id)
    WHERE r.ts >= %(lo)s AND r.ts <= %(hi)s AND d.district = ANY(%(districts)s)
      AND (%(dma)s::text IS NULL OR d.attrs->>'dma_id' = %(dma)s)
      AND d.attrs->>'meter_role' IN ('inlet', 'outlet')
    GROUP BY 1, 2, 3, d.attrs->>'meter_role') m
GROUP BY 1, 2"""
INFLOW_REFERENCE = f"""SELECT extract(epoch FROM hour), dma, q FROM ({INFLOW_HOURS}) x
ORDER BY 1, 2 NULLS FIRST"""
# Minimum night flow: per local day, the lowest of its 02:00 and 03:00 hours' net inflow.
NIGHT_REFERENCE = f"""SELECT date_trunc('day', hour AT TIME ZONE 'Asia/Shanghai')
           AT TIME ZONE 'Asia/Shanghai', dma, min(q)
FROM ({INFLOW_HOURS}) x
WHERE extract(hour FROM hour AT TIME ZONE 'Asia/Shanghai') IN (2, 3)
GROUP BY 1, 2"""


def _bucketed(rows: list) -> list:
    """The panel's buckets are whole hours (hourly rows grouped by 5 min): compare them so."""
    return sorted(
        ((float(t), dma, value) for t, dma, value in rows),
        key=lambda r: (r[0], r[1] is not None, r[1] or ""),
    )


def _by_day(rows: list) -> list:
    return sorted(rows, key=lambda r: (r[0], r[1] is not None, r[1] or ""))


def _close(got: list, want: list) -> bool:
    """Equal rows, sums of floats to 1e-9 (the panel adds in another order)."""
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if a[:-1] != b[:-1] or (a[-1] is None) != (b[-1] is None):
            return False
        if a[-1] is not None and abs(a[-1] - b[-1]) > 1e-9 * max(1.0, abs(b[-1])):
            return False
    return True


def _check(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    # Hours start at the range's start, so the panel's rollup hours and the reference's
    # raw readings cover the same span.
    bounds = {"lo": start, "hi": end}
    for districts in (["wenfeng", "linzhou"], ["linzhou"]):
        ctx = _context(start, end, district=districts)
        got = _panel(conn, "uw-manhole", 6, ctx)
        want = conn.execute(EVENTS_REFERENCE, bounds | {"districts": districts}).fetchall()
        assert sorted(got, key=lambda r: (r[0], r[1])) == sorted(want, key=lambda r: (r[0], r[1]))
        for dma in (None, "DMA-B"):
            ctx = _context(start, end, district=districts, dma=[dma or "__all"])
            got = _panel(conn, "uw-water", 2, ctx)
            params = bounds | {"districts": districts, "dma": dma}
            want = conn.execute(PRESSURE_REFERENCE, params).fetchall()
            assert _bucketed(got) == _bucketed(want)
            got = _panel(conn, "uw-water", 1, ctx)
            want = conn.execute(INFLOW_REFERENCE, params).fetchall()
            assert _close(_bucketed(got), _bucketed(want))
            got = _panel(conn, "uw-water", 3, ctx)
            want = conn.execute(NIGHT_REFERENCE, params).fetchall()
            assert _close(_by_day(got), _by_day(want))


@pytest.fixture
def fresh(conn: psycopg.Connection) -> psycopg.Connection:
    _register(conn)
    return conn


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    first=st.tuples(st.lists(MANHOLE_READING, max_size=40), st.lists(METER_READING, max_size=40)),
    late=st.tuples(st.lists(MANHOLE_READING, max_size=15), st.lists(METER_READING, max_size=15)),
    settled=st.integers(0, HOURS),
    resettled=st.integers(0, 6),
)
def test_rollup_panels_equal_the_raw_readings(fresh, first, late, settled, resettled):
    """Readings written, hours materialized up to a point, late readings below and above
    it, materialized again (the same point or a few hours on): the panels over the whole range (rollups: the materialized
    hours and the live tail) equal the raw-readings reference, for two district and DMA
    choices."""
    conn = fresh
    end = _end()
    start = end - timedelta(hours=HOURS)
    _reset(conn)
    _write(conn, start, *first)
    _settle(conn, start + timedelta(hours=settled))
    _write(conn, start, *late)
    _settle(conn, start + timedelta(hours=min(HOURS, settled + resettled)))
    _check(conn, start, end)


def test_a_meter_moved_to_another_dma_counts_where_it_was_when_its_hour_settled(fresh):
    """Like the district rollups, a settled hour keeps the DMA the meter had then; the
    live hours follow the registry."""
    conn = fresh
    end = _end()
    start = end - timedelta(hours=HOURS)
    meter = METERS[0]
    readings = [(meter, 600, 0.2, 10.0), (meter, (HOURS - 1) * 3600 + 60, 0.3, 12.0)]
    _write(conn, start, [], readings)
    _settle(conn, start + timedelta(hours=2))
    conn.execute(
        'UPDATE devices SET attrs = attrs || \'{"dma_id": "DMA-B"}\' WHERE device_id = %s',
        (meter[0],),
    )
    rows = _panel(conn, "uw-water", 2, _context(start, end))
    assert [(dma, value) for _t, dma, value in rows] == [("DMA-A", 0.2), ("DMA-B", 0.3)]


def _plan(conn: psycopg.Connection, sql: str) -> str:
    with conn.transaction():
        conn.execute("SET LOCAL enable_seqscan = off")
        return "\n".join(r[0] for r in conn.execute(b"EXPLAIN " + sql.encode()))


def test_long_range_plans_read_the_event_hours_and_the_dma_rows(fresh):
    """Over 21 days the event table finds its device-hours through the partial index
    (its WHERE implies the index's predicate) and the pressure panel reads the per-DMA
    rollup, not the per-meter hours."""
    conn = fresh
    if get_storage(conn) != "plain":
        pytest.skip("the plan names plain storage's tables")
    end = _end()
    ctx = _context(end - timedelta(days=21), end)
    events = _plan(conn, expand(_target("uw-manhole", 6), ctx))
    assert "manhole_hourly_data_events_idx" in events
    pressure = _plan(conn, expand(_target("uw-water", 2), ctx))
    assert "watermeter_dma_hourly_data" in pressure
    assert "watermeter_hourly_data" not in pressure.replace("watermeter_dma_hourly_data", "")
