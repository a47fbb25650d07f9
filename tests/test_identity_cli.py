"""`urbanwatch users|keys` and migrate's first admin, as the real CLI in a subprocess against
a real database: changes audited as cli:<user>@<host>, passwords never on argv or output."""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import sys

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.identity_support import CHEAP_HASHING, api_settings

PW = "a very long passphrase 42"
NOWHERE_DB = "postgresql://127.0.0.1:1/x"  # nothing listens on port 1


def cli(
    database_url: str, *argv: str, stdin: str = "", **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "urbanwatch.cli", *argv],
        input=stdin,
        env={**os.environ, "DATABASE_URL": database_url, **CHEAP_HASHING, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def entries(database_url: str) -> list[tuple]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT actor, source, action, resource, resource_id, before, after, detail "
            "FROM audit_log ORDER BY id"
        ).fetchall()


ME = f"cli:{getpass.getuser()}@{socket.gethostname()}"


def test_migrate_says_how_to_make_an_admin_then_makes_one(empty_database):
    ran = cli(empty_database, "migrate")
    assert ran.returncode == 0, ran.stderr
    assert "no admin account yet: create one with `urbanwatch users add" in ran.stdout
    ran = cli(empty_database, "migrate", URBANWATCH_ADMIN_PASSWORD=PW)
    assert ran.returncode == 0, ran.stderr
    assert "created admin account 'admin' from URBANWATCH_ADMIN_PASSWORD" in ran.stdout
    ran = cli(empty_database, "migrate", URBANWATCH_ADMIN_PASSWORD="another one entirely")
    assert "admin" not in ran.stdout  # one exists: nothing to do, nothing said
    # migrate also seeds the plan's targets (tests/test_plan_seed.py): their entries aside
    [entry] = [e for e in entries(empty_database) if e[3] != "plan_target"]
    assert entry[:5] == (ME, "cli", "create", "user", "admin")
    assert PW not in str(entry) and PW not in ran.stdout + ran.stderr
    with TestClient(create_app(api_settings(empty_database))) as client:
        got = client.post("/auth/token", data={"username": "admin", "password": PW})
    assert got.status_code == 200


def test_migrate_refuses_a_weak_admin_password_in_one_line(empty_database):
    ran = cli(empty_database, "migrate", URBANWATCH_ADMIN_PASSWORD="admin")
    assert ran.returncode == 2
    assert ran.stderr.splitlines()[-1] == (  # after migrate's log lines
        "urbanwatch: error: setting URBANWATCH_ADMIN_PASSWORD: must be at least 12 characters"
    )


def test_users_add_role_disable_passwd_list(database_url):
    ran = cli(
        database_url,
        "users",
        "add",
        "li.wei",
        "--role",
        "crew",
        "--unit",
        "水务局",
        "--password-stdin",
        stdin=PW + "\n",
    )
    assert (ran.returncode, ran.stdout) == (0, "created crew li.wei (水务局)\n"), ran.stderr
    assert cli(database_url, "users", "role", "li.wei", "operator").returncode == 0
    assert cli(database_url, "users", "disable", "li.wei").stdout == "li.wei disabled\n"
    ran = cli(
        database_url, "users", "passwd", "li.wei", "--password-stdin", stdin="new passphrase 0002\n"
    )
    assert ran.returncode == 0, ran.stderr
    listed = cli(database_url, "users", "list").stdout.splitlines()
    assert listed[0].split() == ["li.wei", "operator", "disabled", "水务局"]
    assert listed[-1] == "1 account(s)"
    log = entries(database_url)
    assert [(e[0], e[2]) for e in log] == [
        (ME, "create"),
        (ME, "update"),
        (ME, "update"),
        (ME, "reset_password"),
    ]
    assert log[1][5]["role"] == "crew" and log[1][6]["role"] == "operator"
    assert PW not in str(log) and "new passphrase 0002" not in str(log)


@pytest.mark.parametrize(
    ("argv", "stdin", "status", "says"),
    [
        (
            ["users", "add", "x.crew", "--role", "crew", "--password-stdin"],
            PW,
            2,
            "unit: a crew account needs",
        ),
        (
            ["users", "add", "Bad Name", "--role", "viewer", "--password-stdin"],
            PW,
            2,
            "username: String should match",
        ),
        (
            ["users", "add", "shorty", "--role", "viewer", "--password-stdin"],
            "short",
            2,
            "password: must be at least 12",
        ),
        (
            ["users", "add", "nopw", "--role", "viewer", "--password-stdin"],
            "",
            2,
            "--password-stdin: standard input is empty",
        ),
        (["users", "passwd", "ghost", "--password-stdin"], PW, 1, "no user 'ghost'"),
        (["users", "role", "ghost", "admin"], "", 1, "no user 'ghost'"),
        (["keys", "revoke", "nokey123"], "", 1, "no API key 'nokey123'"),
        (
            ["keys", "create", "--name", "x", "--role", "viewer", "--expires", "2027-01-01"],
            "",
            2,
            "has no time zone",
        ),
        (
            ["users", "add", "x", "--role", "viewer", "--password", PW],
            "",
            2,
            "not taken on the command line",
        ),
        (["users", "passwd", "x", f"--password={PW}"], "", 2, "not taken on the command line"),
    ],
)
def test_mistakes_end_in_one_line(request, argv, stdin, status, says):
    # Usage errors are found before the database is reached: they get one that is not there.
    url = request.getfixturevalue("database_url") if status == 1 else NOWHERE_DB
    ran = cli(url, *argv, stdin=stdin)
    assert ran.returncode == status, ran.stderr
    assert ran.stderr.count("\n") == 1 and says in ran.stderr, ran.stderr
    assert "Traceback" not in ran.stderr and PW not in ran.stderr


def test_keys_create_prints_the_key_once_and_revoke_ends_it(database_url):
    ran = cli(
        database_url, "keys", "create", "--name", "城市大屏", "--role", "viewer", "--expires", "30d"
    )
    assert ran.returncode == 0, ran.stderr
    key = ran.stdout.strip()
    assert key.startswith("uwk_") and "shown once" in ran.stderr and key not in ran.stderr
    key_id = key.split("_")[1]
    listed = cli(database_url, "keys", "list").stdout
    assert key_id in listed and key not in listed and "城市大屏" in listed
    with TestClient(create_app(api_settings(database_url))) as client:
        assert client.get("/devices", headers={"X-API-Key": key}).status_code == 200
        assert cli(database_url, "keys", "revoke", key_id).returncode == 0
        assert client.get("/devices", headers={"X-API-Key": key}).status_code == 401
    assert cli(database_url, "keys", "list").stdout.strip() == "0 key(s)"
    assert key_id in cli(database_url, "keys", "list", "--all").stdout
    assert [(e[0], e[2], e[4]) for e in entries(database_url)] == [
        (ME, "create", key_id),
        (ME, "revoke", key_id),
    ]
    assert key not in str(entries(database_url))


def test_the_api_will_not_start_without_its_secret():
    ran = cli(NOWHERE_DB, "api", "--port", "1", API_SECRET_KEY="")
    assert ran.returncode == 2 and ran.stdout == ""
    assert ran.stderr.startswith("urbanwatch: error: setting API_SECRET_KEY: unset; ")
    assert ran.stderr.count("\n") == 1
