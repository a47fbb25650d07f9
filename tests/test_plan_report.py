"""Targets as data and the progress report, on the real database."""

from __future__ import annotations

import csv
import io
from datetime import date

import openpyxl
import pytest

from urbanwatch import audit, cli
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.plan import render, targets
from urbanwatch.plan.report import build_report
from urbanwatch.queries import audit as audit_queries
from urbanwatch.queries import targets as queries

ACTOR = audit.Actor("user:planner", "operator", "test")
DEFECTS = """cover_id,defect_type,discovered_on,source,remediated_on,verified_on,baseline_2021
W1,BROKEN,2021-03-01,inspection,2021-06-01,2021-06-02,是
W2,MISSING,2021-03-01,inspection,2021-12-01,2021-12-02,是
B1,LOOSE,2021-03-01,complaint,,,是
B2,LOOSE,2021-03-01,complaint,,,是
L1,HEIGHT,2021-03-01,inspection,2021-05-01,2021-05-02,是
"""
COVERS = "cover_id,district\nW1,wenfeng\nW2,wenfeng\nB1,beiguan\nB2,beiguan\nL1,linzhou\n"


def load(conn, name, text):
    spec = get_ledger(name)
    assert store.import_rows(conn, spec, files.read_csv(spec, text.encode()), ACTOR).errors == []


def test_seed_has_every_plan_target_with_its_clause_and_units():
    seed = {t.id: t for t in targets.load_seed()}
    assert {t.split("a")[0].split("b")[0] for t in seed} == {f"T{i}" for i in range(1, 11)}
    assert seed["T1"].clause_zh == "全市2021年完成40%病害窨井盖整治"
    assert seed["T1"].lead_units == ["市城市管理局", "市住房城乡建设局"]
    assert (seed["T8a"].scope, seed["T8a"].comparator, seed["T8a"].target_value) == (
        "central",
        "<=",
        9.7,
    )
    assert (seed["T8b"].scope, seed["T8b"].target_value) == ("county", 11)
    assert seed["T6a"].deadline is None  # ongoing
    assert "人民公园、同乐花园" in seed["T4"].clause_zh
    assert seed["T10"].kpi is None and seed["T10"].lead_units == ["市政务服务和大数据局"]


def test_load_set_and_history(conn):
    assert targets.seed_targets(conn, ACTOR) == (14, 0)
    assert targets.seed_targets(conn, ACTOR) == (0, 0)
    before, after = targets.edit_target(
        conn, "T3", targets.parse_assignments(["target_value=80", "lead_units=市城市管理局"]), ACTOR
    )
    assert (before.target_value, after.target_value, after.lead_units) == (
        100,
        80,
        ["市城市管理局"],
    )
    history = queries.list_history(conn, "T3")
    assert [h.action for h in history] == ["create", "update"]
    assert history[1].before["target_value"] == 100 and history[1].after["target_value"] == 80
    entry = audit_queries.list_entries(conn, resource="plan_target", resource_id="T3")[0][0]
    assert entry.actor == "user:planner"
    assert entry.before == {
        "target_value": 100.0,
        "lead_units": ["市城市管理局", "市住房城乡建设局"],
    }
    with pytest.raises(ValueError, match="district: required when scope is 'district'"):
        targets.edit_target(conn, "T3", {"scope": "district"}, ACTOR)
    with pytest.raises(ValueError, match="target_value"):
        targets.edit_target(conn, "T3", {"target_value": "lots"}, ACTOR)
    with pytest.raises(ValueError, match="FIELD=VALUE"):
        targets.parse_assignments(["colour=red"])
    assert targets.seed_targets(conn, ACTOR, replace=True) == (0, 1)
    assert queries.get_target(conn, "T3").target_value == 100


def test_report_statuses_projection_and_worst_districts(conn):
    targets.seed_targets(conn, ACTOR)
    load(conn, "manhole_covers", COVERS)
    load(conn, "manhole_defects", DEFECTS)
    report = build_report(conn, date(2021, 12, 31))
    rows = {r.target.id: r for r in report.rows}
    t1 = rows["T1"]  # 3 of 5 baseline defects verified by 2021-12-31: 60 % >= 40 %
    assert (t1.assessment.status, t1.assessment.value, t1.numerator, t1.denominator) == (
        "met",
        60.0,
        3,
        5,
    )
    t2 = rows["T2a"]  # 60 % now, trend from recomputed months, deadline a year away
    # 40 % on 10-02, 11-01, 12-01 (recomputed), 60 % now: +6.1/month carries it past 100 %
    assert t2.assessment.status == "on_track" and t2.assessment.projection > 100
    assert [d.code for d in t2.worst] == ["beiguan"] and t2.worst[0].value == 0.0
    assert rows["T6a"].assessment.status == "no_data"  # no lighting ledger: nothing to count
    assert rows["T6a"].assessment.reasoning == "nothing to count yet (no data)"
    assert rows["T10"].assessment.reasoning == "no KPI measures this target"
    targets.edit_target(conn, "T7", {"kpi": "lighting.not_yet_written"}, ACTOR)
    t7 = next(r for r in build_report(conn, date(2021, 12, 31)).rows if r.target.id == "T7")
    assert (t7.assessment.status, t7.assessment.reasoning) == (
        "no_data", "KPI lighting.not_yet_written is not installed"
    )  # fmt: skip
    later = {r.target.id: r for r in build_report(conn, date(2022, 1, 10)).rows}
    assert later["T1"].assessment.status == "met"  # judged on its deadline
    beiguan = {
        r.target.id: r for r in build_report(conn, date(2021, 12, 31), district="beiguan").rows
    }
    assert (beiguan["T1"].assessment.status, beiguan["T1"].assessment.value) == ("at_risk", 0.0)
    assert beiguan["T1"].worst == ()


def test_report_formats(conn, database_url, tmp_path, monkeypatch, capsys):
    targets.seed_targets(conn, ACTOR)
    load(conn, "manhole_covers", COVERS)
    load(conn, "manhole_defects", DEFECTS)
    report = build_report(conn, date(2021, 12, 31))
    text = render.to_text(report)
    assert text.startswith("安阳市城市建设提质工程三年行动计划")
    assert "T1   已达标" in text and "全市2021年完成40%病害窨井盖整治" in text
    assert "T1   met" in render.to_text(report, "en")
    page = render.to_html(report)
    assert "@page { size: A4 landscape" in page and '<td class="met">已达标</td>' in page
    rows = list(csv.reader(io.StringIO(render.to_csv(report).decode("utf-8-sig"))))
    assert rows[0][0] == "编号 No." and len(rows) == 1 + len(report.rows)
    sheet = openpyxl.load_workbook(io.BytesIO(render.to_xlsx(report, "en"))).active
    assert sheet["A3"].value == "No." and sheet["A4"].value == "T1"

    monkeypatch.setenv("DATABASE_URL", database_url)
    out = tmp_path / "report.html"
    assert cli.main(["report", "--as-of", "2021-12-31", "--format", "html", "-o", str(out)]) == 0
    assert "已达标" in out.read_text("utf-8")
    assert cli.main(["report", "--format", "xlsx"]) == 2
    assert cli.main(["report", "--district", "atlantis"]) == 2
    assert "not a district code" in capsys.readouterr().err
    assert cli.main(["targets", "set", "T1", "target_value=45"]) == 0
    assert "T1.target_value: 40.0 -> 45.0" in capsys.readouterr().out
    assert cli.main(["targets", "show", "T9"]) == 2
