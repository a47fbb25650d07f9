"""docker-compose.yml and the Dockerfile stay in step with the code (no Docker engine needed)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from urbanwatch.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_command_is_a_valid_urbanwatch_command():
    parser = build_parser()
    commands = {
        name: svc["command"] for name, svc in compose()["services"].items() if "command" in svc
    }
    assert set(commands) == {"migrate", "broker-sync", "ingest", "api", "simulator"}
    for name, command in commands.items():
        args = parser.parse_args(command)
        assert callable(args.func), name


def test_mounted_files_and_copied_sources_exist():
    for svc in compose()["services"].values():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source
    for source in re.findall(r"^COPY (\S+)", (ROOT / "Dockerfile").read_text(), re.MULTILINE):
        assert (ROOT / source).exists(), source


def test_app_services_wait_for_healthy_dependencies():
    services = compose()["services"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert (
        services["ingest"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    )
    assert services["ingest"]["depends_on"]["mqtt"]["condition"] == "service_healthy"
    assert all("healthcheck" in services[name] for name in ("db", "mqtt", "api"))
