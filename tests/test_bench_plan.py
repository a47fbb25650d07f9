"""Smoke test of the plan benchmark (bench/plan.py): its whole code path at a tiny scale
(0.001 × city, 3 days) on the real server, and the JSON it writes has every figure."""

from __future__ import annotations

import json

from bench import plan, report
from tests.conftest import ADMIN_URL
from urbanwatch.plan.values import FAMILIES


def test_plan_bench_runs_and_writes_every_field(tmp_path):
    out = tmp_path / "plan.json"
    assert plan.main(["--admin-url", ADMIN_URL, "--scale", "0.001", "--days", "3",
                      "--jobs", "1", "--repeats", "2", "--report-runs", "1",
                      "--output", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert (doc["scale"], doc["days"], doc["storage"]) == (0.001, 3, "plain")
    assert doc["ledgers"]["plan_targets"] >= 10
    assert all(doc["ledgers"][t] > 0 for t in plan.LEDGER_TABLES)
    snap = doc["snapshot"]
    assert snap["period_days"] == 3 and snap["daily_job_days"] == 4
    assert snap["rows_written"] > 0 and snap["per_day_s"]["max"] >= snap["per_day_s"]["p50"]
    with_data, stored = doc["kpi_values_with_data"]
    assert 0 < with_data <= stored  # the ledgers make KPIs with values, not only "no data"
    endpoints = doc["endpoints"]
    assert set(endpoints) == {
        "GET /targets", "GET /targets/{id}", "GET /kpis?kpi&scope&since", "GET /kpis/{key}",
        "GET /kpis/{key}/items", "GET /feed", "all",
    }  # fmt: skip
    assert endpoints["GET /targets/{id}"]["urls"] == doc["ledgers"]["plan_targets"]
    for name, figures in endpoints.items():
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"], name
    made = doc["report"]
    assert made["text"]["runs"] == made["xlsx"]["runs"] == 1
    assert made["text_lines"] > 10 and made["xlsx_bytes"] > 0
    # each cached endpoint's first request after a change to one input family (then to
    # every family at once): the cache's miss path; "all" pools them
    changed = doc["endpoints_after_change"]
    assert set(changed) == {*FAMILIES, "every family", "all"}
    for family in (*FAMILIES, "every family"):
        assert set(changed[family]) == {"GET /targets", "GET /targets/{id}", "GET /kpis/{key}",
                                        "GET /feed", "all"}, family  # fmt: skip
        for name, figures in changed[family].items():
            assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"], (family, name)
    # "all" pools the single families' samples ("every family" apart)
    assert changed["all"]["max_ms"] == max(changed[family]["all"]["max_ms"] for family in FAMILIES)
    assert set(doc["met"]) == {"endpoints_p99", "endpoints_after_change_p99", "report"}
    assert doc["meta"]["commit"]
    section = "\n".join(report._plan(doc))  # latest.md's section from this JSON
    assert "## 6. Plan KPIs, targets and report: 3 days at 0.001 × city scale" in section
    # and each cached one after a change to each family and to every family
    assert section.count("| GET /") == 6 + 4 * (len(FAMILIES) + 1)
