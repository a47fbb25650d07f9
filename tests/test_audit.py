"""The audit log: entries in the caller's transaction, secrets never stored, append-only for
every role and not even granted to the application's role."""

from __future__ import annotations

import psycopg
import pytest

from urbanwatch import audit
from urbanwatch.queries.audit import list_entries


def test_an_entry_records_who_what_and_before_after_without_secrets(conn):
    actor = audit.Actor("user:li.wei", "operator", "10.1.2.3")
    audit.record(
        conn,
        actor,
        "update",
        "device",
        "MH-1",
        before={"district": "wenfeng", "password_hash": "$argon2id$x"},
        after={"district": "beiguan", "secret": "s3cr3t"},
    )
    [entry], total = list_entries(conn, resource="device", resource_id="MH-1")
    assert total == 1
    assert (entry.actor, entry.actor_role, entry.source, entry.action) == (
        "user:li.wei",
        "operator",
        "10.1.2.3",
        "update",
    )
    assert entry.before == {"district": "wenfeng"} and entry.after == {"district": "beiguan"}
    assert entry.at is not None


def test_an_entry_rolls_back_with_the_change(conn):
    with pytest.raises(RuntimeError), conn.transaction():
        audit.record(conn, audit.Actor.cli(), "delete", "device", "MH-2")
        raise RuntimeError("the change failed")
    assert list_entries(conn)[1] == 0


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET actor = 'nobody'", "DELETE FROM audit_log", "TRUNCATE audit_log"],
)
def test_the_log_is_append_only_even_for_its_owner(conn, statement):
    audit.record(conn, audit.Actor.cli(), "create", "device", "MH-3")
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        conn.execute(statement)
    assert list_entries(conn)[1] == 1


def test_the_application_role_may_only_insert_and_read(conn):
    audit.record(conn, audit.Actor.cli(), "create", "device", "MH-4")
    conn.execute("SET ROLE urbanwatch_app")
    try:
        audit.record(conn, audit.Actor.service("ingest"), "create", "device", "MH-5")
        assert list_entries(conn)[1] == 2
        for statement in ("UPDATE audit_log SET actor = 'x'", "DELETE FROM audit_log"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement)
        conn.execute("SELECT count(*) FROM devices")  # the rest of the schema is usable
        conn.execute(
            "INSERT INTO devices (device_id, kind, district, lat, lon) "
            "VALUES ('app-1', 'manhole', 'wenfeng', 36, 114)"
        )
    finally:
        conn.execute("RESET ROLE")


def test_a_cli_actor_names_the_os_user_and_host():
    actor = audit.Actor.cli()
    assert actor.name.startswith("cli:") and "@" in actor.name and actor.source == "cli"
