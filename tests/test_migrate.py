"""Migrations on empty databases, with and without TimescaleDB, and equal answers from both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from urbanwatch.kinds import KINDS, measurement_fields
from urbanwatch.migrate import load_migrations, migrate
from urbanwatch.queries import rollups
from urbanwatch.queries.readings import COPY_LAYOUT

TABLES = {
    "districts",
    "devices",
    "dead_letters",
    "device_status",
    "schema_migrations",
    "urbanwatch_meta",
    *(f"{k}_readings" for k in KINDS),
}


def tables(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def test_plain_migration_on_an_empty_database_is_idempotent(empty_database):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        first = migrate(conn, "plain")
        assert first.storage == "plain" and first.timescale_version is None
        assert [m.version for m in first.applied] == [m.version for m in load_migrations("plain")]
        assert tables(conn) >= TABLES
        again = migrate(conn)  # auto keeps what the database already uses
        assert (again.storage, again.applied) == ("plain", [])
        assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(
            first.applied
        )
        assert (
            conn.execute(
                "SELECT count(*) FROM districts WHERE district_class = 'county'"
            ).fetchone()[0]
            == 5
        )
        brin = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexdef LIKE '%USING brin%'"
        ).fetchone()[0]
        assert brin == len(KINDS)


def test_a_database_never_switches_storage(empty_database):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        migrate(conn, "plain")
        with pytest.raises(RuntimeError, match="already uses plain storage"):
            migrate(conn, "timescale")


def test_timescale_is_refused_where_it_cannot_load(empty_database):
    with psycopg.connect(empty_database, autocommit=True) as conn:
        if conn.execute(
            "SELECT current_setting('shared_preload_libraries') ~ 'timescaledb'"
        ).fetchone()[0]:
            pytest.skip("this server can load TimescaleDB")
        with pytest.raises(RuntimeError, match="cannot load it"):
            migrate(conn, "timescale")


def test_every_variant_step_exists_for_both_storages():
    plain = [(m.version, m.name) for m in load_migrations("plain")]
    timescale = [(m.version, m.name) for m in load_migrations("timescale")]
    assert plain == timescale


def test_reading_tables_match_the_models(conn):
    for kind in KINDS:
        columns = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "ORDER BY ordinal_position",
                (f"{kind}_readings",),
            )
        ]
        expected = ["ts", "device_id", "received_at", *measurement_fields(kind), "extra"]
        # the same columns; their order is test_schema's (fields added by later migrations
        # follow `extra`); COPY names its columns, so it does not depend on the order
        assert sorted(columns) == sorted(expected)
        types = dict(
            conn.execute(
                "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = %s",
                (f"{kind}_readings",),
            ).fetchall()
        )
        copy_types = COPY_LAYOUT[kind][1]
        assert [types[c] for c in expected] == copy_types


@pytest.mark.timescale
def test_timescale_migration_on_an_empty_database(timescale_empty_database):
    with psycopg.connect(timescale_empty_database, autocommit=True) as conn:
        result = migrate(conn)
        assert result.storage == "timescale" and result.timescale_version
        hypertables = {
            r[0]
            for r in conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables")
        }
        assert hypertables == {f"{k}_readings" for k in KINDS}
        caggs = {
            r[0]
            for r in conn.execute(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates"
            )
        }
        assert caggs == {
            *(f"{k}_{level}" for k in KINDS for level in ("hourly", "district_hourly")),
            "watermeter_dma_hourly",  # 031: the water board's lowest pressure
            "watermeter_boundary_hourly",  # 031: inflow and night flow (DMA boundary meters)
            "watermeter_quarter",  # 033: 15-min means for the expected flow
        }
        jobs = sorted(
            r[0]
            for r in conn.execute(
                "SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_name IS NOT NULL"
            )
        )
        assert jobs == sorted(
            ["policy_compression", "policy_retention"] * 4
            + ["policy_retention"]  # 033's 15-min rollup, kept 35 days
            + ["policy_refresh_continuous_aggregate"] * (8 + 3)  # + 031's two, 033's one
        )
        assert migrate(conn).applied == []


# --- the same answers from both storages ---------------------------------------------

START = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)


def _load_readings(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon) VALUES "
        "('w1', 'waterlog', 'wenfeng', 36, 114), ('w2', 'waterlog', 'huaxian', 35.6, 114.5)"
    )
    rows = []
    for i in range(6 * 60):  # six hours, every minute, two points
        ts = START + timedelta(minutes=i)
        rows.append((ts, "w1", ts, float(i % 37), i % 5 == 0, float(i % 7) / 10))
        rows.append((ts, "w2", ts, float(i % 23) / 2, None, None))
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO waterlog_readings (ts, device_id, received_at, depth_cm, "
            "water_present, rain_mm) VALUES (%s, %s, %s, %s, %s, %s)",
            rows,
        )


ROLLUP_QUERY = """SELECT d.district, h.bucket, sum(h.n)::int, max(h.max_depth_cm),
                         round(avg(h.avg_depth_cm)::numeric, 6), round(sum(h.rain_mm)::numeric, 6)
                  FROM waterlog_hourly h JOIN devices d USING (device_id)
                  GROUP BY 1, 2 ORDER BY 1, 2"""


DISTRICT_QUERY = """SELECT district, bucket, n::int, max_depth_cm, round(avg_depth_cm::numeric, 6),
                            round(rain_mm::numeric, 6), max_rain_intensity_mm_h
                     FROM waterlog_district_hourly ORDER BY 1, 2"""


def _answers(url: str) -> tuple[list, list]:
    """Device-level rolled up by district, and the district level, before and after refresh."""
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        _load_readings(conn)
        # before any refresh: the real-time part answers
        live = [conn.execute(ROLLUP_QUERY).fetchall(), conn.execute(DISTRICT_QUERY).fetchall()]
        rollups.refresh_rollups(conn)
        return live, [
            conn.execute(ROLLUP_QUERY).fetchall(),
            conn.execute(DISTRICT_QUERY).fetchall(),
        ]


def test_plain_rollups_before_and_after_refresh_agree(empty_database):
    live, materialized = _answers(empty_database)
    assert live == materialized
    by_device, by_district = live
    assert len(by_device) == len(by_district) == 12  # 2 districts x 6 hours
    assert by_device[0][:4] == by_district[0][:4] == ("huaxian", START, 60, 11.0)
    # one device per district here, so both levels agree on every shared column
    assert [r[:6] for r in by_device] == [r[:6] for r in by_district]


def test_plain_refresh_recomputes_hours_that_received_late_rows(conn):
    _load_readings(conn)
    rollups.refresh_rollups(conn)
    before = conn.execute(
        "SELECT n FROM waterlog_hourly WHERE device_id = 'w1' AND bucket = %s", (START,)
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO waterlog_readings (ts, device_id, received_at, depth_cm) "
        "VALUES (%s, 'w1', now(), 99)",
        (START + timedelta(seconds=30),),
    )
    assert conn.execute("SELECT pending FROM rollup_watermarks WHERE kind = 'waterlog'").fetchone()[
        0
    ] == START + timedelta(seconds=30)
    rollups.refresh_rollups(conn)
    after = conn.execute(
        "SELECT n, max_depth_cm FROM waterlog_hourly WHERE device_id = 'w1' AND bucket = %s",
        (START,),
    ).fetchone()
    assert (before, after) == (60, (61, 99.0))
    district = conn.execute(
        "SELECT n, max_depth_cm FROM waterlog_district_hourly "
        "WHERE district = 'wenfeng' AND bucket = %s",
        (START,),
    ).fetchone()
    assert district == (61, 99.0)


@pytest.mark.timescale
def test_timescale_and_plain_give_the_same_answers(empty_database, timescale_empty_database):
    plain_live, plain = _answers(empty_database)
    ts_live, timescale = _answers(timescale_empty_database)
    assert plain == timescale
    assert plain_live == ts_live == plain
