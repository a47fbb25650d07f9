"""The KPI value cache behind /targets, /targets/{id}, /feed and /kpis/{key}
(urbanwatch/plan/values.py, migration 028), through the real app and database: each input
(a ledger edit, a target edit, an alert, the minute passing for readings) is seen by the next
request, and a cached answer is the answer computed without the cache, over random edits."""

from __future__ import annotations

import time as clock
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from api.app import create_app
from tests.identity_support import api_settings, make_key
from urbanwatch import audit
from urbanwatch.identity.roles import Role
from urbanwatch.kpi.base import LOCAL
from urbanwatch.plan import targets
from urbanwatch.plan.report import build_report
from urbanwatch.plan.values import FAMILIES

DAY = date(2026, 6, 1)  # every request asks for this day: the values do not move with today
DISTRICTS = ("wenfeng", "beiguan")


@pytest.fixture
def api(database_url: str, conn) -> Iterator[tuple[TestClient, dict[str, str], dict[str, str]]]:
    targets.seed_targets(conn, audit.Actor("test:setup"))
    viewer = {"X-API-Key": make_key(database_url, Role.viewer)}
    operator = {"X-API-Key": make_key(database_url, Role.operator)}
    with TestClient(create_app(api_settings(database_url))) as client:
        yield client, viewer, operator


def cache_of(client: TestClient) -> Any:
    return client.app.state.plan_values  # type: ignore[attr-defined]


def by_id(client: TestClient, headers: dict[str, str]) -> dict[str, dict[str, Any]]:
    got = client.get(f"/targets?as_of={DAY}", headers=headers)
    assert got.status_code == 200, got.text
    return {t["id"]: t for t in got.json()}


def hazard(conn: psycopg.Connection, i: int, district: str, rectified: bool) -> None:
    conn.execute(
        """INSERT INTO hidden_dangers (hazard_id, district, category, found_on, rectified_on)
           VALUES (%s, %s, '窨井', DATE '2026-01-05', %s)
           ON CONFLICT (hazard_id) DO UPDATE SET district = EXCLUDED.district,
               rectified_on = EXCLUDED.rectified_on""",
        (f"HD-{i}", district, date(2026, 3, 1) if rectified else None),
    )


def lamp(conn: psycopg.Connection, i: int, district: str, defect: bool) -> None:
    conn.execute(
        """INSERT INTO lighting_facilities (facility_id, facility_type, district, lamp_type,
               rated_power_w, device_id, installed_on, defect, defect_found_on)
           VALUES (%s, 'lamp', %s, 'LED', 120, %s, DATE '2020-01-01', %s, %s)
           ON CONFLICT (facility_id) DO UPDATE SET district = EXCLUDED.district,
               defect = EXCLUDED.defect, defect_found_on = EXCLUDED.defect_found_on""",
        (f"L-{i}", district, f"SL-{i}", "破损" if defect else None,
         date(2026, 5, 1) if defect else None),
    )  # fmt: skip


def alarm(conn: psycopg.Connection, i: int) -> None:
    """A lamp alarm open over DAY's 22:00 snapshot, or resolve the open one."""
    resolved = conn.execute(
        "UPDATE alerts SET status = 'resolved', resolved_at = %s, resolved_by = 'test' "
        "WHERE rule_id = 'SL_LAMP_OUT' AND subject = %s AND status <> 'resolved' RETURNING id",
        (datetime(2026, 5, 31, 1, tzinfo=UTC), f"SL-{i}"),
    ).fetchone()
    if resolved is None:
        conn.execute(
            """INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity,
                   opened_at, title)
               VALUES ('SL_LAMP_OUT', %s, %s, 'streetlight', 'wenfeng', 'alarm', %s,
                   '灯不亮 lamp out')""",
            (f"SL-{i}", f"SL-{i}", datetime(2026, 5, 31, tzinfo=UTC)),
        )


def uncached(database_url: str, worst: bool = False, ids: set[str] | None = None) -> Any:
    """What the endpoints answer without the cache: the report computed from scratch."""
    with psycopg.connect(database_url) as fresh:
        return build_report(fresh, DAY, worst=worst, target_ids=ids).rows


