"""KPIs end to end on the real database: ledgers imported through the real import, readings
stored, snapshots in kpi_daily per scope with numerator/denominator/exclusions, late data
recomputed, verification by data with its alert, and the CLI."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg
import pytest

from urbanwatch import audit, cli
from urbanwatch.kpi import snapshot
from urbanwatch.kpi.base import load_all
from urbanwatch.ledgers import candidates, files, store, verify
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.queries import kpi as q

ACTOR = audit.Actor("user:tester", "operator", "test")
COVERS = """cover_id,district,in_core_area,anti_fall_required,anti_fall_installed_on,smart_monitor_id
W1,wenfeng,是,是,2021-05-01,MH-1
W2,wenfeng,是,是,,
B1,beiguan,否,是,2021-06-01,
L1,linzhou,否,否,,MH-2
"""
DEFECTS = """cover_id,defect_type,discovered_on,source,remediated_on,verified_on,baseline_2021
W1,BROKEN,2021-03-01,inspection,2021-06-01,2021-06-02,是
W2,MISSING,2021-03-01,inspection,,,是
B1,LOOSE,2021-03-01,complaint,2021-10-01,2021-10-05,是
L1,HEIGHT,2021-03-01,inspection,2021-12-01,2021-12-02,是
L1,BROKEN,2021-08-01,sensor,,,否
"""
POINTS = """point_id,name,district,sensor_id,accepted_on,baseline_2021
WL-1,人民公园,文峰区,WLS-1,2021-09-30,是
WL-2,同乐花园,北关区,WLS-2,2021-10-15,是
WL-3,滑县一号,滑县,,,是
"""


def load(conn: psycopg.Connection, name: str, text: str) -> None:
    report = store.import_rows(
        conn, get_ledger(name), files.read_csv(get_ledger(name), text.encode()), ACTOR
    )
    assert report.errors == []


def device(conn, device_id, kind, district, **attrs):
    conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon, attrs) "
        "VALUES (%s, %s, %s, 36.1, 114.4, %s::jsonb)",
        (device_id, kind, district, psycopg.types.json.Jsonb(attrs)),
    )


@pytest.fixture
def database_url(storage_database_url: str) -> str:
    """Both storages: readings-based KPIs and late-data recomputation on TimescaleDB too."""
    return storage_database_url


@pytest.fixture
def city(conn):
    load(conn, "manhole_covers", COVERS)
    load(conn, "manhole_defects", DEFECTS)
    load(conn, "waterlog_points", POINTS)
    return conn


def stored(conn, day, kpi, scope):
    rows = [r for r in q.daily_on(conn, day, kpi) if r.scope == scope]
    assert len(rows) == 1
    return rows[0]


def test_snapshot_stores_every_kpi_per_scope_with_its_inputs(city):
    day = date(2021, 12, 31)
    n = snapshot.snapshot_day(city, day)
    assert n == len(load_all()) * len(snapshot.scopes(city))
    r = stored(city, day, "manhole.defect_remediation_rate_baseline", "city")
    assert (r.numerator, r.denominator, r.value) == (3, 4, 75.0)  # W1, B1, L1 of 4
    r = stored(city, day, "manhole.defect_remediation_rate_baseline", "central")
    assert (r.numerator, r.denominator) == (2, 3)
    r = stored(city, day, "manhole.defect_remediation_rate_baseline", "linzhou")
    assert (r.numerator, r.denominator) == (1, 1)
    assert r.defaults == {"exclude_types": ["NO_ANTIFALL"], "all_window": "year"}
    r = stored(city, day, "manhole.defect_remediation_rate_all", "city")
    assert (r.numerator, r.denominator) == (3, 5)  # + the sensor-found defect on L1
    r = stored(city, day, "manhole.anti_fall_install_rate", "wenfeng")
    assert (r.numerator, r.denominator) == (1, 2)
    r = stored(city, day, "manhole.smart_coverage_rate_core", "city")
    assert (r.numerator, r.denominator) == (1, 2)
    r = stored(city, day, "manhole.online_rate", "city")  # no monitors registered
    assert (r.value, r.denominator) == (None, 0)
    r = stored(city, day, "waterlog.points_remediated_count", "central")
    assert r.value == 2
    r = stored(city, day, "waterlog.remediation_rate", "city")
    assert (r.numerator, r.denominator) == (2, 3)
    r = stored(city, day, "waterlog.remediation_rate", "huaxian")
    assert (r.numerator, r.denominator, r.value) == (0, 1, 0.0)
    r = stored(city, day, "hidden.rectification_rate", "city")
    assert (r.value, r.denominator) == (None, 0)  # no hidden dangers: no data, not 0 %


def test_late_data_is_recomputed_for_the_day(city):
    day = date(2021, 12, 31)
    snapshot.snapshot_day(city, day)
    load(
        city,
        "manhole_defects",
        DEFECTS.replace(
            "W2,MISSING,2021-03-01,inspection,,",
            "W2,MISSING,2021-03-01,inspection,2021-12-20,2021-12-21",
        ),
    )
    snapshot.snapshot_day(city, day, kpis=["manhole.defect_remediation_rate_baseline"])
    r = stored(city, day, "manhole.defect_remediation_rate_baseline", "city")
    assert (r.numerator, r.denominator, r.value) == (4, 4, 100.0)
    assert snapshot.days_to_snapshot(date(2022, 1, 5), None, None) == [
        date(2022, 1, 2), date(2022, 1, 3), date(2022, 1, 4), date(2022, 1, 5)
    ]  # fmt: skip


def test_online_rate_from_real_readings(city):
    device(city, "MH-1", "manhole", "wenfeng")
    device(city, "MH-2", "manhole", "linzhou")
    device(city, "MH-3", "manhole", "linzhou", heartbeat_s=3600)
    end = datetime(2021, 12, 31, 16, tzinfo=UTC)  # 2022-01-01 00:00 local
    city.execute(
        "INSERT INTO manhole_readings (ts, device_id, received_at, tilt_deg) VALUES "
        "(%s, 'MH-1', %s, 1), (%s, 'MH-3', %s, 1)",
        (end - timedelta(hours=30), end, end - timedelta(hours=4), end),
    )
    city.execute(
        "INSERT INTO device_status (device_id, ts, status, received_at) VALUES "
        "('MH-2', %s, 'online', %s)",
        (end - timedelta(days=3), end),
    )
    spec = load_all()["manhole.online_rate"]
    v = snapshot.compute(city, spec, date(2021, 12, 31), snapshot.scope_named(city, "city"))
    assert (v.numerator, v.denominator) == (1, 3)  # MH-1 (30 h < 49 h); MH-2 3 days; MH-3 4 h > 3 h
    offline = spec.items(
        city, date(2021, 12, 31), snapshot.scope_named(city, "city"), spec.defaults
    )
    assert [m["device_id"] for m in offline] == ["MH-2", "MH-3"]


def test_waterlog_events_from_readings(city):
    device(city, "WLS-1", "waterlog", "wenfeng", role="depth")
    t0 = datetime(2022, 7, 20, 0, tzinfo=UTC)
    depths = [0, 16, 25, 3, 3, 3, 3, 3, 3, 3]
    with city.cursor() as cur:
        cur.executemany(
            "INSERT INTO waterlog_readings (ts, device_id, received_at, depth_cm) VALUES (%s, 'WLS-1', %s, %s)",
            [(t0 + timedelta(minutes=5 * i), t0, d) for i, d in enumerate(depths)],
        )
    spec = load_all()["waterlog.events_season"]
    v = snapshot.compute(city, spec, date(2022, 7, 31), snapshot.scope_named(city, "wenfeng"))
    assert v.value == 1
    assert (
        snapshot.compute(city, spec, date(2022, 7, 31), snapshot.scope_named(city, "beiguan")).value
        == 0
    )
    assert (
        snapshot.compute(city, spec, date(2022, 5, 31), snapshot.scope_named(city, "city")).value
        == 0
    )


def test_verification_by_data_verifies_or_flags_regressed_with_an_alert(city):
    device(city, "GAUGE-W", "waterlog", "wenfeng", role="rain")
    device(city, "GAUGE-B", "waterlog", "beiguan", role="rain")
    rain_start = datetime(2022, 7, 10, 0, tzinfo=UTC)
    rows = []
    for gauge in ("GAUGE-W", "GAUGE-B"):
        rows += [(rain_start + timedelta(minutes=30 * i), gauge, 5.0, None) for i in range(6)]
    rows += [(rain_start + timedelta(hours=h), "WLS-1", None, 9.0) for h in range(4)]
    rows += [
        (rain_start + timedelta(hours=h), "WLS-2", None, 18.0 if h == 2 else 4.0) for h in range(4)
    ]
    with city.cursor() as cur:
        cur.executemany(
            "INSERT INTO waterlog_readings (ts, device_id, received_at, rain_mm, depth_cm) "
            "VALUES (%s, %s, now(), %s, %s)",
            rows,
        )
    early = verify.verify_points(city, rain_start + timedelta(hours=3), ACTOR)
    assert early["pending"] == 2  # the rain's watch window is still open
    counts = verify.verify_points(city, rain_start + timedelta(days=1), ACTOR)
    assert (counts["verified"], counts["regressed"]) == (1, 1)
    points = {
        r[0]: r[1:]
        for r in city.execute("SELECT point_id, verification, verified_on FROM waterlog_points")
    }
    assert points["WL-1"] == ("verified", date(2022, 7, 10))
    assert points["WL-2"] == ("regressed", date(2022, 7, 10))
    alert = city.execute(
        "SELECT rule_id, subject, unit, severity, status FROM alerts WHERE rule_id = 'WL_REGRESSED'"
    ).fetchall()
    assert alert == [("WL_REGRESSED", "WL-2", "市住房城乡建设局", "alarm", "open")]
    assert city.execute("SELECT count(*) FROM alert_events").fetchone()[0] == 1
    again = verify.verify_points(city, rain_start + timedelta(days=2), ACTOR)
    assert again["verified"] == again["regressed"] == 0  # judged once
    spec = load_all()["waterlog.remediation_rate_verified"]
    v = snapshot.compute(city, spec, date(2022, 7, 31), snapshot.scope_named(city, "city"))
    assert (v.numerator, v.denominator) == (1, 3)
    assert v.exclusions == ("WL-2 同乐花园 (regressed)",)


def test_kpi_cli(city, database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert cli.main(["kpi", "snapshot", "--date", "2021-12-31"]) == 0
    assert (
        f"2021-12-31: {len(load_all()) * len(snapshot.scopes(city))} KPI value(s)"
        in capsys.readouterr().out
    )
    assert (
        cli.main(
            [
                "kpi",
                "show",
                "manhole.defect_remediation_rate_baseline",
                "--date",
                "2021-12-31",
                "--items",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "75.00 %" in out and '"cover_id": "W2"' in out
    assert cli.main(["kpi", "show", "nope"]) == 2
    with pytest.raises(SystemExit) as exc:  # argparse refuses the option value itself
        cli.main(["kpi", "snapshot", "--date", "2021-02-30"])
    assert exc.value.code == 2


def test_sensor_alerts_open_defect_candidates_once_and_they_count_only_when_confirmed(city):
    city.execute("UPDATE manhole_covers SET smart_monitor_id = 'MH-B2' WHERE cover_id = 'B1'")
    opened = datetime(2022, 3, 1, 17, tzinfo=UTC)  # 2022-03-02 01:00 local
    for rule, severity in (("MH_FLIP", "critical"), ("MH_OPEN", "alarm"), ("MH_TILT", "alarm")):
        city.execute(
            "INSERT INTO alerts (rule_id, subject, device_id, kind, severity, opened_at, title) "
            "VALUES (%s, 'MH-B2', 'MH-B2', 'manhole', %s, %s, 't')",
            (rule, severity, opened),
        )
    assert candidates.open_candidates(city, ACTOR) == 2  # MH_OPEN inside a work window: none
    assert candidates.open_candidates(city, ACTOR) == 0
    rows = city.execute(
        "SELECT defect_type, status, source, discovered_on FROM manhole_defects "
        "WHERE cover_id = 'B1' AND source = 'sensor' ORDER BY defect_type"
    ).fetchall()
    assert rows == [
        ("DISPLACED", "candidate", "sensor", date(2022, 3, 2)),
        ("MISSING", "candidate", "sensor", date(2022, 3, 2)),
    ]
    spec = load_all()["manhole.defect_remediation_rate_all"]
    city_scope = snapshot.scope_named(city, "city")
    before = snapshot.compute(city, spec, date(2022, 3, 31), city_scope)
    city.execute(
        "UPDATE manhole_defects SET status = 'confirmed' WHERE defect_type = 'MISSING' AND cover_id = 'B1'"
    )
    after = snapshot.compute(city, spec, date(2022, 3, 31), city_scope)
    assert after.denominator == before.denominator + 1
