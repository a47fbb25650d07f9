"""The dashboards' JSON: current with the code, valid for the SDK's models, wired to the
provisioned datasource, every variable defined, Chinese titles first, units set; the macro
expander against Grafana's documented outputs; the provisioning files."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import Dashboard as DashboardModel

from dashboards.build import BOARDS, FOLDERS, HOME_UID, JSON_DIR, load_json, stale_files
from dashboards.macros import MacroError, QueryContext, expand, format_interval
from dashboards.panels import DATASOURCE_TYPE, DATASOURCE_UID

ROOT = Path(__file__).resolve().parents[1]
PROVISIONING = ROOT / "dashboards" / "provisioning"
BOARDS_JSON = [board for _folder, board in load_json()]
CJK = re.compile(r"^[\u4e00-\u9fff]")
GRAFANA_GLOBALS = {"__interval", "__interval_ms", "__all"}


def panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for panel in board["panels"]:
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def test_committed_json_is_what_the_code_builds():
    assert stale_files() == [], "run `urbanwatch dashboards build` and commit dashboards/json"
    assert len(BOARDS_JSON) == len(BOARDS)


def test_a_stale_file_is_reported(tmp_path):
    for rel in (p.relative_to(JSON_DIR) for p in JSON_DIR.glob("*/*.json")):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text((JSON_DIR / rel).read_text("utf-8"), "utf-8")
    live = tmp_path / "uw-operations" / "uw-live.json"
    live.write_text(live.read_text("utf-8").replace("30s", "5s"), "utf-8")
    (tmp_path / "uw-operations" / "old.json").write_text("{}", "utf-8")
    assert sorted(stale_files(tmp_path)) == [
        "uw-operations/old.json: no board builds it",
        "uw-operations/uw-live.json: missing or out of date",
    ]


@pytest.mark.parametrize("board", BOARDS_JSON, ids=lambda b: b["uid"])
def test_json_round_trips_through_the_sdk_models(board):
    model = DashboardModel.from_json(board)
    again = json.loads(json.dumps(model, cls=JSONEncoder, sort_keys=True))
    assert again == board


def test_uids_are_unique_and_stable_and_folders_known():
    uids = [b["uid"] for b in BOARDS_JSON]
    assert len(set(uids)) == len(uids)
    assert set(uids) == {
        "uw-plan",
        "uw-live",
        "uw-manhole",
        "uw-waterlog",
        "uw-streetlight",
        "uw-water",
    }
    assert {p.parent.name for p in JSON_DIR.glob("*/*.json")} <= {f.uid for f in FOLDERS}


@pytest.mark.parametrize("board", BOARDS_JSON, ids=lambda b: b["uid"])
def test_panels_have_unique_ids_and_fit_the_grid(board):
    ids = [p["id"] for p in panels(board)]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == len(ids)
    boxes = []
    for panel in panels(board):
        pos = panel["gridPos"]
        assert pos["x"] + pos["w"] <= 24, panel["title"]
        boxes.append((pos["x"], pos["y"], pos["x"] + pos["w"], pos["y"] + pos["h"], panel["id"]))
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            overlap = a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
            assert not overlap, f"panels {a[4]} and {b[4]} overlap"


def provisioned_uid() -> str:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "urbanwatch.yaml").read_text("utf-8"))
    (source,) = doc["datasources"]
    assert source["type"] == DATASOURCE_TYPE
    return source["uid"]


def datasource_refs(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node["datasource"]] if isinstance(node.get("datasource"), dict) else []
        return found + [r for v in node.values() for r in datasource_refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in datasource_refs(v)]
    return []


@pytest.mark.parametrize("board", BOARDS_JSON, ids=lambda b: b["uid"])
def test_every_datasource_reference_is_the_provisioned_uid(board):
    refs = datasource_refs(board)
    assert refs, "no datasource references at all"
    assert {r["uid"] for r in refs} == {provisioned_uid()} == {DATASOURCE_UID}
    assert "${DS_" not in json.dumps(board)


def used_variables(sql: str) -> set[str]:
    names = {a or b for a, b in re.findall(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", sql)}
    return {n for n in names if not n.startswith("__")}


@pytest.mark.parametrize("board", BOARDS_JSON, ids=lambda b: b["uid"])
def test_every_variable_used_is_defined_before_use(board):
    defined: list[str] = []
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            assert used_variables(variable["query"]) <= set(defined), variable["name"]
        defined.append(variable["name"])
    for panel in panels(board):
        for target in panel.get("targets", []):
            missing = used_variables(target["rawSql"]) - set(defined)
            assert not missing, f"panel {panel['id']} uses undefined {missing}"
        missing = used_variables(panel["title"] + json.dumps(panel.get("fieldConfig"))) - set(
            defined
        )
        assert not missing, f"panel {panel['id']} title or links use undefined {missing}"
    assert used_variables(json.dumps(board.get("links", []))) <= set(defined)


@pytest.mark.parametrize("board", BOARDS_JSON, ids=lambda b: b["uid"])
def test_targets_titles_units_and_refresh(board):
    assert CJK.match(board["title"]) and re.search(r"[A-Za-z]", board["title"])
    assert board["refresh"], "live and kind boards refresh themselves"
    assert board["time"]["from"].startswith("now-")
    for panel in panels(board):
        assert CJK.match(panel["title"]), panel["title"]
        assert re.search(r"[A-Za-z]", panel["title"]), "English alongside"
        if panel["type"] == "row":
            continue
        for target in panel["targets"]:
            assert target["refId"] and target["rawSql"].strip()
            assert target["format"] in ("time_series", "table")
        if panel["type"] == "timeseries":
            assert panel["fieldConfig"]["defaults"].get("unit"), panel["title"]


def test_waterlog_depth_draws_the_four_tiers():
    board = next(b for b in BOARDS_JSON if b["uid"] == "uw-waterlog")
    depth = next(p for p in board["panels"] if p["id"] == 1)
    steps = [s["value"] for s in depth["fieldConfig"]["defaults"]["thresholds"]["steps"]]
    assert steps == [None, 15, 20, 27, 40]
    assert depth["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
    assert depth["fieldConfig"]["defaults"]["unit"] == "suffix: cm"


def test_dashboard_provider_serves_each_folder_from_its_json_directory():
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "urbanwatch.yaml").read_text("utf-8"))
    providers = {p["folderUid"]: p for p in doc["providers"]}
    assert set(providers) == {f.uid for f in FOLDERS}
    for folder in FOLDERS:
        provider = providers[folder.uid]
        assert provider["folder"] == folder.title
        assert provider["options"]["path"].endswith("/" + folder.uid)


def test_datasource_password_comes_from_the_environment():
    text = (PROVISIONING / "datasources" / "urbanwatch.yaml").read_text("utf-8")
    (source,) = yaml.safe_load(text)["datasources"]
    assert source["secureJsonData"]["password"] == "${GRAFANA_DB_PASSWORD}"
    assert source["jsonData"]["timescaledb"] is True


# --- the macro expander, against outputs Grafana's backend documents -------------------

FROM = datetime(2024, 5, 1, tzinfo=UTC)
TO = FROM + timedelta(hours=6)


@pytest.mark.parametrize(
    ("sql", "timescaledb", "expected"),
    [
        (
            "$__timeFilter(ts)",
            False,
            "ts BETWEEN '2024-05-01T00:00:00Z' AND '2024-05-01T06:00:00Z'",
        ),
        (
            "$__timeGroupAlias(ts, $__interval)",
            False,
            'floor(extract(epoch from ts)/60)*60 AS "time"',
        ),
        ("$__timeGroupAlias(ts, '1h')", True, "time_bucket('3600.000s',ts) AS \"time\""),
        ("$__timeGroup(ts, '5m')", False, "floor(extract(epoch from ts)/300)*300"),
        ("$__timeGroup(ts, '5m'), x", False, 'floor(extract(epoch from ts)/300)*300 AS "time", x'),
        ("$__timeFrom()::timestamptz", False, "'2024-05-01T00:00:00Z'::timestamptz"),
        ("$__timeTo()", False, "'2024-05-01T06:00:00Z'"),
        ("$__interval_ms", False, "60000"),
        ("$__unixEpochFrom()", False, "1714521600"),
        ("$__unixEpochFilter(t)", False, "t >= 1714521600 AND t <= 1714543200"),
        ("d IN ($district)", False, "d IN ('north','o''neil')"),
        ("d IN (${district})", False, "d IN ('north','o''neil')"),
    ],
)
def test_macros_expand_as_grafana_does(sql, timescaledb, expected):
    ctx = QueryContext(
        FROM,
        TO,
        timedelta(minutes=1),
        timescaledb,
        {"district": ["north", "o'neil"]},
        frozenset({"district"}),
    )
    assert expand(sql, ctx) == expected


@pytest.mark.parametrize(
    ("seconds", "text"), [(90, "1m"), (60, "1m"), (0.5, "500ms"), (7200, "2h"), (86400 * 3, "3d")]
)
def test_interval_format_truncates_to_the_largest_unit(seconds, text):
    assert format_interval(timedelta(seconds=seconds)) == text


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("$__nope(x)", "unknown macro"),
        ("x IN ($road)", "not defined"),
        ("$__timeGroup(ts, 5q)", "interval"),
    ],
)
def test_expander_refuses_what_grafana_refuses(sql, error):
    with pytest.raises(MacroError, match=error):
        expand(sql, QueryContext(FROM, TO, timedelta(minutes=1)))


def test_used_variables_ignores_grafana_globals():
    assert used_variables("$__timeFilter(ts) AND d IN ($district) AND $__interval") == {"district"}
    assert not GRAFANA_GLOBALS & used_variables("$__interval_ms $__all")


def test_grafanas_home_is_the_plan_progress_board():
    """compose's Grafana opens on the board `push` makes home (HOME_UID): the plan's."""
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mounts = {v.split(":")[1]: ROOT / v.split(":")[0] for v in grafana["volumes"]}
    root = next(m for m in mounts if home.startswith(m + "/"))
    board = json.loads((mounts[root] / home[len(root) + 1 :]).read_text("utf-8"))
    assert board["uid"] == HOME_UID == "uw-plan"
    assert board["title"].startswith("规划进度")
    # the landing board holds what issue #12 lists: T1–T10 with value, line, status,
    # projection, days to deadline and clause; per district; history; worst; API links
    sql = " ".join(t["rawSql"] for p in panels(board) for t in p.get("targets", []))
    for column in (
        "当前值 value",
        "目标线 line",
        "状态 status",
        "截止预测 projection",
        "距截止（天）days to deadline",
        "条款 clause",
        "区 district",
        "差距 gap",
    ):
        assert column in sql, column
    titles = " ".join(p["title"] for p in panels(board))
    assert "History" in titles and "Worst districts" in titles and "Per district" in titles
    links = json.dumps(board)
    assert "${api}/targets/" in links and "${api}/kpis/" in links