def summary(t: dict[str, Any]) -> tuple[Any, ...]:
    a = t["assessment"]
    return (t["id"], t["kpi"], t["target_value"], a["status"], a["value"], a["projection"],
            a["trend_per_month"], a["reasoning"])  # fmt: skip


def row_summary(r: Any) -> tuple[Any, ...]:
    a = r.assessment
    return (r.target.id, r.target.kpi, r.target.target_value, a.status, a.value, a.projection,
            a.trend_per_month, a.reasoning)  # fmt: skip


def test_a_second_request_is_served_from_the_cache(api, database_url, conn):
    client, viewer, _ = api
    hazard(conn, 1, "wenfeng", rectified=True)
    first = by_id(client, viewer)
    hits = cache_of(client).hits
    second = by_id(client, viewer)
    assert cache_of(client).hits > hits  # the values came from the cache
    assert second == first  # computed_at included: the same values
    assert sorted(map(summary, second.values())) == sorted(map(row_summary, uncached(database_url)))
    versions = conn.execute("SELECT count(*) FROM plan_input_versions").fetchone()[0]
    assert versions == len(FAMILIES)  # one counter row per family, however many changes


def test_each_input_is_seen_by_the_next_request(api, database_url, conn):
    client, viewer, operator = api
    hazard(conn, 1, "wenfeng", rectified=False)
    lamp(conn, 1, "wenfeng", defect=False)
    before = by_id(client, viewer)
    hidden = next(t for t in before.values() if t["kpi"] == "hidden.rectification_rate")
    assert hidden["assessment"]["value"] == 0.0
    assert before["T6a"]["assessment"]["value"] == 100.0

    # A ledger edit (a second hazard, rectified): the next request counts it.
    hazard(conn, 2, "beiguan", rectified=True)
    after = by_id(client, viewer)
    assert after[hidden["id"]]["assessment"]["value"] == 50.0

    # A new lamp alarm open over the day's snapshot: the lamp is not intact.
    alarm(conn, 1)
    assert by_id(client, viewer)["T6a"]["assessment"]["value"] == 0.0
    alarm(conn, 1)  # resolved before the day: intact again
    assert by_id(client, viewer)["T6a"]["assessment"]["value"] == 100.0

    # A target edit through the API.
    patched = client.patch("/targets/T6a", headers=operator, json={"target_value": 99.5})
    assert patched.status_code == 200, patched.text
    assert by_id(client, viewer)["T6a"]["target_value"] == 99.5
    detail = client.get(f"/targets/T6a?as_of={DAY}", headers=viewer).json()
    assert detail["target_value"] == 99.5 and detail["assessment"]["value"] == 100.0
    feed = client.get(f"/feed?as_of={DAY}", headers=viewer).json()
    assert next(t for t in feed["targets"] if t["id"] == "T6a")["target_value"] == 99.5
    assert [summary(t) for t in by_id(client, viewer).values()] == [
        row_summary(r) for r in uncached(database_url)
    ]


def test_readings_are_seen_once_the_minute_passes(api, conn):
    """Readings bump no counter: a late reading is seen by the first request of the next
    minute, and until then the answer says when it was computed. A KPI of ledgers alone
    is not recomputed when the minute passes."""
    client, viewer, _ = api
    conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon, status) "
        "VALUES ('MH-plancache-1', 'manhole', 'wenfeng', 36.1, 114.3, 'active')"
    )
    url = f"/kpis/manhole.online_rate?day={DAY}"
    if datetime.now(UTC).second >= 50:  # leave time to see the cached answer in its minute
        clock.sleep(61 - datetime.now(UTC).second)
    cold = client.get(url, headers=viewer).json()
    assert cold["value"] == 0.0
    ledger_url = f"/kpis/hidden.rectification_rate?day={DAY}"  # ledgers only: no minute
    ledger_value = client.get(ledger_url, headers=viewer).json()
    seen = datetime.combine(DAY, datetime.min.time(), LOCAL) + timedelta(hours=23, minutes=50)
    conn.execute(
        "INSERT INTO device_status (device_id, ts, status, received_at) "
        "VALUES ('MH-plancache-1', %s, 'heartbeat', now())",
        (seen,),
    )
    stale = client.get(url, headers=viewer).json()
    assert stale == cold  # the same minute: the cached value, computed_at unchanged
    clock.sleep(61 - datetime.now(UTC).second)
    fresh = client.get(url, headers=viewer).json()
    assert fresh["value"] == 100.0
    assert datetime.fromisoformat(fresh["computed_at"]) > datetime.fromisoformat(
        cold["computed_at"]
    )
    # A value of ledgers alone outlives the minute: the same computation, still cached.
    assert client.get(ledger_url, headers=viewer).json() == ledger_value


