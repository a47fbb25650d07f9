"""Every panel's SQL, expanded as Grafana's backend expands it, runs as the read-only
Grafana role against a migrated database filled by the simulator, returns the columns its
panel type needs, and returns data (dashboards/, sql/017_grafana_role.sql)."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import psycopg.conninfo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.build import load_json
from dashboards.macros import QueryContext, expand, parse_interval
from tests.conftest import (
    ADMIN_URL,
    ROOT,
    _create_database,
    _drop_database,
    _timescale_admin_url,
)
from tests.dashboards_fill import END, START, fill
from urbanwatch.kinds import KINDS
from urbanwatch.migrate import migrate

ROLE = "urbanwatch_grafana"
MULTI = frozenset({"district", "kind", "dma", "road"})
# Two ranges: a live view (raw readings) and two days (hourly rollups), with the interval
# Grafana would pick for each (range / max data points, floored at the datasource's 1m).
RANGES = {
    "6h": (END - timedelta(hours=6), timedelta(minutes=1)),
    "2d": (START, timedelta(minutes=5)),
}
# Panels empty on a range by design, with the reason.
EMPTY_BY_DESIGN = {
    ("uw-live", 7, "2d"): "ingest lag reads raw readings only, on ranges up to six hours",
}


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _targets() -> list[Any]:
    cases = []
    for _folder, board in load_json():
        for panel in _panels(board):
            for target in panel.get("targets", []):
                cases.append(pytest.param(board, panel, target, id=f"{board['uid']}/{panel['id']}"))
    return cases


TARGETS = _targets()


@pytest.fixture(scope="module", params=["plain", "timescale"])
def filled(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    storage = request.param
    if storage == "timescale":
        admin, reason = _timescale_admin_url()
        if admin is None:
            pytest.skip(reason)
    else:
        admin = ADMIN_URL
    name = f"uw_dash_{uuid.uuid4().hex[:12]}"
    url = _create_database(admin, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn, storage)
            fill(conn)
        yield url, storage == "timescale"
    finally:
        _drop_database(admin, name)


@pytest.fixture(scope="module")
def reader(filled: tuple[str, bool]) -> Iterator[tuple[psycopg.Connection, bool]]:
    url, timescaledb = filled
    with psycopg.connect(url, autocommit=True) as conn:
        yield conn, timescaledb


def all_values(conn: psycopg.Connection) -> dict[str, list[str]]:
    districts = [r[0] for r in conn.execute("SELECT code FROM districts ORDER BY code")]
    return {
        "district": districts,
        "kind": list(KINDS),
        "dma": ["__all"],
        "road": ["__all"],
        "target": "T1",
    }


def run_as_grafana(conn: psycopg.Connection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    with conn.transaction():
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute(f"SET LOCAL ROLE {ROLE}")
        conn.execute("SET LOCAL statement_timeout = '30s'")
        cur = conn.execute(sql.encode())
        assert cur.description is not None
        return [c.name for c in cur.description], cur.fetchall()


def context(
    panel: dict[str, Any], range_name: str, timescaledb: bool, variables: dict[str, Any]
) -> QueryContext:
    start, interval = RANGES[range_name]
    if panel.get("timeFrom"):
        start = END - parse_interval(panel["timeFrom"])
    return QueryContext(start, END, interval, timescaledb, variables, MULTI)


def check_shape(
    panel: dict[str, Any], target: dict[str, Any], columns: list[str], rows: list
) -> None:
    kind = panel["type"]
    if target["format"] == "time_series":
        assert "time" in columns, "time_series needs a column named time"
        times = [row[columns.index("time")] for row in rows]
        assert times == sorted(times), "long-format series must be sorted by time"
        assert "value" in columns
    if kind == "geomap":
        assert {"lat", "lon"} <= set(columns)
    if kind in ("bargauge", "stat", "gauge") and rows:
        assert any(isinstance(v, int | float) or hasattr(v, "as_integer_ratio") for v in rows[0])


@pytest.mark.parametrize("range_name", list(RANGES))
@pytest.mark.parametrize(("board", "panel", "target"), TARGETS)
def test_panel_query_runs_and_returns_data(reader, board, panel, target, range_name):
    conn, timescaledb = reader
    ctx = context(panel, range_name, timescaledb, all_values(conn))
    columns, rows = run_as_grafana(conn, expand(target["rawSql"], ctx))
    check_shape(panel, target, columns, rows)
    if (board["uid"], panel["id"], range_name) in EMPTY_BY_DESIGN:
        assert rows == []
    else:
        assert rows, f"{board['title']} / {panel['title']}: no rows over {range_name}"


@pytest.mark.parametrize(("board", "panel", "target"), TARGETS)
def test_panel_query_narrowed_by_every_variable(reader, board, panel, target):
    """One district, one road, one DMA, one kind: the filters are valid SQL and narrow."""
    conn, timescaledb = reader
    one = {
        "district": [
            conn.execute("SELECT district FROM devices WHERE attrs ? 'dma_id' LIMIT 1").fetchone()[
                0
            ]
        ],
        "kind": ["waterlog"],
        "dma": [
            conn.execute(
                "SELECT attrs->>'dma_id' FROM devices WHERE attrs ? 'dma_id' LIMIT 1"
            ).fetchone()[0]
        ],
        "road": [
            conn.execute(
                "SELECT attrs->>'road' FROM devices WHERE kind = 'streetlight' LIMIT 1"
            ).fetchone()[0]
        ],
        "target": "T8a",
    }
    for range_name in RANGES:
        columns, narrowed = run_as_grafana(
            conn, expand(target["rawSql"], context(panel, range_name, timescaledb, one))
        )
        check_shape(panel, target, columns, narrowed)
        _, everything = run_as_grafana(
            conn,
            expand(target["rawSql"], context(panel, range_name, timescaledb, all_values(conn))),
        )
        if "LIMIT" not in target["rawSql"]:
            assert len(narrowed) <= len(everything)


def test_variable_queries_run_as_grafana_and_list_values(reader):
    conn, timescaledb = reader
    for _folder, board in load_json():
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            ctx = QueryContext(
                START, END, timedelta(minutes=1), timescaledb, all_values(conn), MULTI
            )
            _, rows = run_as_grafana(conn, expand(variable["query"], ctx))
            assert rows, f"{board['uid']}: variable {variable['name']} lists nothing"


def test_grafana_role_reads_no_secrets_and_writes_nothing(reader):
    conn, _ = reader
    for sql in (
        "SELECT * FROM audit_log",
        "SELECT payload FROM dead_letters",
        "SELECT * FROM schema_migrations",
        "SELECT message FROM notify_outbox",
        "SELECT last_error FROM notify_outbox",
        "SELECT config FROM notify_channels",
        "SELECT error FROM notify_attempts",
        "SELECT * FROM plan_target_history",
        "SELECT definition FROM alert_rules",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            run_as_grafana(conn, sql)
    with conn.transaction():
        conn.execute(f"SET LOCAL ROLE {ROLE}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM alerts")


# Panels whose short (six-hour) branch reads a table of counts instead of raw readings.
SHORT_READS = {("uw-live", 6): "ingest_minutes"}  # ingest rate (migration 029)


def _scanned(conn: psycopg.Connection, sql: str) -> list[str]:
    """The tables a query's plan scans. On TimescaleDB the plan scans a hypertable's chunks
    (`_hyper_1_4_chunk`), so each chunk is named by its hypertable."""
    plan = "\n".join(r[0] for r in conn.execute(b"EXPLAIN " + sql.encode()))
    scanned = re.findall(r"Scan(?: Backward)?(?: using \S+)? on (\w+)", plan)
    chunks: dict[str, str] = {}
    if any(name.startswith("_hyper_") for name in scanned):
        chunks = dict(
            conn.execute(
                "SELECT chunk_name, hypertable_name FROM timescaledb_information.chunks"
            ).fetchall()
        )
    return [chunks.get(n, n) for n in scanned]


def _scanned_readings(conn: psycopg.Connection, sql: str) -> list[str]:
    """The `<kind>_readings` tables a query's plan scans."""
    return [t for t in _scanned(conn, sql) if t.endswith("_readings")]


