"""`urbanwatch dashboards push` against a real HTTP server on loopback that checks each
request and answers as Grafana's API does (state kept, 401, 412, 5xx, old versions)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dashboards.build import FOLDERS, HOME_UID, load_json
from dashboards.panels import DATASOURCE_UID
from dashboards.push import Grafana, datasource_body, push
from tests.conftest import _free_port
from urbanwatch.cli import main
from urbanwatch.errors import RuntimeProblem, UsageError

TOKEN = "glsa_test_token"
DB_URL = "postgresql://grafana:s3cret@db:5432/urbanwatch"


class FakeGrafana(ThreadingHTTPServer):
    """State like Grafana's: datasources, folders, dashboards with versions."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.version = "11.6.3"
        self.datasources: dict[str, dict[str, Any]] = {}
        self.folders: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        # Grafana 11's GET /api/org/preferences of a fresh organisation, a theme chosen.
        self.preferences: dict[str, Any] = {
            "theme": "dark",
            "homeDashboardId": 0,
            "homeDashboardUID": "",
            "timezone": "browser",
            "weekStart": "",
            "language": "zh-Hans",
        }
        self.requests: list[tuple[str, str]] = []
        self.faults: dict[tuple[str, str], tuple[int, dict[str, Any]]] = {}
        self.problems: list[str] = []  # requests Grafana would reject as malformed

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def writes(self) -> list[tuple[str, str]]:
        return [r for r in self.requests if r[0] != "GET"]


