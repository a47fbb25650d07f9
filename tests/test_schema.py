"""urbanwatch/schema.py: the committed per-kind SQL is what the kind specs render, and the
migrations it writes for a change work on a real database."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import psycopg
import pytest

from urbanwatch import schema
from urbanwatch.kinds import SPECS, KindSpec, Reading, measurement_fields
from urbanwatch.kinds.base import Attrs, Cadence, agg, bounded
from urbanwatch.migrate import migrate

STEP_FILES = {
    ("readings", "plain"): "002_readings.sql",
    ("readings", "timescale"): "002_readings.sql",
    ("timeseries", "plain"): "plain/003_timeseries.sql",
    ("timeseries", "timescale"): "timescale/003_timeseries.sql",
    ("district_rollups", "plain"): "plain/004_district_rollups.sql",
    ("district_rollups", "timescale"): "timescale/004_district_rollups.sql",
}


# Fields a kind gained after 002 come in a later `new-columns` migration (ALTER TABLE).
_ADDED = re.compile(r"ALTER TABLE (\w+)_readings ADD COLUMN IF NOT EXISTS (\w+) ")


def normalized(sql: str) -> str:
    return " ".join(re.sub(r"--[^\n]*", "", sql).split())


def added_later(kind: str) -> list[str]:
    """The kind's reading fields that migrations after 002 add, in file order."""
    return [
        column
        for path in sorted(schema.SQL_DIR.glob("*.sql"))
        if path.name > "002"
        for table, column in _ADDED.findall(path.read_text())
        if table == kind
    ]


@pytest.mark.parametrize("kind", sorted(SPECS))
@pytest.mark.parametrize(("step", "storage"), sorted(STEP_FILES))
def test_committed_migrations_hold_what_the_spec_renders(kind, step, storage):
    committed = normalized((schema.SQL_DIR / STEP_FILES[step, storage]).read_text())
    rendered = schema.render(SPECS[kind], step, storage)
    if step == "readings":  # 002 as it was; what came later is checked below
        types = dict(schema.reading_columns(SPECS[kind]))
        for column in added_later(kind):
            rendered = rendered.replace(f"    {column} {types[column]},\n", "")
    assert normalized(rendered) in committed


@pytest.mark.parametrize("kind", sorted(SPECS))
def test_fields_added_later_are_the_generated_alter_statements(kind):
    added = added_later(kind)
    base = [n for n, _ in schema.reading_columns(SPECS[kind]) if n not in added]
    assert list(SPECS[kind].measurement_fields())[len(base) :] == added  # appended in order
    committed = "".join(
        line + "\n"
        for path in sorted(schema.SQL_DIR.glob("*.sql"))
        for line in path.read_text().splitlines()
        if _ADDED.match(line) and _ADDED.match(line).group(1) == kind  # type: ignore[union-attr]
    )
    assert committed == schema.new_columns_sql(SPECS[kind], ["ts", *base])


def test_tables_and_rollups_match_the_specs(conn):
    for kind, spec in SPECS.items():
        columns = conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position",
            (f"{kind}_readings",),
        ).fetchall()
        added = added_later(kind)  # ALTER TABLE puts them after `extra`
        assert columns == [
            ("ts", "timestamp with time zone"),
            ("device_id", "text"),
            ("received_at", "timestamp with time zone"),
            *(c for c in schema.reading_columns(spec) if c[0] not in added),
            ("extra", "jsonb"),
            *(c for c in schema.reading_columns(spec) if c[0] in added),
        ]
        for view, level in ((f"{kind}_hourly", "device"), (f"{kind}_district_hourly", "district")):
            names = [
                r[0]
                for r in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = %s ORDER BY ordinal_position",
                    (view,),
                )
            ]
            key = "device_id" if level == "device" else "district"
            assert names == ["bucket", key, *(a.name for a in spec.rollup_columns(level))]


class TrafficReading(Reading):
    PRIMARY: ClassVar[tuple[str, ...]] = ("vehicles", "speed_kmh")
    vehicles: int | None = bounded(0, 100_000)
    speed_kmh: float | None = bounded(0, 300)
    jammed: bool | None = None


TRAFFIC = KindSpec(
    name="traffic",
    title="交通 traffic counters",
    reading=TrafficReading,
    attrs=Attrs,
    cadence=Cadence(report_s=300, heartbeat_s=3600, fast_s=None, grace_s=0, source="test"),
    rollups=(agg("max_speed_kmh"), agg("vehicles", "sum(vehicles)")),
)


def test_a_generated_new_kind_migration_works_on_a_real_database(empty_database, monkeypatch):
    monkeypatch.setitem(SPECS, "traffic", TRAFFIC)
    files = schema.new_kind_sql(TRAFFIC)
    assert "'traffic'" in files[""] and "CREATE TABLE IF NOT EXISTS traffic_readings" in files[""]
    with psycopg.connect(empty_database, autocommit=True) as conn:
        migrate(conn, "plain")
        conn.execute(files[""])
        conn.execute(files["plain"])
        conn.execute(
            "INSERT INTO devices (device_id, kind, district, lat, lon) "
            "VALUES ('tc-1', 'traffic', 'wenfeng', 36.1, 114.3)"
        )
        ts = datetime(2026, 5, 1, 8, 15, tzinfo=UTC)
        conn.execute(
            "INSERT INTO traffic_readings (ts, device_id, received_at, vehicles, speed_kmh) "
            "VALUES (%s, 'tc-1', %s, 12, 48.5), (%s + interval '5 min', 'tc-1', %s, 8, 52.0)",
            (ts, ts, ts, ts),
        )
        assert conn.execute("SELECT n, max_speed_kmh, vehicles FROM traffic_hourly").fetchall() == [
            (2, 52.0, 20)
        ]
        assert conn.execute("SELECT district, n FROM traffic_district_hourly").fetchall() == [
            ("wenfeng", 2)
        ]


def test_new_columns_adds_only_what_the_table_lacks(conn):
    class Wider(SPECS["waterlog"].reading):  # type: ignore[misc,valid-type]
        turbidity_ntu: float | None = bounded(0, 4000)

    wider = replace(SPECS["waterlog"], reading=Wider)
    existing = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'waterlog_readings'"
        )
    ]
    sql = schema.new_columns_sql(wider, existing)
    assert sql == (
        "ALTER TABLE waterlog_readings ADD COLUMN IF NOT EXISTS turbidity_ntu double precision;\n"
    )
    conn.execute(sql)
    assert schema.new_columns_sql(wider, [*existing, "turbidity_ntu"]) == ""
    assert "turbidity_ntu" not in measurement_fields("waterlog")  # the shipped spec is untouched


def test_write_migration_numbers_files_after_the_last(tmp_path: Path):
    for folder in ("plain", "timescale"):
        (tmp_path / folder).mkdir()
    (tmp_path / "001_core.sql").write_text("--")
    (tmp_path / "plain" / "004_x.sql").write_text("--")
    paths = schema.write_migration(schema.new_kind_sql(TRAFFIC), "kind_traffic", tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == [
        "005_kind_traffic.sql",
        "plain/006_kind_traffic_rollups.sql",
        "timescale/006_kind_traffic_rollups.sql",
    ]
