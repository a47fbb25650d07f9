"""`urbanwatch broker sync --service-passwords-from-env` (what compose's broker-sync runs):
service accounts get the deployment's passwords from the environment, once."""

from __future__ import annotations

from tests.conftest import wait_for
from tests.mqtt_broker_auth import NOT_AUTHORIZED, connack_of
from urbanwatch import cli


def test_service_passwords_come_from_the_environment(
    conn, database_url, auth_broker, topic_prefix, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MQTT_TOPIC_PREFIX", topic_prefix)
    monkeypatch.setenv("INGEST_MQTT_PASSWORD", "ingest-secret-from-env")
    monkeypatch.delenv("SIMULATOR_MQTT_PASSWORD", raising=False)
    argv = ["broker", "sync", "--service-passwords-from-env", "--dir", str(auth_broker.auth_dir)]
    argv += ["--pid-file", str(auth_broker.pid_file)]
    if auth_broker.owner:
        argv += ["--owner", auth_broker.owner]

    def sync() -> str:
        reloads = auth_broker.reloads()
        assert cli.main(argv) == 0
        wait_for(lambda: auth_broker.reloads() > reloads, what="the broker's reload")
        captured = capsys.readouterr()
        return captured.out + captured.err

    assert "service/ingest: issue" in sync()
    assert connack_of(auth_broker.url, "service/ingest", "ingest-secret-from-env") == 0
    assert connack_of(auth_broker.url, "service/simulator", "") == NOT_AUTHORIZED
    assert "service/ingest: unchanged" in sync()
    monkeypatch.setenv("INGEST_MQTT_PASSWORD", "changed-in-env")
    assert "service/ingest: rotate" in sync()
    assert connack_of(auth_broker.url, "service/ingest", "ingest-secret-from-env") == NOT_AUTHORIZED
    assert connack_of(auth_broker.url, "service/ingest", "changed-in-env") == 0
    entries = conn.execute(
        "SELECT action, detail->>'password_from', after::text, detail::text FROM audit_log "
        "WHERE resource = 'device_credential' ORDER BY id"
    ).fetchall()
    assert [(a, src) for a, src, _, _ in entries] == [
        ("issue", "environment"),
        ("rotate", "environment"),
    ]
    assert not any("secret" in f"{after} {detail}" for _, _, after, detail in entries)