class Handler(BaseHTTPRequestHandler):
    server: FakeGrafana

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, code: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        g = self.server
        g.requests.append((method, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        if self.path != "/api/health" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._answer(401, {"message": "invalid API key"})
        if (method, self.path) in g.faults:
            return self._answer(*g.faults[(method, self.path)])
        self._answer(*self._route(method, self.path, body))

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        g = self.server
        if path == "/api/health":
            return 200, {"database": "ok", "version": g.version}
        if path.startswith("/api/datasources"):
            uid = path.rsplit("/", 1)[-1]
            if method == "GET":
                found = g.datasources.get(uid)
                return (200, found) if found else (404, {"message": "Data source not found"})
            if not {"uid", "name", "type", "url", "user", "jsonData"} <= set(body):
                g.problems.append(f"datasource body {sorted(body)}")
            stored = {k: v for k, v in body.items() if k != "secureJsonData"}
            g.datasources[body["uid"]] = {**stored, "id": 7, "secureJsonFields": {"password": True}}
            return 200, {"message": "Datasource added", "id": 7}
        if path.startswith("/api/folders"):
            if method == "GET":
                found = g.folders.get(path.rsplit("/", 1)[-1])
                return (200, found) if found else (404, {"message": "folder not found"})
            uid = body.get("uid") or path.rsplit("/", 1)[-1]
            g.folders[uid] = {"uid": uid, "title": body["title"], "version": 1}
            return 200, g.folders[uid]
        if path.startswith("/api/dashboards/uid/"):
            found = g.dashboards.get(path.rsplit("/", 1)[-1])
            return (200, found) if found else (404, {"message": "Dashboard not found"})
        if path == "/api/dashboards/db":
            board = body["dashboard"]
            if body["folderUid"] not in g.folders:
                return 400, {"message": "folder not found"}
            if not body.get("overwrite"):
                g.problems.append("dashboard saved without overwrite")
            old = g.dashboards.get(board["uid"])
            version = old["dashboard"]["version"] + 1 if old else 1
            g.dashboards[board["uid"]] = {
                "dashboard": {**board, "id": 3, "version": version},
                "meta": {"folderUid": body["folderUid"]},
            }
            return 200, {"status": "success", "uid": board["uid"], "version": version}
        if path == "/api/org/preferences":
            if method == "GET":
                return 200, g.preferences
            uid = body.get("homeDashboardUID")
            if uid not in g.dashboards:  # Grafana resolves the uid to a dashboard id
                return 404, {"message": "Dashboard not found"}
            if "homeDashboardId" in body and body["homeDashboardId"] != 0:
                g.problems.append("home set by a stale id next to the uid")
            # PUT replaces every preference: what the body leaves out is reset.
            g.preferences = {
                k: body.get(k, "") for k in g.preferences if k != "homeDashboardId"
            } | {"homeDashboardId": 3}
            return 200, {"message": "Preferences updated"}
        return 404, {"message": "Not found"}

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def run_push(grafana: FakeGrafana, token: str = TOKEN, db_url: str | None = DB_URL):
    return push(Grafana(grafana.url, token), datasource_body(db_url, True) if db_url else None)


def test_push_creates_everything_then_writes_nothing_more(grafana):
    report = run_push(grafana)
    boards = load_json()
    assert len(report.created) == 1 + len(FOLDERS) + len(boards)
    assert report.updated == [f"home dashboard {HOME_UID}"]
    assert grafana.problems == []
    # The plan board is home; the organisation's other preferences are kept.
    assert grafana.preferences["homeDashboardUID"] == HOME_UID == "uw-plan"
    assert grafana.preferences["theme"] == "dark"
    assert grafana.preferences["language"] == "zh-Hans"
    source = grafana.datasources[DATASOURCE_UID]
    assert source["url"] == "db:5432" and source["user"] == "grafana"
    assert source["jsonData"]["database"] == "urbanwatch"
    assert {f.uid: f.title for f in FOLDERS} == {u: f["title"] for u, f in grafana.folders.items()}
    for folder, board in boards:
        stored = grafana.dashboards[board["uid"]]
        assert stored["meta"]["folderUid"] == folder.uid
        assert stored["dashboard"]["panels"] == board["panels"]
    grafana.requests.clear()
    again = push(Grafana(grafana.url, TOKEN), None)  # no --db-url: datasource left alone
    assert again.created == again.updated == []
    assert f"home dashboard {HOME_UID}" in again.unchanged
    assert grafana.writes() == []
    assert all(v["dashboard"]["version"] == 1 for v in grafana.dashboards.values())


def test_a_changed_dashboard_or_folder_title_is_written_again(grafana):
    run_push(grafana)
    grafana.dashboards["uw-water"]["dashboard"]["title"] = "edited in the UI"
    grafana.folders["uw-operations"]["title"] = "renamed"
    grafana.requests.clear()
    report = run_push(grafana, db_url=None)
    assert report.updated == ["folder uw-operations", "dashboard uw-water"]  # home unchanged
    assert grafana.writes() == [
        ("PUT", "/api/folders/uw-operations"),
        ("POST", "/api/dashboards/db"),
    ]
    assert grafana.dashboards["uw-water"]["dashboard"]["version"] == 2


def test_a_given_password_is_always_sent(grafana):
    run_push(grafana)
    grafana.requests.clear()
    report = run_push(grafana)
    assert report.updated == ["datasource urbanwatch"]
    assert grafana.writes() == [("PUT", f"/api/datasources/uid/{DATASOURCE_UID}")]


def test_home_set_elsewhere_is_put_back_and_a_refusal_is_one_line(grafana):
    run_push(grafana)
    grafana.preferences["homeDashboardUID"] = "uw-live"  # changed in the UI
    grafana.requests.clear()
    report = run_push(grafana, db_url=None)
    assert report.updated == [f"home dashboard {HOME_UID}"]
    assert grafana.writes() == [("PUT", "/api/org/preferences")]
    assert grafana.preferences["homeDashboardUID"] == HOME_UID
    grafana.preferences["homeDashboardUID"] = ""
    grafana.faults[("PUT", "/api/org/preferences")] = (403, {"message": "permission denied"})
    with pytest.raises(RuntimeProblem) as err:
        run_push(grafana, db_url=None)
    assert "home dashboard uw-plan" in str(err.value) and "403" in str(err.value)
    assert "\n" not in str(err.value)
    del grafana.faults[("PUT", "/api/org/preferences")]
    grafana.dashboards.pop(HOME_UID)  # lost after its GET: Grafana answers the PUT with 404
    grafana.faults[("GET", f"/api/dashboards/uid/{HOME_UID}")] = (
        200,
        {
            "dashboard": next(b for _f, b in load_json() if b["uid"] == HOME_UID),
            "meta": {"folderUid": "uw-operations"},
        },
    )
    with pytest.raises(RuntimeProblem, match=r"404.*no such dashboard"):
        run_push(grafana, db_url=None)


def test_wrong_token_is_one_line_about_auth(grafana):
    with pytest.raises(RuntimeProblem) as err:
        run_push(grafana, token="wrong")
    assert "401" in str(err.value) and "--token" in str(err.value)
    assert "\n" not in str(err.value)
    assert grafana.writes() == []


def test_version_conflict_names_the_dashboard(grafana):
    grafana.faults[("POST", "/api/dashboards/db")] = (
        412,
        {"message": "The dashboard has been changed by someone else", "status": "version-mismatch"},
    )
    with pytest.raises(RuntimeProblem) as err:
        run_push(grafana)
    message = str(err.value)
    assert "412 version-mismatch" in message and "dashboard uw-live" in message
    assert "\n" not in message


def test_server_error_is_one_line_with_status_and_request(grafana):
    grafana.faults[("POST", "/api/folders")] = (502, {"message": "bad gateway\nupstream down"})
    with pytest.raises(RuntimeProblem) as err:
        run_push(grafana)
    message = str(err.value)
    assert "502" in message and "POST /api/folders" in message and "\n" not in message


def test_an_older_grafana_is_refused_before_anything_is_written(grafana):
    grafana.version = "10.4.2"
    with pytest.raises(RuntimeProblem, match=r"10\.4\.2.*11\.6"):
        run_push(grafana)
    assert grafana.writes() == []


def test_unreachable_grafana_is_one_line():
    with pytest.raises(RuntimeProblem, match="cannot reach Grafana") as err:
        push(Grafana(f"http://127.0.0.1:{_free_port()}", TOKEN), None)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("url", ["not a url", "postgresql:///nodb", "postgresql://db/urbanwatch"])
def test_bad_db_url_is_a_usage_error(url):
    with pytest.raises(UsageError, match="--db-url"):
        datasource_body(url, True)


def test_cli_push_reports_and_exit_codes(grafana, capsys, monkeypatch):
    monkeypatch.delenv("GRAFANA_TOKEN", raising=False)
    assert main(["dashboards", "push", "--grafana-url", grafana.url, "--token", TOKEN]) == 0
    assert "created" in capsys.readouterr().out
    assert main(["dashboards", "push", "--grafana-url", grafana.url, "--token", "bad"]) == 1
    err = capsys.readouterr().err.strip()
    assert "401" in err and len(err.splitlines()) == 1
    assert main(["dashboards", "push", "--grafana-url", grafana.url]) == 2


def test_cli_build_check_passes_on_the_committed_json(capsys):
    assert main(["dashboards", "build", "--check"]) == 0
    assert "up to date" in capsys.readouterr().out


URL_PART = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
HOSTS = ["db", "10.0.0.5", "pg.example"]


@pytest.fixture(scope="module")
def shared_grafana() -> Iterator[FakeGrafana]:
    server = FakeGrafana()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    user=URL_PART,
    password=URL_PART,
    host=st.one_of(URL_PART, st.sampled_from(HOSTS)),
    port=st.one_of(st.none(), st.integers(-5, 70000), URL_PART),
    dbname=URL_PART,
    junk=st.one_of(st.just(""), URL_PART),
)
def test_any_db_url_is_refused_naming_the_option_or_lands_in_grafana(
    shared_grafana, user, password, host, port, dbname, junk
):
    """`--db-url` all the way to the stored datasource: a bad URL is one UsageError that
    names --db-url, a good one arrives with its host, port, user and database intact."""
    url = f"postgresql://{quote(user)}:{quote(password)}@{host}"
    url += (f":{port}" if port is not None else "") + f"/{quote(dbname)}{junk}"
    try:
        body = datasource_body(url, False)
    except UsageError as exc:
        assert str(exc).startswith("--db-url") and "\n" not in str(exc)
        return
    shared_grafana.datasources.clear()
    push(Grafana(shared_grafana.url, TOKEN), body)
    stored = shared_grafana.datasources[DATASOURCE_UID]
    assert shared_grafana.problems == []
    assert stored["user"] == body["user"] and stored["jsonData"]["timescaledb"] is False
    assert stored["jsonData"]["database"] == body["jsonData"]["database"]
    assert 0 < int(stored["url"].rsplit(":", 1)[1]) < 65536
    if host in HOSTS and user and dbname and not junk and isinstance(port, int | None):
        assert (stored["user"], stored["jsonData"]["database"]) == (user, dbname)
        assert stored["url"] == f"{host}:{port if port is not None else 5432}"
