"""Every board, its folder, and the JSON files Grafana provisions (dashboards/json/)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders.dashboard import Dashboard
from grafana_foundation_sdk.cog.encoder import JSONEncoder

from dashboards import live, manhole, plan, streetlight, water, waterlog

JSON_DIR = Path(__file__).resolve().parent / "json"


@dataclass(frozen=True)
class Folder:
    """A Grafana folder: one per audience (provisioning/dashboards/urbanwatch.yaml)."""

    uid: str
    title: str


OPERATIONS = Folder("uw-operations", "运行值班 Operations")
SPECIALISTS = Folder("uw-specialists", "专业科室 Specialists")
FOLDERS = (OPERATIONS, SPECIALISTS)

# Grafana's home: the plan-progress board, in provisioning (docker-compose.yml's
# GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH) and in `push` (the organisation's preferences).
HOME_UID = plan.UID

BOARDS: tuple[tuple[Folder, Callable[[], Dashboard]], ...] = (
    (OPERATIONS, plan.board),
    (OPERATIONS, live.board),
    (SPECIALISTS, manhole.board),
    (SPECIALISTS, waterlog.board),
    (SPECIALISTS, streetlight.board),
    (SPECIALISTS, water.board),
)


def render(board: Dashboard) -> str:
    """The dashboard model as Grafana stores it: stable key order, Chinese kept readable."""
    text = json.dumps(board.build(), cls=JSONEncoder, sort_keys=True, indent=2, ensure_ascii=False)
    return text + "\n"


def rendered() -> dict[Path, str]:
    """Relative path (folder uid / board uid .json) -> file text, for every board."""
    out: dict[Path, str] = {}
    for folder, make in BOARDS:
        text = render(make())
        uid = json.loads(text)["uid"]
        out[Path(folder.uid) / f"{uid}.json"] = text
    return out


def write_json(root: Path = JSON_DIR) -> list[Path]:
    """Write every board under `root` and remove JSON files no board produces."""
    files = rendered()
    for stale in root.glob("*/*.json"):
        if stale.relative_to(root) not in files:
            stale.unlink()
    written = []
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text("utf-8") != text:
            path.write_text(text, "utf-8")
            written.append(path)
    return written


def stale_files(root: Path = JSON_DIR) -> list[str]:
    """What differs between the committed JSON and what the code builds now."""
    files = rendered()
    problems = [
        f"{rel}: missing or out of date"
        for rel, text in files.items()
        if not (root / rel).exists() or (root / rel).read_text("utf-8") != text
    ]
    problems += [
        f"{p.relative_to(root)}: no board builds it"
        for p in root.glob("*/*.json")
        if p.relative_to(root) not in files
    ]
    return problems


def load_json(root: Path = JSON_DIR) -> list[tuple[Folder, dict[str, Any]]]:
    by_uid = {f.uid: f for f in FOLDERS}
    return [
        (by_uid[p.parent.name], json.loads(p.read_text("utf-8")))
        for p in sorted(root.glob("*/*.json"))
    ]
