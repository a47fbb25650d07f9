"""/alert-sla and `urbanwatch alerts sla` (docs/api-alerts.md "SLA"): viewers read the
per-severity periods, only an admin changes them, every change is audited, a bad body is
refused with the field named, the new periods become new alerts' deadlines, and (hypothesis)
any sequence of edits leaves the table, the API and the audit log agreeing with a model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.alerts_api_support import World, make_world, open_alert, row

DEFAULTS = [  # migration 018 [P]
    {"severity": "critical", "site_s": 1800, "resolve_s": 7200},
    {"severity": "alarm", "site_s": 3600, "resolve_s": 86400},
    {"severity": "warning", "site_s": 86400, "resolve_s": 259200},
    {"severity": "info", "site_s": None, "resolve_s": None},
]
SEVERITIES = ["info", "warning", "alarm", "critical"]
YEAR = 365 * 86400


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    yield from make_world(database_url)


def table(url: str) -> dict[str, tuple[int | None, int | None]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT severity, site_s, resolve_s FROM alert_sla").fetchall()
    return {s: (a, b) for s, a, b in rows}


def audit_rows(url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT actor, actor_role, resource_id, before, after, detail FROM audit_log "
            "WHERE action = 'alert_sla.update' ORDER BY id"
        ).fetchall()


def test_viewers_read_and_only_admins_change(world: World) -> None:
    c, k = world.client, world.keys
    assert c.get("/alert-sla").status_code == 401
    assert c.get("/alert-sla", headers=k["viewer"]).json() == DEFAULTS
    assert c.get("/alert-sla/alarm", headers=k["crew"]).json() == DEFAULTS[1]
    body = {"site_s": 900, "resolve_s": 43200, "note": "市局要求 15 分钟到场"}
    assert c.put("/alert-sla/alarm", json=body).status_code == 401
    for role in ("viewer", "crew", "water_crew", "operator"):
        refused = c.put("/alert-sla/alarm", json=body, headers=k[role])
        assert refused.status_code == 403, (role, refused.text)
    assert table(world.url)["alarm"] == (3600, 86400) and audit_rows(world.url) == []
    put = c.put("/alert-sla/alarm", json=body, headers=k["admin"])
    assert put.status_code == 200, put.text
    assert put.json() == {"severity": "alarm", "site_s": 900, "resolve_s": 43200}
    assert table(world.url)["alarm"] == (900, 43200)
    [(actor, role, severity, before, after, detail)] = audit_rows(world.url)
    assert (actor.startswith("key:"), role, severity) == (True, "admin", "alarm")
    assert before == {"site_s": 3600, "resolve_s": 86400}
    assert after == {"site_s": 900, "resolve_s": 43200}
    assert detail == {"note": "市局要求 15 分钟到场"}
    schema = c.get("/openapi.json").json()["paths"]
    assert schema["/alert-sla/{severity}"]["put"]["x-required-role"] == "admin"
    assert schema["/alert-sla"]["get"]["x-required-role"] == "viewer"


BAD = [
    ("site later than resolve", "alarm", {"site_s": 7200, "resolve_s": 3600}, ["body"], "site_s"),
    ("zero", "alarm", {"site_s": 0, "resolve_s": 3600}, ["body", "site_s"], "greater than 0"),
    ("negative", "alarm", {"site_s": 60, "resolve_s": -1}, ["body", "resolve_s"], "greater"),
    ("a boolean", "alarm", {"site_s": True, "resolve_s": 3600}, ["body", "site_s"], "integer"),
    ("a numeric string", "alarm", {"site_s": "1800", "resolve_s": 3600}, ["body", "site_s"],
     "integer"),
    ("a fraction", "alarm", {"site_s": 1.5, "resolve_s": 3600}, ["body", "site_s"], "integer"),
    ("over a year", "warning", {"site_s": 60, "resolve_s": YEAR + 1}, ["body", "resolve_s"],
     "less than or equal"),
    ("a period left out", "alarm", {"site_s": 60}, ["body", "resolve_s"], "required"),
    ("an unknown field", "alarm", {"site_s": 60, "resolve_s": 60, "ack_s": 5},
     ["body", "ack_s"], "not permitted"),
    ("a NUL in the note", "alarm", {"site_s": 60, "resolve_s": 60, "note": "a\x00"},
     ["body", "note"], "NUL"),
    ("an unknown severity", "fatal", {"site_s": 60, "resolve_s": 60}, ["path", "severity"],
     "'info', 'warning', 'alarm' or 'critical'"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "severity", "body", "loc", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_edits_are_refused_naming_the_field(
    world: World, case: str, severity: str, body: dict[str, Any], loc: list[str], words: str
) -> None:
    put = world.client.put(f"/alert-sla/{severity}", json=body, headers=world.keys["admin"])
    assert put.status_code == 422, put.text
    [error] = put.json()["detail"]
    assert error["loc"][: len(loc)] == loc and words in error["msg"], error
    assert table(world.url)["alarm"] == (3600, 86400) and audit_rows(world.url) == []


def test_the_chinese_message_for_site_after_resolve(world: World) -> None:
    put = world.client.put(
        "/alert-sla/critical", json={"site_s": 7200, "resolve_s": 3600}, headers=world.keys["admin"]
    )
    assert put.json()["detail"][0]["msg"].startswith("Value error, 到场时限不能长于处置时限 site_s")


def test_new_alerts_get_the_new_deadlines_old_ones_keep_theirs(world: World) -> None:
    before = open_alert(world.url, subject="MH-1", severity="alarm")
    body = {"site_s": 600, "resolve_s": 5400}
    assert world.client.put("/alert-sla/alarm", json=body, headers=world.keys["admin"]).is_success
    after = open_alert(world.url, subject="MH-2", district="linzhou", severity="alarm")
    # whole seconds: the periods count from the later of opened_at and the write (a few ms)
    deadlines = (
        "SELECT floor(extract(epoch FROM site_due_at - opened_at))::int, "
        "floor(extract(epoch FROM resolve_due_at - opened_at))::int FROM alerts WHERE id = %s"
    )
    assert row(world.url, deadlines, before) == (3600, 86400)
    assert row(world.url, deadlines, after) == (600, 5400)
    none = {"site_s": None, "resolve_s": None}
    assert world.client.put("/alert-sla/warning", json=none, headers=world.keys["admin"]).is_success
    quiet = open_alert(world.url, rule_id="SL_PF_LOW", subject="SL-1", kind="streetlight",
                       severity="warning")  # fmt: skip
    assert row(world.url, deadlines, quiet) == (None, None)


periods = st.one_of(
    st.none(),
    st.integers(min_value=1, max_value=YEAR),
    st.sampled_from([0, -1, YEAR + 1, 2**31, 1.5, True, "60", "1h"]),
)


def valid(site: Any, resolve: Any) -> bool:
    def ok(v: Any) -> bool:
        return v is None or (type(v) is int and 0 < v <= YEAR)

    return ok(site) and ok(resolve) and (site is None or resolve is None or site <= resolve)


def test_any_sequence_of_edits_matches_a_model(world: World) -> None:
    c, admin = world.client, world.keys["admin"]
    model = {r["severity"]: (r["site_s"], r["resolve_s"]) for r in DEFAULTS}
    accepted: list[tuple[str, Any, Any]] = []

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(severity=st.sampled_from(SEVERITIES), site=periods, resolve=periods, note=st.booleans())
    def edit(severity: str, site: Any, resolve: Any, note: bool) -> None:
        body = {"site_s": site, "resolve_s": resolve, **({"note": "调整"} if note else {})}
        put = c.put(f"/alert-sla/{severity}", json=body, headers=admin)
        if valid(site, resolve):
            assert put.status_code == 200, (body, put.text)
            model[severity] = (site, resolve)
            accepted.append((severity, site, resolve))
        else:
            assert put.status_code == 422, (body, put.text)
        assert table(world.url) == model
        listed = c.get("/alert-sla", headers=world.keys["viewer"]).json()
        assert [r["severity"] for r in listed] == SEVERITIES[::-1]
        assert {r["severity"]: (r["site_s"], r["resolve_s"]) for r in listed} == model

    edit()
    logged = audit_rows(world.url)
    assert [(s, a["site_s"], a["resolve_s"]) for _, _, s, _, a, _ in logged] == accepted
    last = {r["severity"]: {"site_s": r["site_s"], "resolve_s": r["resolve_s"]} for r in DEFAULTS}
    for _, _, severity, before, after, _ in logged:  # each entry's before: the last after
        assert before == last[severity]
        last[severity] = after


def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "urbanwatch.cli", "alerts", "sla", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": url},
        timeout=60,
    )


def test_cli_show_and_set(database_url: str) -> None:
    shown = cli(database_url, "show")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[1:] == [
        "critical        30m       2h",
        "alarm            1h       1d",
        "warning          1d       3d",
        "info           none     none",
    ]
    done = cli(database_url, "set", "critical", "--site", "20m", "--resolve", "90m", "--note", "x")
    assert (done.returncode, done.stdout) == (0, "critical: on site 20m, resolve 90m\n")
    assert table(database_url)["critical"] == (1200, 5400)
    [(actor, _, severity, before, after, detail)] = audit_rows(database_url)
    assert actor.startswith("cli:") and (severity, detail) == ("critical", {"note": "x"})
    assert (before, after) == ({"site_s": 1800, "resolve_s": 7200},
                               {"site_s": 1200, "resolve_s": 5400})  # fmt: skip
    late = cli(database_url, "set", "alarm", "--site", "2d", "--resolve", "1d")
    assert late.returncode == 2 and late.stderr.startswith(
        "urbanwatch: error: 到场时限不能长于处置时限"
    )
    typo = cli(database_url, "set", "alarm", "--site", "2x", "--resolve", "1d")
    assert typo.returncode == 2 and "'2x' 不是时长 is not a period" in typo.stderr
    never = cli(database_url, "set", "info", "--site", "none", "--resolve", "3d")
    assert never.returncode == 0 and table(database_url)["info"] == (None, 259200)
    assert len(audit_rows(database_url)) == 2