def test_long_ranges_read_rollups_not_raw_readings(reader):
    """Panels with a rollup branch scan raw readings over 6 hours, and over two days only
    the rollups: the raw branch is pruned at plan time."""
    conn, timescaledb = reader
    checked = 0
    for _folder, board in load_json():
        for panel in _panels(board):
            for target in panel.get("targets", []):
                if "UNION ALL" not in target["rawSql"] or "_hourly" not in target["rawSql"]:
                    continue
                where = f"{board['uid']}/{panel['id']}"
                short, long = (
                    expand(target["rawSql"], context(panel, r, timescaledb, all_values(conn)))
                    for r in ("6h", "2d")
                )
                if (board["uid"], panel["id"]) in SHORT_READS:
                    assert SHORT_READS[board["uid"], panel["id"]] in _scanned(conn, short)
                    assert not _scanned_readings(conn, short), f"{where}: raw scan over 6 h"
                else:
                    assert _scanned_readings(conn, short), f"{where}: no raw scan over 6 h"
                assert not _scanned_readings(conn, long), f"{where}: raw scan over 2 days"
                checked += 1
    assert checked >= 10


def test_the_ingest_panels_read_no_readings(reader):
    """The live board's ingest rate (up to six hours) and lag read ingest_minutes only."""
    conn, timescaledb = reader
    board = next(b for _f, b in load_json() if b["uid"] == "uw-live")
    for panel in (p for p in _panels(board) if p["id"] in (6, 7)):
        sql = expand(
            panel["targets"][0]["rawSql"], context(panel, "6h", timescaledb, all_values(conn))
        )
        assert "ingest_minutes" in _scanned(conn, sql)
        assert not _scanned_readings(conn, sql), panel["title"]


