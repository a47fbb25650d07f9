"""Upsert the datasource, folders and every dashboard into a Grafana over its HTTP API.

A thin httpx client over the six endpoints needed (grafana-client would bring
urllib3-future, which replaces urllib3 for every other package in the environment).
Idempotent: what already matches is left alone, so a second push writes nothing. Every
failure ends in one line (urbanwatch.errors): auth, version, conflicts, connection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import httpx
from psycopg.conninfo import conninfo_to_dict

from dashboards.build import FOLDERS, HOME_UID, load_json
from dashboards.panels import DATASOURCE_TYPE, DATASOURCE_UID
from urbanwatch.errors import RuntimeProblem, UsageError

# The dashboards are generated for this Grafana (the SDK build pinned in pyproject.toml);
# an older server may not read their schema.
MIN_GRAFANA = (11, 6)
TIMEOUT_S = 10.0
MESSAGE = "urbanwatch dashboards push"


@dataclass
class PushReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    version: str = ""


def datasource_body(db_url: str, timescaledb: bool) -> dict[str, Any]:
    """The datasource as provisioning/datasources/urbanwatch.yaml describes it."""
    try:
        info = conninfo_to_dict(db_url)
    except Exception as exc:  # psycopg raises ProgrammingError with a multi-line text
        raise UsageError(f"--db-url: not a PostgreSQL URL: {str(exc).splitlines()[0]}") from None
    if not info.get("host") or not info.get("dbname") or not info.get("user"):
        raise UsageError("--db-url: needs postgresql://USER[:PASSWORD]@HOST[:PORT]/DBNAME")
    port = str(info.get("port", 5432))
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--db-url: port {port!r} is not a number from 1 to 65535")
    body: dict[str, Any] = {
        "uid": DATASOURCE_UID,
        "name": "urbanwatch",
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": f"{info['host']}:{port}",
        "user": info["user"],
        "isDefault": True,
        "jsonData": {
            "database": info["dbname"],
            "sslmode": info.get("sslmode", "disable"),
            "postgresVersion": 1500,
            "timescaledb": timescaledb,
            "timeInterval": "1m",
        },
    }
    if info.get("password"):
        body["secureJsonData"] = {"password": info["password"]}
    return body


class Grafana:
    def __init__(self, url: str, token: str, transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self.http = httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=TIMEOUT_S,
            transport=transport,
        )

    def call(self, method: str, path: str, body: Any = None, what: str = "") -> Any:
        """JSON of a 2xx answer; None for a 404; a one-line RuntimeProblem otherwise."""
        try:
            answer = self.http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise RuntimeProblem(f"cannot reach Grafana at {self.url}: {exc}") from None
        if answer.status_code == 404:
            return None
        if answer.is_success:
            return answer.json() if answer.content else {}
        raise RuntimeProblem(self._explain(answer, method, path, what))

    def _explain(self, answer: httpx.Response, method: str, path: str, what: str) -> str:
        try:
            detail = answer.json()
            text = detail.get("message") or detail.get("status") or answer.text
            status = detail.get("status", "")
        except ValueError:
            text, status = answer.text, ""
        text = re.sub(r"\s+", " ", str(text)).strip()[:200]
        code = answer.status_code
        about = f" {what}" if what else ""
        if code == 401:
            return f"Grafana at {self.url} refused the token (401 Unauthorized): check --token"
        if code == 403:
            return (
                f"Grafana at {self.url} refused{about} (403 Forbidden): "
                "the token needs the Admin role"
            )
        if code == 412:
            return (
                f"Grafana at {self.url} refused{about} (412 {status or 'precondition failed'}): "
                f"{text}; a dashboard with this title or uid was changed or exists elsewhere"
            )
        return f"Grafana at {self.url} answered {code} to {method} {path}{about}: {text}"

    def check_version(self) -> str:
        health = self.call("GET", "/api/health") or {}
        version = str(health.get("version", ""))
        found = tuple(int(p) for p in re.findall(r"\d+", version)[:2])
        if len(found) < 2:
            raise RuntimeProblem(f"Grafana at {self.url} did not say its version (/api/health)")
        if found < MIN_GRAFANA:
            raise RuntimeProblem(
                f"Grafana at {self.url} is {version}; the dashboards are built for "
                f"{MIN_GRAFANA[0]}.{MIN_GRAFANA[1]} or newer (docs/dashboards.md)"
            )
        return version


def _same(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(current.get(k) == v for k, v in wanted.items() if k not in ("secureJsonData",))


def push(grafana: Grafana, datasource: dict[str, Any] | None) -> PushReport:
    report = PushReport(version=grafana.check_version())
    if datasource is not None:
        path = f"/api/datasources/uid/{DATASOURCE_UID}"
        current = grafana.call("GET", path, what="datasource")
        if current is None:
            grafana.call("POST", "/api/datasources", datasource, "datasource")
            report.created.append("datasource urbanwatch")
        elif not _same(current, datasource) or "secureJsonData" in datasource:
            # A password is write-only in Grafana: when one is given, it is always sent.
            grafana.call("PUT", path, {**datasource, "id": current.get("id")}, "datasource")
            report.updated.append("datasource urbanwatch")
        else:
            report.unchanged.append("datasource urbanwatch")
    body: dict[str, Any]
    for folder in FOLDERS:
        current = grafana.call("GET", f"/api/folders/{folder.uid}", what=f"folder {folder.uid}")
        if current is None:
            body = {"uid": folder.uid, "title": folder.title}
            grafana.call("POST", "/api/folders", body, f"folder {folder.uid}")
            report.created.append(f"folder {folder.uid}")
        elif current.get("title") != folder.title:
            body = {
                "title": folder.title,
                "version": current.get("version"),
                "overwrite": True,
            }
            grafana.call("PUT", f"/api/folders/{folder.uid}", body, f"folder {folder.uid}")
            report.updated.append(f"folder {folder.uid}")
        else:
            report.unchanged.append(f"folder {folder.uid}")
    for folder, board in load_json():
        uid = board["uid"]
        current = grafana.call("GET", f"/api/dashboards/uid/{uid}", what=f"dashboard {uid}")
        if current is not None:
            stored = {
                k: v for k, v in current.get("dashboard", {}).items() if k not in ("id", "version")
            }
            if stored == board and current.get("meta", {}).get("folderUid") == folder.uid:
                report.unchanged.append(f"dashboard {uid}")
                continue
        body = {
            "dashboard": {**board, "id": None},
            "folderUid": folder.uid,
            "overwrite": True,
            "message": MESSAGE,
        }
        grafana.call("POST", "/api/dashboards/db", body, f"dashboard {uid}")
        (report.created if current is None else report.updated).append(f"dashboard {uid}")
    set_home(grafana, report)
    return report


def set_home(grafana: Grafana, report: PushReport) -> None:
    """Make the plan-progress board the organisation's home. PUT replaces every preference,
    so the current ones (theme, timezone, ...) are sent back with the new home."""
    what = f"home dashboard {HOME_UID}"
    current = grafana.call("GET", "/api/org/preferences", what="organisation preferences")
    if current is None:
        raise RuntimeProblem(f"Grafana at {grafana.url} has no /api/org/preferences (404)")
    if current.get("homeDashboardUID") == HOME_UID:
        report.unchanged.append(what)
        return
    body = {k: v for k, v in current.items() if k != "homeDashboardId"}
    if (
        grafana.call("PUT", "/api/org/preferences", {**body, "homeDashboardUID": HOME_UID}, what)
        is None
    ):
        raise RuntimeProblem(f"Grafana at {grafana.url} refused {what} (404): no such dashboard")
    report.updated.append(what)
