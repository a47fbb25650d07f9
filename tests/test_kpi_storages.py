"""Issue 11: the same KPI answers with and without TimescaleDB. A plain and a
TimescaleDB-migrated database are filled identically (the simulator's fleet and backfill,
the ledgers imported through the real import as tests/test_kpi*.py do), `urbanwatch kpi
snapshot`'s logic runs on both, and every registered KPI's stored row must be the same.

The window ends before today (local time) so that both storages hold finished days, and it is
recent so the TimescaleDB retention policy (400 days) never races the test."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import psycopg
import pytest

from simulators.backfill import backfill
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.scenario import load_scenario
from simulators.sun import LOCAL, to_ms
from urbanwatch import audit, registry
from urbanwatch.kpi import snapshot
from urbanwatch.kpi.base import load_all
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.migrate import migrate

pytestmark = pytest.mark.timescale

ACTOR = audit.Actor("user:tester", "operator", "test")
SEED = 1
DAYS = 3
# The KPI tests' manhole and waterlogging ledger fixtures (tests/test_kpi_snapshot.py).
DEFECTS = """cover_id,defect_type,discovered_on,source,remediated_on,verified_on,baseline_2021
{a},BROKEN,2021-03-01,inspection,2021-06-01,2021-06-02,是
{b},MISSING,2021-03-01,inspection,,,是
{c},LOOSE,2021-03-01,complaint,2021-10-01,2021-10-05,是
{c},BROKEN,2021-08-01,sensor,,,否
"""
VOLUMES = "计量区编号,起始日期,截止日期,供水量(m³),计费用水量(m³),免费用水量(m³),抄表到户水量(m³)\n"
# KPIs computed from readings (raw tables or hourly rollups): where the storages differ.
READINGS_KPIS = {
    "manhole.online_rate",
    "lighting.lighting_rate",
    "water.loss_rate_R_WL",
    "water.pressure_pass_rate",
}
YEARS = "所属区县,年度,年平均出厂压力(MPa),最大冻土深度(m)\n"


def _csv(header: list[str], rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _import(conn: psycopg.Connection, name: str, data: bytes) -> None:
    spec = get_ledger(name)
    report = store.import_rows(conn, spec, files.read_csv(spec, data), ACTOR)
    assert report.errors == [] and report.created > 0, (name, report.errors)


def window() -> tuple[datetime, datetime, list[date]]:
    """DAYS whole local days ending at the last local midnight, and those days."""
    today = datetime.now(UTC).astimezone(LOCAL).date()
    end = datetime.combine(today, time(0), LOCAL)
    start = end - timedelta(days=DAYS)
    return start, end, [start.date() + timedelta(days=i) for i in range(DAYS)]


def fill(conn: psycopg.Connection, start: datetime, end: datetime) -> None:
    """The small fleet, its ledgers and DAYS of storm-scenario history."""
    fleet = make_fleet(SEED, "small")
    rows = registry_rows(fleet)
    registry.import_rows(conn, rows)
    by_kind: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for device_id, row in rows:
        by_kind.setdefault(row["kind"], []).append((device_id, row))
    covers = by_kind["manhole"]
    _import(conn, "manhole_covers", _csv(
        ["cover_id", "district", "in_core_area", "anti_fall_required", "anti_fall_installed_on",
         "smart_monitor_id"],
        [[i, r["district"], "是" if r["in_core_area"] else "否",
          "是" if r["anti_fall_required"] else "否", "2021-05-01" if n % 3 else "", i]
         for n, (i, r) in enumerate(covers)],
    ))  # fmt: skip
    a, b, c = (i for i, _ in covers[:3])
    _import(conn, "manhole_defects", DEFECTS.format(a=a, b=b, c=c).encode())
    points = {r["point_id"]: (i, r) for i, r in by_kind["waterlog"] if r.get("role") == "depth"}
    _import(conn, "waterlog_points", _csv(
        ["point_id", "name", "district", "sensor_id", "accepted_on", "baseline_2021"],
        [[p, r["point_name"], r["district"], i, "2021-09-30", "是"] for p, (i, r) in points.items()],
    ))  # fmt: skip
    _import(conn, "lighting_facilities", _csv(
        ["设施编号", "设施类型", "所属区县", "光源类型", "额定功率(W)", "单灯控制器编号", "回路编号"],
        [[i, "灯具", r["district"], r["lamp_type"], r["rated_power_w"], i, r["circuit_id"]]
         for i, r in by_kind["streetlight"]],
    ))  # fmt: skip
    dmas = sorted({(r["dma_id"], r["district"]) for _, r in by_kind["watermeter"]})
    _import(conn, "water_dmas", _csv(
        ["计量区编号", "所属区县", "DN75及以上管长(km)"],
        [[d, district, 12.5] for d, district in dmas],
    ))  # fmt: skip
    _import(conn, "water_meters", _csv(
        ["水表编号", "计量区编号", "水表类别"],
        [[i, r["dma_id"], r["meter_role"]] for i, r in by_kind["watermeter"]],
    ))  # fmt: skip
    year = start.year
    volumes = "".join(f"{d},{year}-01-01,{year}-06-30,100000,80000,2000,78000\n" for d, _ in dmas)
    _import(conn, "water_volumes", (VOLUMES + volumes).encode())
    years = "".join(f"{district},{year},0.32,0.5\n" for district in sorted({x for _, x in dmas}))
    _import(conn, "water_supply_years", (YEARS + years).encode())
    s, e = to_ms(start), to_ms(end)
    world = build_world(fleet, s, e, load_scenario("storm"))
    backfill(conn, Simulation(fleet, world, s), s, e, progress=False)


def snapshots(url: str, start: datetime, end: datetime, days: list[date]) -> dict[Any, Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        fill(conn, start, end)
        for day in days:
            snapshot.snapshot_day(conn, day)
        rows = conn.execute(
            "SELECT day, kpi, scope, value, numerator, denominator, exclusions, defaults, note "
            "FROM kpi_daily ORDER BY day, kpi, scope"
        ).fetchall()
    return {r[:3]: r[3:] for r in rows}


@pytest.fixture
def timescale_database(timescale_empty_database: str) -> Iterator[str]:
    with psycopg.connect(timescale_empty_database, autocommit=True) as conn:
        assert migrate(conn, "timescale").storage == "timescale"
    yield timescale_empty_database


def test_every_kpi_is_the_same_on_plain_and_timescale(database_url, timescale_database):
    start, end, days = window()
    plain = snapshots(database_url, start, end, days)
    timescale = snapshots(timescale_database, start, end, days)
    kpis = set(load_all())
    assert {k for _, k, _ in plain} == kpis  # every registered KPI, every day
    assert len(plain) == len(days) * len(kpis) * len({s for _, _, s in plain})
    # The fill gives most KPIs a value, so equality compares figures, not two empty sets.
    with_value = {k for (_, k, _), v in plain.items() if v[0] is not None}
    assert len(with_value) >= len(kpis) * 2 // 3, sorted(kpis - with_value)
    assert with_value >= READINGS_KPIS, sorted(READINGS_KPIS - with_value)
    differ = {
        key: (plain[key], timescale.get(key)) for key in plain if plain[key] != timescale.get(key)
    }
    assert differ == {} and plain.keys() == timescale.keys()