EDITS = st.one_of(
    st.tuples(st.just("hazard"), st.integers(1, 4), st.sampled_from(DISTRICTS), st.booleans()),
    st.tuples(st.just("lamp"), st.integers(1, 4), st.sampled_from(DISTRICTS), st.booleans()),
    st.tuples(st.just("alarm"), st.integers(1, 4)),
    st.tuples(st.just("target"), st.sampled_from([50.0, 90.0, 96.0, 99.9])),
    st.tuples(st.just("nothing")),
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edits=st.lists(EDITS, min_size=1, max_size=5))
def test_cached_answers_are_the_uncached_answers(api, database_url, conn, edits):
    client, viewer, operator = api
    for edit in edits:
        match edit:
            case ("hazard", i, district, rectified):
                hazard(conn, i, district, rectified)
            case ("lamp", i, district, defect):
                lamp(conn, i, district, defect)
            case ("alarm", i):
                alarm(conn, i)
            case ("target", value):
                got = client.patch("/targets/T6a", headers=operator, json={"target_value": value})
                assert got.status_code == 200, got.text
        listed = by_id(client, viewer)
        assert [summary(t) for t in listed.values()] == [
            row_summary(r) for r in uncached(database_url)
        ]
        detail = client.get(f"/targets/T6a?as_of={DAY}", headers=viewer).json()
        (expected,) = uncached(database_url, worst=True, ids={"T6a"})
        assert summary(detail) == row_summary(expected)
        assert [d["code"] for d in detail["worst_districts"]] == [w.code for w in expected.worst]


def test_a_counter_moves_once_per_committed_transaction_that_changes_its_inputs(conn):
    start = versions(conn)
    assert set(start) == set(FAMILIES)
    with conn.transaction():
        for i in range(3):
            hazard(conn, i, "wenfeng", rectified=False)
        lamp(conn, 1, "beiguan", defect=True)
    moved = {**start, "hazards": start["hazards"] + 1, "lighting": start["lighting"] + 1}
    assert versions(conn) == moved  # one bump per family, only the families changed
    with pytest.raises(RuntimeError), conn.transaction():
        hazard(conn, 9, "wenfeng", rectified=True)
        raise RuntimeError("rolled back")
    assert versions(conn) == moved  # nothing committed
    alarm(conn, 1)
    opened = versions(conn)
    assert opened == {**moved, "alerts": start["alerts"] + 1}
    # The engine's bookkeeping of an open alert is no KPI input: no bump.
    conn.execute("UPDATE alerts SET updated_at = now(), detail = '{\"n\": 2}' WHERE id > 0")
    assert versions(conn) == opened
    conn.execute("UPDATE alerts SET cleared_at = opened_at + interval '1 hour' WHERE id > 0")
    assert versions(conn)["alerts"] == opened["alerts"] + 1
    conn.execute("TRUNCATE hidden_dangers")
    assert versions(conn)["hazards"] == opened["hazards"] + 1
    assert versions(conn)["lighting"] == opened["lighting"]
    count = conn.execute("SELECT count(*) FROM plan_input_versions").fetchone()[0]
    assert count == len(FAMILIES)


