"""Routing as data: the route file's errors (line and field), the most specific route, the
shipped defaults, `routes check|load` (audited), and a property test that drives arbitrary
route files through load, routing and delivery."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from alerts.notify.notifier import Notifier
from alerts.notify.receiver import ReceiverState, Server
from tests.test_alerts_notify import ENV, GROUP, open_alert, outbox, run_until, settings_for
from urbanwatch.cli import main
from urbanwatch.routing.load import RouteFileError, default_text, parse_route_file

BASE: dict[str, Any] = {
    "version": 1,
    "sla": {"critical": {"ack": "10m"}, "alarm": {"ack": 1800, "max_level": 1}},
    "units": {"cgj": {"name": "市城市管理局"}, "zjj": {"name": "市住房城乡建设局"}},
    "channels": {
        "a": {"type": "webhook", "url": "http://127.0.0.1:9/a"},
        "b": {"type": "webhook", "url": "http://127.0.0.1:9/b", "secret_env": "HOOK_SECRET"},
    },
    "crews": {
        "x": {"unit": "cgj", "channels": ["a"]},
        "y": {"unit": "zjj", "channels": ["b"]},
        "z": {"unit": "zjj", "channels": ["a", "b"]},
    },
    "routes": [
        {"unit": "cgj", "crews": ["x"]},
        {"kind": "manhole", "unit": "cgj", "crews": ["x"], "escalate": ["z"]},
        {"kind": "waterlog", "district": "linzhou", "unit": "zjj", "crews": ["y"]},
        {"kind": "waterlog", "min_severity": "critical", "unit": "zjj", "crews": ["z"]},
        {"district": "linzhou", "unit": "zjj", "crews": ["z"]},
    ],
}


def dump(doc: Any) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def mutate(path: list[Any], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    node = doc
    for part in path[:-1]:
        node = node[part]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("path", "value", "needle", "field", "problem"),
    [
        (["sla", "alarm", "ack"], "soon", "  alarm:", "sla.alarm", "not a duration"),
        (["sla", "urgent"], {"ack": "1m"}, "urgent:", "sla.urgent", "Input should be"),
        (["channels", "a", "type"], "pager", "type: pager", "channels.a.type", "Input should be"),
        (["channels", "a", "url"], KeyError, "  a:", "channels.a", "exactly one of url or url_env"),
        (
            ["channels", "b", "secret_env"],
            "hook-secret",
            "hook-secret",
            "channels.b.secret_env",
            "pattern",
        ),
        (
            ["crews", "x", "channels"],
            ["a", "nope"],
            "  x:",
            "crews.x.channels",
            "no channel 'nope'",
        ),
        (["crews", "y", "unit"], "ghost", "  y:", "crews.y.unit", "no unit 'ghost'"),
        (
            ["routes", 1, "escalate"],
            ["ghost"],
            "- kind: manhole",
            "routes[1].escalate",
            "no crew 'ghost'",
        ),
        (
            ["routes", 2, "min_severity"],
            "severe",
            "severe",
            "routes[2].min_severity",
            "Input should be",
        ),
        (
            ["routes", 0, "kind"],
            "manhole",
            "- kind: manhole",
            "routes[1]",
            "same kind, district and severity as line",
        ),
        (["routes", 0, "district"], "wenfeng", "routes:", "routes", "no catch-all route"),
        (["routes", 3, "colour"], "red", "colour: red", "routes[3].colour", "Extra inputs"),
        (["version"], 2, "version: 2", "version", "Input should be 1"),
    ],
)
def test_bad_route_file_refused_with_line_and_field(path, value, needle, field, problem):
    text = dump(mutate(path, value))
    with pytest.raises(RouteFileError) as err:
        parse_route_file(text)
    assert err.value.field == field
    assert problem in err.value.problem
    assert err.value.line == line_of(text, needle)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("version: 1\nunits: [\n", 3, "not YAML"),
        ("- just\n- a list\n", 1, "a route file is a mapping"),
        ("version: 1\nversion: 1\n", 2, "key given twice"),
        ("", 1, "a route file is a mapping"),
        ("{", 1, "not YAML"),  # PyYAML said line 2, past the end of this one-line file
        ('version: 1\nunits:\n  cgj:\n    name: "a\\0b"\n', 4, "contains NUL"),
    ],
)
def test_unreadable_files_refused_with_line(text, line, problem):
    with pytest.raises(RouteFileError) as err:
        parse_route_file(text)
    assert err.value.line == line and problem in err.value.problem


@pytest.mark.parametrize(
    ("kind", "district", "severity", "crews"),
    [
        ("manhole", "wenfeng", "alarm", ["x"]),  # kind route
        ("streetlight", "wenfeng", "alarm", ["x"]),  # catch-all
        ("streetlight", "linzhou", "info", ["z"]),  # district route
        ("waterlog", "linzhou", "critical", ["y"]),  # kind+district beats kind+severity
        ("waterlog", "wenfeng", "critical", ["z"]),  # kind + min severity
        ("waterlog", "wenfeng", "alarm", ["x"]),  # below the minimum: catch-all
        ("manhole", "linzhou", "alarm", ["z"]),  # a district beats a kind at equal count
        ("manhole", None, "info", ["x"]),
    ],
)
def test_most_specific_route_wins(kind, district, severity, crews):
    route = parse_route_file(dump(BASE)).resolve(kind, district, severity)
    assert route is not None and route.crews == crews


@pytest.mark.parametrize(
    ("unit", "crews"),
    [(None, ["x"]), ("zjj", ["y"]), ("市住房城乡建设局", ["y"]), ("cgj", ["x"]), ("nobody", ["x"])],
)
def test_alert_naming_its_unit_goes_by_that_units_routes(unit, crews):
    doc = copy.deepcopy(BASE)
    doc["routes"].append({"kind": "streetlight", "unit": "zjj", "crews": ["y"]})
    doc["routes"].append(
        {"kind": "streetlight", "district": "wenfeng", "unit": "cgj", "crews": ["x"]}
    )
    route = parse_route_file(dump(doc)).resolve("streetlight", "wenfeng", "alarm", unit=unit)
    assert route is not None and route.crews == crews


def test_shipped_routes_send_each_kind_to_its_lead_unit():
    f = parse_route_file(default_text())
    leads = {"manhole": "cgj", "streetlight": "cgj", "waterlog": "zjj", "watermeter": "shuiwu"}
    for kind, unit in leads.items():
        route = f.resolve(kind, "wenfeng", "alarm")
        assert route is not None and route.unit == unit, kind
    critical = f.resolve("waterlog", "huaxian", "critical")
    assert critical is not None and "zjj-duty" in critical.crews
    assert f.units["cgj"].name == "市城市管理局"
    # Secrets only by name: no channel carries a robot key or signing secret.
    assert all(c.url is None or "key=" not in c.url for c in f.channels.values())


def test_cli_check_and_load_audited(conn, database_url, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    bad = tmp_path / "bad.yaml"
    bad.write_text(dump(mutate(["crews", "x", "unit"], "ghost")))
    assert main([*GROUP, "routes", "check", str(bad)]) == 2
    assert (
        f"{bad}:{line_of(bad.read_text(), '  x:')}: crews.x.unit: no unit 'ghost'"
        in capsys.readouterr().err
    )
    assert main([*GROUP, "routes", "load", str(bad)]) == 2
    assert conn.execute("SELECT count(*) FROM notify_routes").fetchone()[0] == 0
    assert main([*GROUP, "routes", "load"]) == 0  # the shipped defaults
    assert "6 routes, 8 crews" in capsys.readouterr().out
    good = tmp_path / "good.yaml"
    good.write_text(dump(BASE))
    assert main([*GROUP, "routes", "load", str(good)]) == 0
    assert conn.execute("SELECT count(*) FROM notify_routes").fetchone()[0] == len(BASE["routes"])
    entries = conn.execute(
        "SELECT actor, action, after->>'source', before FROM audit_log "
        "WHERE resource = 'alert_routes' ORDER BY id"
    ).fetchall()
    assert [(e[1], e[2]) for e in entries] == [
        ("load", "shipped:urbanwatch/routing/routes.yaml"),
        ("load", str(good)),
    ]
    assert entries[0][0].startswith("cli:") and entries[1][3] == {"routes": 6}


# --- property: any route file is refused with a line, or loaded and used for delivery -------

NAMES = st.sampled_from(["a", "b", "x", "y", "z", "cgj", "zjj", "ghost"])
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 100_000),
    st.text(max_size=12),
    NAMES,
    st.lists(NAMES, max_size=3),
    st.dictionaries(NAMES, NAMES, max_size=2),
    st.sampled_from(["10m", "0s", "3h", "critical", "info", "http://x", "webhook", "wecom"]),
)
ROUTE = st.fixed_dictionaries(
    {
        "unit": st.sampled_from(["cgj", "zjj"]),
        "crews": st.lists(st.sampled_from(["x", "y", "z"]), min_size=1, max_size=2),
    },
    optional={
        "kind": st.sampled_from(["manhole", "waterlog", "streetlight"]),
        "district": st.sampled_from(["wenfeng", "linzhou"]),
        "min_severity": st.sampled_from(["warning", "alarm", "critical"]),
        "escalate": st.lists(st.sampled_from(["x", "y", "z"]), max_size=2),
    },
)


def matchers(route: dict[str, Any]) -> tuple[Any, ...]:
    return (route.get("kind"), route.get("district"), route.get("min_severity"))


@st.composite
def route_files(draw: st.DrawFn) -> str:
    doc = copy.deepcopy(BASE)
    extra = draw(st.lists(ROUTE.filter(lambda r: any(matchers(r))), max_size=3, unique_by=matchers))
    doc["routes"] = [{"unit": "cgj", "crews": ["x"]}, *extra]
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2]))):
        section = draw(st.sampled_from(["sla", "units", "channels", "crews", "routes", "version"]))
        if section == "version":
            doc["version"] = draw(JUNK)
            continue
        container = doc[section]
        keys = list(range(len(container))) if isinstance(container, list) else list(container)
        if not keys:
            continue
        key = draw(st.sampled_from(keys))
        target = container[key]
        if isinstance(target, dict) and draw(st.booleans()):
            field = draw(st.sampled_from([*target, "extra"]))
            target[field] = draw(JUNK)
        elif draw(st.booleans()):
            container[key] = draw(JUNK)
        elif isinstance(container, list):
            container.pop(key)
        else:
            del container[key]
    text = dump(doc)
    if draw(st.integers(0, 9)) == 0:  # now and then, damage the text itself
        lines = text.splitlines()
        at = draw(st.integers(0, len(lines) - 1))
        lines[at] = draw(st.text(max_size=20))
        text = "\n".join(lines) + "\n"
    return text


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Server]:
    server = Server("127.0.0.1", 0, ReceiverState(None, tmp_path / "prop.jsonl", echo=False))
    server.start()
    yield server
    server.stop()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    text=route_files(),
    alert=st.tuples(
        st.sampled_from(["manhole", "waterlog", "streetlight", "watermeter"]),
        st.sampled_from([None, "wenfeng", "linzhou"]),
        st.sampled_from(["info", "warning", "alarm", "critical"]),
    ),
)
def test_any_route_file_refused_with_line_or_loaded_and_used(
    text, alert, conn, database_url, hooks, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    path = tmp_path / "routes.yaml"
    # The stand-in channels point at the real receiver.
    path.write_text(text.replace("http://127.0.0.1:9/", hooks.url + "/"), "utf-8")
    loads_before = conn.execute("SELECT count(*) FROM notify_route_loads").fetchone()[0]
    try:
        parsed = parse_route_file(path.read_text("utf-8"))
    except RouteFileError as exc:
        event("refused")
        assert 1 <= exc.line <= max(1, len(path.read_text().splitlines()) + 1)
        assert exc.problem
        assert main([*GROUP, "routes", "load", str(path)]) == 2
        err = capsys.readouterr().err
        assert f"{path}:{exc.line}: " in err and err.count("\n") == 1
        assert conn.execute("SELECT count(*) FROM notify_route_loads").fetchone()[0] == loads_before
        return
    assert main([*GROUP, "routes", "load", str(path)]) == 0
    event("loaded")
    capsys.readouterr()
    kind, district, severity = alert
    conn.execute("DELETE FROM notify_outbox")
    alert_id = open_alert(conn, kind=kind, district=district, severity=severity)
    route = parsed.resolve(kind, district, severity)
    assert route is not None  # a loaded file always has its catch-all
    expected = {ch for crew in route.crews for ch in parsed.crews[crew].channels}
    notifier = Notifier(settings_for(database_url), env=ENV)
    notifier.route_inbox(notifier.conn.get())
    rows = conn.execute(
        "SELECT channel, message FROM notify_outbox WHERE alert_id = %s", (alert_id,)
    ).fetchall()
    assert {r[0] for r in rows} == expected
    assert all(r[1]["route"]["line"] == route.line for r in rows)
    webhook_rows = {
        r[0]
        for r in outbox(conn, "pending")
        if parsed.channels[r[0]].type == "webhook"
        and (parsed.channels[r[0]].url or "").startswith(hooks.url)
    }
    event(f"delivered on {len(webhook_rows)} webhook channel(s)")
    run_until(notifier, lambda: {r[0] for r in outbox(conn, "sent")} >= webhook_rows)
    logged = (
        [json.loads(x) for x in (tmp_path / "prop.jsonl").read_text().splitlines()]
        if webhook_rows
        else []
    )
    assert {e["idempotency_key"] for e in logged} >= {
        f"uw-{e}-{c}"
        for c in webhook_rows
        for (e,) in conn.execute("SELECT id FROM alert_events WHERE alert_id = %s", (alert_id,))
    }
    notifier.conn.reset()
