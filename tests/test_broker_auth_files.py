"""The pure parts of broker accounts (usernames, ACL rules, Mosquitto's hash format) and
the command's refusals, without a broker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.mqtt_helpers import count, register
from urbanwatch import cli
from urbanwatch.credentials.accounts import Account, acl_rules, render_acl_file, username_for
from urbanwatch.credentials.broker import reload_broker, write_atomically
from urbanwatch.credentials.hashing import hash_password, new_password, verify_password
from urbanwatch.errors import RuntimeProblem


def test_our_hashes_and_mosquitto_passwd_s_are_the_same_format(tmp_path: Path):
    path = tmp_path / "pw"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(path), "u", "s3cret"], check=True)
    theirs = path.read_text().strip().split(":", 1)[1]
    assert verify_password("s3cret", theirs) and not verify_password("s3cret!", theirs)
    ours = hash_password("s3cret")
    assert ours.split("$")[1:3] == theirs.split("$")[1:3] == ["7", "101"]
    assert len(ours) == len(theirs) and verify_password("s3cret", ours)
    assert not verify_password("s3cret", "$7$101$not base64$x")
    assert new_password() != new_password() and len(new_password()) >= 27


@pytest.mark.parametrize(
    ("principal", "principal_id", "kind", "username"),
    [
        ("device", "MH-WF-000123", "manhole", "manhole/MH-WF-000123"),
        ("device", "a:b:c", "waterlog", "waterlog/a%3Ab%3Ac"),
        ("gateway", "GW.07", None, "gateway/GW.07"),
        ("service", "ingest", None, "service/ingest"),
    ],
)
def test_usernames(principal, principal_id, kind, username):
    assert username_for(principal, principal_id, kind) == username


@pytest.mark.parametrize(
    ("principal", "principal_id", "kind"),
    [
        ("device", "a/b", "manhole"),
        ("device", "x\n", "manhole"),
        ("device", "mh-1", None),
        ("device", "mh-1", "gateway"),
        ("gateway", "#", None),
        ("service", "root", None),
    ],
)
def test_usernames_refuse_what_no_account_can_be(principal, principal_id, kind):
    with pytest.raises(ValueError):
        username_for(principal, principal_id, kind)


def test_the_acl_file_grants_by_pattern_and_lists_only_what_patterns_cannot_serve():
    accounts = [Account("device", f"MH-{i}", "h", "manhole") for i in range(1000)] + [
        Account("device", "wl:1", "h", "waterlog"),
        Account("service", "ingest", "h"),
    ]
    acl = render_acl_file(accounts, "city")
    assert acl.count("\nuser ") == 2
    assert "pattern write city/%u/telemetry\npattern write city/%u/status\n" in acl
    assert "pattern deny city/gateway/+/status\n" in acl
    assert "user waterlog/wl%3A1\ntopic write city/waterlog/wl:1/telemetry\n" in acl
    assert "user service/ingest\ntopic read city/#\n" in acl


@pytest.mark.parametrize(
    ("account", "rules"),
    [
        (
            Account("device", "mh:1", "h", "manhole"),
            [("write", "p/manhole/mh:1/telemetry"), ("write", "p/manhole/mh:1/status")],
        ),
        (Account("gateway", "gw-1", "h"), [("write", "p/gateway/gw-1/telemetry")]),
        (Account("service", "ingest", "h"), [("read", "p/#")]),
        (
            Account("service", "alerts", "h"),
            [("read", "p/+/+/telemetry"), ("read", "p/+/+/status")],
        ),
        (Account("service", "notify", "h"), [("write", "p/alerts/#")]),
        (
            Account("service", "simulator", "h"),
            [("write", "p/+/+/telemetry"), ("write", "p/+/+/status")],
        ),
    ],
)
def test_each_account_is_granted_exactly_its_topics(account, rules):
    assert acl_rules(account, "p") == rules


def test_the_acl_file_refuses_a_prefix_it_cannot_hold():
    with pytest.raises(ValueError, match="white space"):
        render_acl_file([Account("gateway", "g", "h")], "city one")
    with pytest.raises(ValueError, match="white space or %"):
        render_acl_file([], "city%u")


def test_files_are_replaced_whole_and_private(tmp_path: Path):
    target = tmp_path / "passwd"
    write_atomically(target, "a\n")
    write_atomically(target, "b\n")
    assert target.read_text() == "b\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert os.listdir(tmp_path) == ["passwd"]


def test_a_failed_reload_is_one_line(tmp_path: Path):
    with pytest.raises(RuntimeProblem, match="exited 1"):
        reload_broker(None, "false")
    with pytest.raises(RuntimeProblem, match="cannot signal the broker"):
        reload_broker(tmp_path / "missing.pid", None)
    assert "not signalled" in reload_broker(None, None)


def test_the_command_refuses_without_storing(conn, database_url, tmp_path, monkeypatch, capsys):
    register(conn, [("mh-1", "manhole")])
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("BROKER_AUTH_DIR", raising=False)
    existing = tmp_path / "old.csv"
    existing.write_text("keep me\n")
    cases = [
        (["issue"], "say whose credentials"),
        (["issue", "mh-1", "nope-9"], "not in the registry (or outside the filter): nope-9"),
        (["issue", "mh-1", "--csv", str(existing)], "exists; give a new file"),
        (["issue", "--gateways", "--gateway", "gw-9"], "no such gateway"),
    ]
    for argv, message in cases:
        assert cli.main(["devices", "credentials", *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert existing.read_text() == "keep me\n"
    assert count(conn, "device_credentials") == 0
    assert cli.main(["devices", "credentials", "rotate", "-q", "mh-1"]) == 0
    assert "skipped manhole/mh-1: has no active password" in capsys.readouterr().err
    assert count(conn, "device_credentials") == 0


def test_a_password_shown_once_is_stored_only_hashed(conn, database_url, monkeypatch, capsys):
    register(conn, [("mh-1", "manhole")])
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("BROKER_AUTH_DIR", raising=False)
    assert cli.main(["devices", "credentials", "issue", "-q", "mh-1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("username,password,")
    password = out[1].split(",")[1]
    (hashed,) = conn.execute("SELECT password_hash FROM device_credentials").fetchone()
    assert verify_password(password, hashed) and password not in hashed
    dump = conn.execute("SELECT string_agg(t::text, ' ') FROM audit_log t").fetchone()[0]
    assert password not in dump and hashed not in dump


def test_reissuing_rotates_existing_accounts(conn, database_url, monkeypatch, capsys):
    register(conn, [("mh-1", "manhole"), ("mh-2", "manhole")])
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delenv("BROKER_AUTH_DIR", raising=False)
    assert cli.main(["devices", "credentials", "issue", "-q", "mh-1"]) == 0
    first = capsys.readouterr().out.splitlines()[1].split(",")[1]
    argv = ["devices", "credentials", "issue", "-q", "--rotate-existing", "--kind", "manhole"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert "issued 1, rotated 1 account(s), skipped 0" in captured.err
    rows = [line.split(",") for line in captured.out.splitlines()[1:]]
    assert [r[0] for r in rows] == ["manhole/mh-1", "manhole/mh-2"]
    (hashed,) = conn.execute(
        "SELECT password_hash FROM device_credentials WHERE username = 'manhole/mh-1'"
    ).fetchone()
    assert verify_password(rows[0][1], hashed) and not verify_password(first, hashed)
    actions = conn.execute(
        "SELECT action FROM audit_log WHERE resource = 'device_credential' ORDER BY id"
    ).fetchall()
    assert [a for (a,) in actions] == ["issue", "rotate", "issue"]