def test_each_table_bumps_the_family_values_py_lists(conn):
    """Migration 034's triggers and FAMILIES agree: each counted table's row and truncate
    triggers bump its family's counter, and no other table of the schema bumps one."""
    found: dict[str, set[str]] = {}
    for table, name, args in conn.execute(
        """SELECT c.relname, t.tgname, encode(t.tgargs, 'escape')
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
           JOIN pg_proc p ON p.oid = t.tgfoid
           WHERE p.proname = 'plan_input_bump' AND NOT t.tgisinternal"""
    ):
        found.setdefault(table, set()).add(f"{name}:{args.removesuffix(chr(92) + '000')}")
    expected: dict[str, set[str]] = {}
    for family, tables in FAMILIES.items():
        for table in tables:
            names = {"plan_input_bump", "plan_input_bump_truncate"}
            if table == "alerts":
                names.add("plan_input_bump_update")
            expected[table] = {f"{n}:{family}" for n in names}
    assert found == expected


def all_values(conn: psycopg.Connection, cache: Any) -> tuple[set[str], datetime]:
    """Every KPI for the city and one district on DAY through the value cache: the keys of
    the KPIs computed (not taken from the cache), and the minute of the request."""
    from urbanwatch.kpi.base import Scope as KpiScope
    from urbanwatch.kpi.base import effective_config, load_all
    from urbanwatch.plan.values import Values

    values = Values(conn, cache)
    for spec in load_all().values():
        for scope in (KpiScope("city"), KpiScope("wenfeng", ("wenfeng",))):
            values.compute(spec, DAY, scope, effective_config(spec, None))
    assert values.close() or not values.computed  # kept whatever it computed
    return {vkey[0] for vkey in values.computed}, values.minute


def test_an_edit_recomputes_exactly_the_kpis_that_read_its_family(conn):
    """After a change to one family the next request recomputes exactly the KPIs whose
    `inputs` name it (and, when the minute has passed, the readings KPIs); every other value
    comes from the cache. Real edits for the families the helpers write, then a bump of each
    counter (the triggers' mapping is checked above)."""
    from urbanwatch.kpi.base import load_all
    from urbanwatch.plan.values import ValueCache, inputs_of

    specs = load_all()
    readers = {f: {k for k, s in specs.items() if f in inputs_of(s)} for f in FAMILIES}
    readings = {k for k, s in specs.items() if s.reads_readings}
    assert all(readers[f] for f in FAMILIES if f != "registry") and readers["registry"]
    cache = ValueCache()
    first, _ = all_values(conn, cache)
    assert first == set(specs)

    def check(family: str, edit: Any) -> None:
        _, before = all_values(conn, cache)  # everything cached (or the minute moved)
        edit()
        again, minute = all_values(conn, cache)
        if minute == before:
            assert again == readers[family], family
        else:  # the minute passed: the readings KPIs are recomputed too
            assert again == readers[family] | readings, family

    check("hazards", lambda: hazard(conn, 1, "wenfeng", rectified=True))
    check("lighting", lambda: lamp(conn, 1, "wenfeng", defect=True))
    check("alerts", lambda: alarm(conn, 1))
    check("registry", lambda: conn.execute(
        "INSERT INTO devices (device_id, kind, district, lat, lon, status) "
        "VALUES ('MH-plancache2-1', 'manhole', 'wenfeng', 36.1, 114.3, 'active')"))  # fmt: skip
    for family in FAMILIES:
        check(family, lambda f=family: conn.execute(
            "UPDATE plan_input_versions SET version = version + 1 WHERE area = %s", (f,)))  # fmt: skip


def versions(conn: psycopg.Connection) -> dict[str, int]:
    return dict(conn.execute("SELECT area, version FROM plan_input_versions").fetchall())


# Tables fed by readings (or derived from them): a KPI marked reads_readings=False must read
# none of them, or the cache would keep its value past the minute.
READINGS_FED = ("device_status", "dma_night_flow", "dma_daily_runs", "kpi_daily",
                "kpi_daily_dma")  # fmt: skip


