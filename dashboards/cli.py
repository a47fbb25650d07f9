"""`urbanwatch dashboards build|push`: generate the Grafana JSON, upload it to a Grafana."""

from __future__ import annotations

import argparse
from typing import Any

from urbanwatch.errors import RuntimeProblem, UsageError
from urbanwatch.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "dashboards",
        help="Grafana dashboards: build the JSON, push it to a Grafana",
        description="Dashboards as code (docs/dashboards.md). `build` writes dashboards/json/ "
        "from dashboards/*.py; `push` upserts the datasource, folders and dashboards into a "
        "Grafana through its HTTP API (a Grafana provisioned from files needs neither).",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    b = actions.add_parser(
        "build",
        help="write dashboards/json/ from the code",
        description="Regenerate every dashboard's JSON under dashboards/json/<folder>/<uid>.json "
        "(fixed uids and panel ids). Commit the result; tests fail when it is stale.",
    )
    b.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if the JSON is stale"
    )
    b.set_defaults(func=run_build)
    u = actions.add_parser(
        "push",
        help="upsert datasource, folders and dashboards into a Grafana",
        description="Upsert the urbanwatch datasource (uid urbanwatch-pg), the folders and "
        "every dashboard through Grafana's HTTP API. Idempotent: what matches is left alone.",
    )
    u.add_argument("--grafana-url", help="Grafana base URL (default GRAFANA_URL or :3000)")
    u.add_argument("--token", help="service-account token, Admin role (default GRAFANA_TOKEN)")
    u.add_argument(
        "--db-url",
        help="the database as Grafana reaches it, postgresql://USER:PASSWORD@HOST:PORT/DB, "
        "USER a member of urbanwatch_grafana (default GRAFANA_DB_URL; without one the "
        "datasource is left as it is)",
    )
    u.add_argument(
        "--no-timescaledb",
        action="store_true",
        help="the database uses plain PostgreSQL storage ($__timeGroup without time_bucket)",
    )
    u.set_defaults(func=run_push)


def run_build(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards.build import JSON_DIR, stale_files, write_json

    if args.check:
        stale = stale_files()
        for line in stale:
            print(line)
        if stale:
            raise RuntimeProblem(
                f"{len(stale)} dashboard file(s) stale: run `urbanwatch dashboards build`"
            )
        print("dashboards/json is up to date")
        return 0
    written = write_json()
    print(f"{len(written)} dashboard file(s) written under {JSON_DIR}")
    return 0


def run_push(args: argparse.Namespace, settings: Settings) -> int:
    from dashboards.push import Grafana, datasource_body, push

    url = args.grafana_url or settings.grafana_url
    token = args.token or (
        settings.grafana_token.get_secret_value() if settings.grafana_token else None
    )
    if not token:
        raise UsageError("--token: a Grafana service-account token is needed (or GRAFANA_TOKEN)")
    db_url = args.db_url or (
        settings.grafana_db_url.get_secret_value() if settings.grafana_db_url else None
    )
    timescaledb = settings.grafana_db_timescaledb and not args.no_timescaledb
    datasource = datasource_body(db_url, timescaledb) if db_url else None
    report = push(Grafana(url, token), datasource)
    print(
        f"Grafana {report.version} at {url}: {len(report.created)} created, "
        f"{len(report.updated)} updated, {len(report.unchanged)} unchanged"
    )
    for name in report.created + report.updated:
        print(f"  {name}")
    return 0