def test_compose_login_script_makes_a_login_in_the_grafana_role(filled):
    """dashboards/provisioning/db/10-grafana-login.sh, as the database image runs it."""
    url, _ = filled
    info = psycopg.conninfo.conninfo_to_dict(url)
    login = f"dashboards_login_{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "PGHOST": str(info.get("host", "127.0.0.1")),
        "PGPORT": str(info.get("port", 5432)),
        "POSTGRES_USER": str(info.get("user") or os.environ.get("USER", "root")),
        "POSTGRES_DB": str(info["dbname"]),
        "GRAFANA_DB_USER": login,
        "GRAFANA_DB_PASSWORD": "it's a secret",
    }
    script = ROOT / "dashboards" / "provisioning" / "db" / "10-grafana-login.sh"
    try:
        done = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        with psycopg.connect(url, user=login, autocommit=True) as conn:
            assert conn.execute("SELECT count(*) FROM devices").fetchone()[0] > 0
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT * FROM audit_log")
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP ROLE IF EXISTS "{login}"')


def _board_target(uid: str, panel_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    for _folder, board in load_json():
        if board["uid"] == uid:
            for panel in _panels(board):
                if panel["id"] == panel_id:
                    return panel, panel["targets"][0]
    raise LookupError(f"{uid}/{panel_id}")


def _map_states(conn: psycopg.Connection, timescaledb: bool) -> dict[str, int]:
    panel, target = _board_target("uw-live", 5)
    sql = expand(target["rawSql"], context(panel, "6h", timescaledb, all_values(conn)))
    columns, rows = run_as_grafana(conn, sql)
    assert {"device_id", "lat", "lon", "state", "kind", "district"} <= set(columns)
    states = {r[columns.index("device_id")]: r[columns.index("state")] for r in rows}
    assert len(states) == len(rows), "a device on the map twice"
    return states


def test_device_map_state_comes_from_open_alerts_not_readings(reader):
    """ok / offline / alerting from the registry and the unresolved alerts: an offline
    rule's alert → 1, any other → 2, none → 0; every device in scope once; no readings
    scanned."""
    conn, timescaledb = reader
    states = _map_states(conn, timescaledb)
    devices = {
        r[0]
        for r in conn.execute(
            "SELECT device_id FROM devices WHERE status IN ('active', 'maintenance')"
        )
    }
    assert set(states) == devices
    unresolved = conn.execute(
        "SELECT device_id, rule_id FROM alerts WHERE status <> 'resolved' AND device_id IS NOT NULL"
    ).fetchall()
    offline = {d for d, rule in unresolved if rule == "MH_OFFLINE"}
    alerting = {d for d, _ in unresolved} - offline
    assert offline and alerting
    assert {d for d, s in states.items() if s == 1} == offline
    assert {d for d, s in states.items() if s == 2} == alerting
    assert {d for d, s in states.items() if s == 0} == devices - offline - alerting
    panel, target = _board_target("uw-live", 5)
    for range_name in RANGES:
        sql = expand(target["rawSql"], context(panel, range_name, timescaledb, all_values(conn)))
        assert _scanned_readings(conn, sql) == [], range_name


def test_device_map_rows_are_short_and_name_the_worst_alert(reader):
    """Kinds as codes the panel's value mappings name; `alert` only where one is open: the
    worst one's title, how many, since when (local time)."""
    conn, timescaledb = reader
    panel, target = _board_target("uw-live", 5)
    sql = expand(target["rawSql"], context(panel, "6h", timescaledb, all_values(conn)))
    columns, rows = run_as_grafana(conn, sql)
    assert columns == ["device_id", "kind", "district", "lat", "lon", "state", "alert"]
    mapped = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
    assert {r[1] for r in rows} <= set(KINDS) <= set(mapped)
    worst = dict(
        conn.execute(
            """SELECT DISTINCT ON (device_id) device_id, title FROM alerts
               WHERE status <> 'resolved' AND device_id IS NOT NULL
               ORDER BY device_id, array_position(ARRAY['critical', 'alarm', 'warning',
                        'info'], severity), opened_at"""
        ).fetchall()
    )
    for device_id, *_rest, state, alert in rows:
        if device_id in worst:
            assert state in (1, 2) and alert.startswith(worst[device_id])
            assert re.search(r" · \d\d-\d\d \d\d:\d\d$", alert), alert
        else:
            assert state == 0 and alert is None


def test_device_map_reads_offline_rules_from_the_loaded_rule_set(reader):
    """Once a rule set is loaded, its offline rules decide (a renamed one counts, a
    packaged id that is no longer an offline rule does not); a resolved alert counts not."""
    conn, timescaledb = reader
    device, district = conn.execute(
        "SELECT device_id, district FROM devices d WHERE kind = 'waterlog' AND NOT EXISTS "
        "(SELECT FROM alerts a WHERE a.device_id = d.device_id) ORDER BY device_id LIMIT 1"
    ).fetchone()
    old_offline = conn.execute(
        "SELECT device_id FROM alerts WHERE rule_id = 'MH_OFFLINE' AND status <> 'resolved'"
    ).fetchone()[0]
    # Written (autocommitted) and removed again: run_as_grafana's SET LOCAL ROLE / READ ONLY
    # would outlive a savepoint inside one enclosing transaction.
    try:
        conn.execute(
            """INSERT INTO alert_rules (rule_id, kind, position, definition) VALUES
               ('WL_SILENT', 'waterlog', 0, '{"id": "WL_SILENT", "type": "offline"}'),
               ('MH_OFFLINE', 'manhole', 1, '{"id": "MH_OFFLINE", "type": "threshold"}')"""
        )
        conn.execute(
            """INSERT INTO alerts (rule_id, subject, device_id, kind, district, severity,
                   opened_at, title) VALUES ('WL_SILENT', %s, %s, 'waterlog', %s,
                   'warning', %s, 'silent')""",
            (device, device, district, END),
        )
        states = _map_states(conn, timescaledb)
        assert states[device] == 1
        assert states[old_offline] == 2
        conn.execute("UPDATE alerts SET status = 'resolved' WHERE rule_id = 'WL_SILENT'")
        assert _map_states(conn, timescaledb)[device] == 0
    finally:
        conn.execute("DELETE FROM alerts WHERE rule_id = 'WL_SILENT'")
        conn.execute("DELETE FROM alert_rules WHERE rule_id IN ('WL_SILENT', 'MH_OFFLINE')")
    assert _map_states(conn, timescaledb)[old_offline] == 1


def test_rbl_per_dma_matches_the_stored_snapshot_and_its_line(reader):
    """The per-DMA table shows each DMA's latest stored R_BL and how far over its region's
    line (9.7 % central, 11 % county) it is; the region gauges put the region first."""
    conn, timescaledb = reader
    stored = dict(
        conn.execute(
            "SELECT DISTINCT ON (dma_id) dma_id, value FROM kpi_daily_dma "
            "WHERE kpi = 'water.loss_rate_R_BL' ORDER BY dma_id, day DESC"
        ).fetchall()
    )
    assert stored and any(v is not None for v in stored.values())
    panel, target = _board_target("uw-water", 9)
    columns, rows = run_as_grafana(
        conn, expand(target["rawSql"], context(panel, "2d", timescaledb, all_values(conn)))
    )
    col = {name: i for i, name in enumerate(columns)}
    got = {r[col["分区 DMA"]]: r for r in rows}
    assert set(got) == set(stored)
    for dma, row in got.items():
        value, line = row[col["R_BL (%)"]], row[col["控制线 line (%)"]]
        over = row[col["超线 over line (pp)"]]
        assert value == stored[dma]
        assert line == (9.7 if row[col["区域 region"]].startswith("中心") else 11)
        assert over is None if value is None else abs(over - (value - line)) < 1e-9
    for panel_id, region in ((7, "central"), (8, "county")):
        panel, target = _board_target("uw-water", panel_id)
        ctx = context(panel, "2d", timescaledb, all_values(conn))
        _, bars = run_as_grafana(conn, expand(target["rawSql"], ctx))
        region_value = conn.execute(
            "SELECT value FROM kpi_daily WHERE kpi = 'water.loss_rate_R_BL' AND scope = %s "
            "AND value IS NOT NULL ORDER BY day DESC LIMIT 1",
            (region,),
        ).fetchone()
        if region_value is not None:
            assert bars[0][1] == region_value[0]


VARIABLE_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    district=st.lists(VARIABLE_TEXT, min_size=1, max_size=3),
    road=st.lists(VARIABLE_TEXT, min_size=1, max_size=2),
    dma=st.lists(VARIABLE_TEXT, min_size=1, max_size=2),
)
def test_any_variable_value_is_quoted_and_only_narrows(reader, district, road, dma):
    """Whatever a user picks or types into a variable (quotes, backslashes, `$`, SQL), the
    panels run and select only what matches it: nothing, for values no device has."""
    conn, timescaledb = reader
    assert len(SAMPLE_TARGETS) == 7
    known = all_values(conn)["district"]
    values = {"district": district, "kind": list(KINDS), "dma": dma, "road": road, "target": "T1"}
    for board, panel, target in SAMPLE_TARGETS:
        ctx = context(panel, "6h", timescaledb, values)
        columns, rows = run_as_grafana(conn, expand(target["rawSql"], ctx))
        check_shape(panel, target, columns, rows)
        if not set(district) & set(known) and "district" in target["rawSql"]:
            assert rows == [], f"{board['uid']}/{panel['id']} leaked rows for {district}"


# One panel per board and filter kind: district (+ road, dma) filters and the map.
SAMPLE_TARGETS = [
    (b.values[0], b.values[1], b.values[2])
    for b in TARGETS
    if b.id
    in (
        "uw-live/5",
        "uw-manhole/1",
        "uw-streetlight/1",
        "uw-water/1",
        "uw-water/7",
        "uw-water/9",
        "uw-waterlog/1",
    )
]