def test_kpis_of_ledgers_alone_read_no_readings(database_url, conn):
    """Each KPI with reads_readings=False computes under a role that may not read any
    readings-fed table (PostgreSQL refuses the query otherwise); a readings KPI cannot."""
    from psycopg import errors, sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from urbanwatch.kpi.base import Scope as KpiScope
    from urbanwatch.kpi.base import effective_config, load_all

    role = f"uw_plancache_ledgers_{datetime.now(UTC).strftime('%H%M%S%f')}"
    fed = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND (tablename = "
            "ANY(%s) OR tablename LIKE '%%\\_readings' OR tablename LIKE '%%\\_hourly\\_data')",
            (list(READINGS_FED),),
        )
    ]
    assert "streetlight_readings" in fed and "device_status" in fed
    lamp(conn, 1, "wenfeng", defect=True)
    hazard(conn, 1, "beiguan", rectified=True)
    alarm(conn, 1)
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    try:
        conn.execute(
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(
                sql.Identifier(role)
            )
        )
        for table in fed:
            conn.execute(
                sql.SQL("REVOKE SELECT ON {} FROM {}").format(
                    sql.Identifier(table), sql.Identifier(role)
                )
            )
        params = conninfo_to_dict(database_url) | {"user": role}
        with psycopg.connect(make_conninfo(**params), autocommit=True) as limited:
            specs = load_all().values()
            ledger_only = [s for s in specs if not s.reads_readings]
            assert len(ledger_only) >= 10
            for spec in ledger_only:
                for scope in (KpiScope("city"), KpiScope("wenfeng", ("wenfeng",))):
                    spec.compute(limited, DAY, scope, effective_config(spec, None))
            online = load_all()["manhole.online_rate"]
            with pytest.raises(errors.InsufficientPrivilege):
                online.compute(limited, DAY, KpiScope("city"), effective_config(online, None))
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
        conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_each_kpi_reads_only_its_declared_families(database_url, conn):
    """Each KPI computes (city and a district) under a role that may not read the counted
    tables of any family outside its `inputs` (nor the readings-fed tables when it is marked
    reads_readings=False): PostgreSQL refuses the query if a declaration leaves out a table
    the KPI reads, which would keep its value cached past an edit of that table. One role per
    distinct declaration; the lamp intact rate is refused without the alerts."""
    from psycopg import errors, sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from urbanwatch.kpi.base import KpiSpec, effective_config, load_all
    from urbanwatch.kpi.base import Scope as KpiScope
    from urbanwatch.plan.values import inputs_of

    fed = [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND (tablename = "
            "ANY(%s) OR tablename LIKE '%%\\_readings' OR tablename LIKE '%%\\_hourly\\_data')",
            (list(READINGS_FED),),
        )
    ]
    lamp(conn, 1, "wenfeng", defect=True)
    hazard(conn, 1, "beiguan", rectified=True)
    alarm(conn, 1)
    groups: dict[tuple[tuple[str, ...], bool], list[KpiSpec]] = {}
    for spec in load_all().values():
        assert spec.inputs is not None, f"{spec.key} declares no inputs"
        assert spec.inputs <= set(FAMILIES), spec.key
        groups.setdefault((inputs_of(spec), spec.reads_readings), []).append(spec)
    stamp = datetime.now(UTC).strftime("%H%M%S%f")
    intact = load_all()["lighting.facility_intact_rate"]
    cases = [(i, k, s, True) for i, ((k, s)) in enumerate(groups.items())]
    cases.append((len(cases), (("lighting",), False), [intact], False))  # alerts left out
    for n, (families, readings), specs, allowed in cases:
        role = sql.Identifier(f"uw_plancache2_{n}_{stamp}")
        denied = [t for f, tables in FAMILIES.items() if f not in families for t in tables]
        denied += [] if readings else fed
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
        try:
            conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(role))
            for table in denied:
                conn.execute(
                    sql.SQL("REVOKE SELECT ON {} FROM {}").format(sql.Identifier(table), role)
                )
            params = conninfo_to_dict(database_url) | {"user": role.as_string(conn).strip('"')}
            with psycopg.connect(make_conninfo(**params), autocommit=True) as limited:
                for spec in specs:
                    for scope in (KpiScope("city"), KpiScope("wenfeng", ("wenfeng",))):
                        config = effective_config(spec, None)
                        if allowed:
                            spec.compute(limited, DAY, scope, config)
                        else:
                            with pytest.raises(errors.InsufficientPrivilege):
                                spec.compute(limited, DAY, scope, config)
        finally:
            conn.execute(sql.SQL("DROP OWNED BY {}").format(role))
            conn.execute(sql.SQL("DROP ROLE {}").format(role))
