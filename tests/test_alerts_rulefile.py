"""The rule-file path, whole: YAML text -> refused with a line and field, or stored in the
database, read back identical and evaluated by the engine (hypothesis drives it with edits
of the shipped file and with arbitrary YAML). Plus the CLI's check and load."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from alerts.engine import Engine
from urbanwatch.alerting import Device, RuleFileError, RuleSet, parse_rules
from urbanwatch.alerting.loader import default_rules_text
from urbanwatch.audit import Actor
from urbanwatch.queries import rules as rule_queries

DEFAULT = yaml.safe_load(default_rules_text())
FIELDS = [
    "id",
    "kind",
    "type",
    "title",
    "severity",
    "evidence",
    "params",
    "windows",
    "trigger",
    "for_s",
    "count",
    "clear",
    "clear_for_s",
    "clear_count",
    "auto_resolve",
    "after_s",
    "severity_in_work_window",
    "enabled",
    "bogus",
]
EXPRESSIONS = [
    "tilt_deg > params.tilt_deg",
    "depth_cm >= 15",
    "__import__('os')",
    "x.y.z",
    "abs(",
    "depth_cm[0]",
    "lambda: 1",
    "open('f')",
    "known(depth_cm) and depth_cm > 3",
    "win.rain_1h > 1",
    "prev.depth_cm - depth_cm > 1",
    "expected_on",
    "1 if depth_cm > 1 else 0",
]
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100_000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(EXPRESSIONS),
    st.sampled_from(
        [
            "manhole",
            "waterlog",
            "streetlight",
            "watermeter",
            "alarm",
            "critical",
            "MH_TILT",
            "井盖 cover",
        ]
    ),
    st.text(max_size=12),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["tilt_deg", "x", "depth_cm"]), st.integers(0, 9), max_size=2),
)
DEVICES = [
    Device("MH-1", "manhole"),
    Device("WL-1", "waterlog", attrs={"role": "depth"}),
    Device("SL-1", "streetlight", attrs={"rated_power_w": 60.0}),
    Device("WM-1", "watermeter", attrs={"meter_role": "inlet"}),
]
READINGS = {
    "manhole": {"tilt_deg": 40.0, "cover_open": True, "ch4_pct_lel": 60.0},
    "waterlog": {"depth_cm": 30.0, "rain_mm": 30.0},
    "streetlight": {"active_power_w": 0.0, "supply_voltage_v": 0.0},
    "watermeter": {"flow_m3_h": 10.0, "pressure_mpa": 0.05},
}


@st.composite
def edited_files(draw: st.DrawFn) -> str:
    doc: dict[str, Any] = yaml.safe_load(default_rules_text())
    for _ in range(draw(st.integers(0, 3))):
        rule = doc["rules"][draw(st.integers(0, len(doc["rules"]) - 1))]
        key = draw(st.sampled_from(FIELDS))
        if draw(st.booleans()):
            rule[key] = draw(VALUES)
        else:
            rule.pop(key, None)
    if draw(st.booleans()):
        doc.setdefault("overrides", []).append(
            draw(
                st.fixed_dictionaries(
                    {"rule": st.sampled_from(["MH_TILT", "NOPE", "WL_LEVEL_L1"])},
                    optional={
                        "device": st.just("MH-1"),
                        "district": st.just("wenfeng"),
                        "params": st.dictionaries(
                            st.sampled_from(["tilt_deg", "depth_cm", "zzz"]), VALUES, max_size=2
                        ),
                        "severity": VALUES,
                    },
                )
            )
        )
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


ANY_YAML = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
    lambda c: st.one_of(
        st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)
    ),
    max_leaves=10,
).map(lambda d: yaml.safe_dump(d, allow_unicode=True))


def check_path(conn: psycopg.Connection, text: str) -> None:
    lines = text.count("\n") + 1
    try:
        rules = parse_rules(text)
    except RuleFileError as exc:
        assert exc.problems
        for line, _path, message in exc.problems:
            assert line is not None and 1 <= line <= lines, exc.problems
            assert message
        assert str(exc).startswith("line ")
        return
    version = rule_queries.store_rule_set(conn, rules, Actor.service("alerts-engine-test"))
    assert rule_queries.current_version(conn) == version
    again = RuleSet.model_validate(rule_queries.load_rule_set_data(conn))
    assert again == rules
    engine = Engine(again, DEVICES)
    for i, device in enumerate(DEVICES):
        engine.on_reading(device, READINGS[device.kind], 1_700_000_000.0 + i, 1_700_000_000.0)
        engine.on_reading(device, READINGS[device.kind], 1_700_000_100.0 + i, 1_700_000_100.0)
    engine.on_tick(1_700_900_000.0)
    assert len(engine.take_dirty()) == len(DEVICES)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(edited_files())
def test_edited_rule_files_are_refused_with_a_line_or_stored_and_used(
    conn: psycopg.Connection, text: str
) -> None:
    check_path(conn, text)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(ANY_YAML, st.text(max_size=40)))
@example(text="{")  # PyYAML put its end-of-file error on line 2 of this one-line file
def test_arbitrary_yaml_is_refused_with_a_line(conn: psycopg.Connection, text: str) -> None:
    check_path(conn, text)


def test_a_broken_file_names_line_and_field() -> None:
    text = default_rules_text().replace(
        "trigger: cover_open == True", "trigger: cover_open == __import__('os')"
    )
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "__import__" in t)
    try:
        parse_rules(text)
    except RuleFileError as exc:
        assert (
            str(exc)
            == f"line {line}: rules[2].trigger: calls are limited to abs, coalesce, known, max, min"
        )
    else:
        raise AssertionError("accepted")


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "urbanwatch.cli", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_check_and_load(tmp_path: Path, conn: psycopg.Connection, database_url: str) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(
        default_rules_text().replace(
            "params: {tilt_deg: 10, hysteresis_deg: 2}", "params: {tilt_deg: 12, hysteresis_deg: 2}"
        )
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        default_rules_text().replace(
            "severity: alarm\n    evidence: V\n    params: {tilt_deg: 10",
            "severity: loud\n    evidence: V\n    params: {tilt_deg: 10",
        )
    )
    ok = cli("alerts", "rules", "check", str(good))
    assert ok.returncode == 0 and "44 rules, 0 overrides, valid" in ok.stdout
    refused = cli("alerts", "rules", "check", str(bad))
    assert refused.returncode == 2
    line = next(
        i for i, text in enumerate(bad.read_text().splitlines(), 1) if "severity: loud" in text
    )
    assert re.fullmatch(
        rf"urbanwatch: .*bad\.yaml: line {line}: rules\[0\]\.severity: Input should be 'info', 'warning', 'alarm' or 'critical'\n",
        refused.stderr,
    ), refused.stderr
    env = {**os.environ, "DATABASE_URL": database_url}
    assert cli("alerts", "rules", "load", str(bad), env=env).returncode == 2
    assert rule_queries.current_version(conn) is None  # nothing stored from a broken file
    loaded = cli("alerts", "rules", "load", str(good), "--note", "one cover tilts more", env=env)
    assert loaded.returncode == 0, loaded.stderr
    assert (
        RuleSet.model_validate(rule_queries.load_rule_set_data(conn)).rules[0].params["tilt_deg"]
        == 12
    )
    audit = conn.execute(
        "SELECT action, resource, after->>'rules', detail->>'note' FROM audit_log"
    ).fetchall()
    assert audit == [("alert_rules.load", "alert_rules", "44", "one cover tilts more")]
