"""The plan-progress board decides each target's status as the API does (urbanwatch/plan/
report.py + urbanwatch/kpi/status.py) wherever the daily snapshots it reads hold what the API
would compute: the as-of day, the deadline and two days of trend (dashboards/plan_sql.py)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.build import load_json
from dashboards.macros import QueryContext, expand
from tests.dashboards_fill_plan import PAST_DAYS
from tests.test_dashboards_sql import (
    MULTI,
    VARIABLE_TEXT,
    all_values,
    filled,
    reader,
    run_as_grafana,
)
from urbanwatch.kpi import snapshot
from urbanwatch.kpi.base import load_all
from urbanwatch.plan import report
from urbanwatch.plan.targets import load_seed
from urbanwatch.queries import targets as target_queries

__all__ = ["filled", "reader"]  # the fixtures this module shares


def _panel(uid: str, panel_id: int) -> dict:
    board = next(b for _f, b in load_json() if b["uid"] == uid)
    return next(p for p in board["panels"] if p["id"] == panel_id)


def _board_status(conn, as_of: date, timescaledb: bool) -> dict[str, tuple[str, object]]:
    # The end of the range at 20:00 local on the as-of day (12:00 UTC): the board's as-of.
    end = datetime.combine(as_of, time(12), tzinfo=UTC)
    ctx = QueryContext(
        end - timedelta(days=30), end, timedelta(hours=1), timescaledb, all_values(conn), MULTI
    )
    sql = _panel("uw-plan", 1)["targets"][0]["rawSql"]
    columns, rows = run_as_grafana(conn, expand(sql, ctx))
    at = {c: i for i, c in enumerate(columns)}
    return {r[at["id"]]: (r[at["状态 status"]], r[at["当前值 value"]]) for r in rows}


@pytest.mark.parametrize("as_of", [date(2023, 6, 30), date(2024, 7, 3)])
def test_board_status_is_the_apis(reader, as_of):
    conn, timescaledb = reader
    board = _board_status(conn, as_of, timescaledb)
    registry = load_all()
    scopes = {s.name: s for s in snapshot.scopes(conn)}
    targets = target_queries.list_targets(conn)
    assert {t.id for t in targets} == set(board)
    seen = set()
    for target in targets:
        spec = registry.get(target.kpi) if target.kpi else None
        scope = scopes[target.district or target.scope]
        assessment, _ = report.assess_target(conn, target, spec, scope, as_of, None)
        status, value = board[target.id]
        assert status == assessment.status, (target.id, as_of, assessment.reasoning)
        if assessment.value is not None and not (target.deadline and as_of > target.deadline):
            assert float(value) == pytest.approx(assessment.value, abs=0.01), target.id
        seen.add(status)
    # The fill gives the board more than one colour to draw on each day.
    assert len(seen) >= 2, seen
    if as_of < date(2023, 12, 31):
        assert "at_risk" in seen, "a trend to a deadline ahead is drawn"


def test_snapshot_days_cover_the_deadlines():
    """The equivalence above needs a snapshot on every deadline the targets name."""
    assert {t.deadline for t in load_seed() if t.deadline} <= set(PAST_DAYS)


def test_history_draws_the_targets_line_beside_its_value(reader):
    conn, timescaledb = reader
    end = datetime.combine(date(2024, 7, 3), time(12), tzinfo=UTC)
    values = {**all_values(conn), "target": "T8a"}
    ctx = QueryContext(date_start(end), end, timedelta(hours=1), timescaledb, values, MULTI)
    _, rows = run_as_grafana(conn, expand(_panel("uw-plan", 5)["targets"][0]["rawSql"], ctx))
    series = {metric: value for _t, metric, value in rows}
    assert series["目标线 target <= 9.7"] == 9.7
    kpi = [v for m, v in series.items() if m.startswith("T8a ")]
    assert kpi and kpi[0] is not None


def date_start(end: datetime) -> datetime:
    return end - timedelta(days=365 * 3)


def test_status_cells_are_coloured_for_every_status():
    for panel_id in (1, 4):
        panel = _panel("uw-plan", panel_id)
        mapped = panel["fieldConfig"]["defaults"]["mappings"][0]["options"]
        assert set(mapped) == {"met", "on_track", "at_risk", "missed", "no_data"}
        assert {m["color"] for m in mapped.values()} >= {"green", "orange", "red"}
        status = next(
            o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "状态 status"
        )
        assert status["properties"][0]["value"] == {"type": "color-background"}


def test_target_ids_link_to_the_api():
    panel = _panel("uw-plan", 1)
    link = next(o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "id")
    assert link["properties"][0]["value"][0]["url"] == "${api}/targets/${__value.raw}"
    items = next(o for o in panel["fieldConfig"]["overrides"] if o["matcher"]["options"] == "kpi")
    url = items["properties"][0]["value"][0]["url"]
    assert url == '${api}/kpis/${__value.raw}/items?scope=${__data.fields["范围 scope"]}'
    columns = re.findall(r'AS "([^"]+)"', panel["targets"][0]["rawSql"])
    assert "范围 scope" in columns
    per_district = _panel("uw-plan", 4)
    link = next(
        o
        for o in per_district["fieldConfig"]["overrides"]
        if o["matcher"]["options"] == "区 district"
    )
    url = link["properties"][0]["value"][0]["url"]
    assert url == '${api}/kpis/${__data.fields.kpi}/items?scope=${__data.fields["代码 code"]}'
    columns = re.findall(r'AS "([^"]+)"|s\.(kpi)\b', per_district["targets"][0]["rawSql"])
    assert {"代码 code", "kpi"} <= {a or b for a, b in columns}
    board = next(b for _f, b in load_json() if b["uid"] == "uw-plan")
    assert {x["url"] for x in board["links"]} == {"${api}/kpis", "${api}/targets"}
    assert any(v["name"] == "api" for v in board["templating"]["list"])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(target=VARIABLE_TEXT, district=st.lists(VARIABLE_TEXT, min_size=1, max_size=2))
def test_any_target_or_district_typed_is_quoted_and_only_narrows(reader, target, district):
    """The single-value `target` variable is sent unquoted by Grafana inside the panel's own
    quotes: whatever is typed (quotes, backslashes, `$`, SQL) runs and selects only a
    target with that id; districts no one has select nothing."""
    conn, timescaledb = reader
    ids = {r[0] for r in conn.execute("SELECT id FROM plan_targets")}
    known = set(all_values(conn)["district"])
    values = {**all_values(conn), "target": target, "district": district}
    end = datetime.combine(date(2024, 7, 3), time(12), tzinfo=UTC)
    ctx = QueryContext(date_start(end), end, timedelta(hours=1), timescaledb, values, MULTI)
    for panel_id in (3, 4, 5, 6):
        sql = _panel("uw-plan", panel_id)["targets"][0]["rawSql"]
        _, rows = run_as_grafana(conn, expand(sql, ctx))
        if target not in ids or (panel_id != 5 and not set(district) & known):
            assert rows == [], (panel_id, target, district)
