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
    services = compose()["services"]
    commands = {}
    for name, svc in services.items():
        if "command" not in svc:
            continue
        if svc.get("entrypoint") == ["sh", "-c"]:  # `urbanwatch A && urbanwatch B`
            for step in svc["command"][0].split("&&"):
                words = step.split()
                assert words[0] == "urbanwatch", (name, step)
                commands[f"{name}: {step.strip()}"] = words[1:]
        else:
            commands[name] = svc["command"]
    assert {name.split(":")[0] for name in commands} == {
        "migrate",
        "broker-sync",
        "seed",
        "ingest",
        "alerts",
        "notify",
        "api",
        "simulator",
    }
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


def _pinned_sdk_grafana() -> tuple[int, int]:
    text = (ROOT / "pyproject.toml").read_text()
    match = re.search(r'"grafana-foundation-sdk==\d+!(\d+)\.(\d+)\.\d+"', text)
    assert match, "grafana-foundation-sdk must be pinned to one Grafana build"
    return int(match[1]), int(match[2])


def test_grafana_runs_the_version_the_dashboards_are_built_for():
    grafana = compose()["services"]["grafana"]
    match = re.fullmatch(r"grafana/grafana(?:-oss)?:(\d+)\.(\d+)\.\d+", grafana["image"])
    assert match, f"pin an exact Grafana version, not {grafana['image']}"
    assert (int(match[1]), int(match[2])) == _pinned_sdk_grafana()
    db = compose()["services"]["db"]["image"]
    assert re.fullmatch(r"timescale/timescaledb:\d+\.\d+\.\d+-pg\d+", db)


def test_grafana_is_provisioned_from_the_repository_and_waits_for_the_schema():
    grafana = compose()["services"]["grafana"]
    mounts = {v.split(":")[1]: ROOT / v.split(":")[0] for v in grafana["volumes"]}
    assert (
        mounts["/etc/grafana/provisioning/datasources"]
        == ROOT / "dashboards/provisioning/datasources"
    )
    providers = yaml.safe_load(
        (ROOT / "dashboards/provisioning/dashboards/urbanwatch.yaml").read_text()
    )["providers"]
    for provider in providers:  # each provider's folder is a mounted folder of JSON files
        inside = provider["options"]["path"]
        root = next(m for m in mounts if inside.startswith(m + "/"))
        assert list((mounts[root] / inside[len(root) + 1 :]).glob("*.json")), inside
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    root = next(m for m in mounts if home.startswith(m + "/"))
    assert (mounts[root] / home[len(root) + 1 :]).is_file()
    assert grafana["depends_on"]["db"]["condition"] == "service_healthy"
    assert grafana["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "healthcheck" in grafana
    # The datasource file reads these from Grafana's environment.
    datasource = (ROOT / "dashboards/provisioning/datasources/urbanwatch.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)\}", datasource))
    assert used <= set(grafana["environment"]), used - set(grafana["environment"])


def test_no_secret_has_a_default_and_named_volumes_are_declared():
    doc = compose()
    text = (ROOT / "docker-compose.yml").read_text()
    for name in re.findall(r"(\w*PASSWORD\w*):", text):
        for value in re.findall(rf"{name}: (.*)", text):
            # required (:?) or optional and empty when unset (:-}), never a default value
            assert re.fullmatch(r"\$\{\w+(:\?[^}]+|:-)\}", value.strip()), f"{name}: {value}"
    example = (ROOT / ".env.example").read_text()
    for secret in ("POSTGRES_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "GRAFANA_DB_PASSWORD"):
        assert re.search(rf"^{secret}=$", example, re.MULTILINE), secret
    named = {
        v.split(":")[0]
        for svc in doc["services"].values()
        for v in svc.get("volumes", [])
        if not v.startswith(("./", "/"))
    }
    assert named <= set(doc["volumes"])


def test_every_service_with_a_port_has_a_healthcheck_and_the_readme_names_grafana():
    services = compose()["services"]
    for name, svc in services.items():
        if svc.get("ports"):
            assert "healthcheck" in svc, name
    readme = (ROOT / "README.md").read_text()
    assert "docker compose up" in readme and "http://127.0.0.1:3000" in readme
    for name in ("grafana", "simulator"):
        assert name in services and name in readme.lower()
