"""Property: whatever the device ids (any the registry accepts, `:` and `.` included) and
whichever filter selects them, `urbanwatch devices credentials issue --kind K --csv F` writes
valid password and ACL lines for exactly the selected devices, and the reloaded broker
accepts exactly those accounts, each on its own topic only."""

from __future__ import annotations

import csv
import uuid

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import wait_for
from tests.mqtt_broker_auth import ACCEPTED, NOT_AUTHORIZED, Client, connack_of
from tests.mqtt_helpers import register
from urbanwatch import cli
from urbanwatch.credentials.hashing import verify_password
from urbanwatch.kinds import KINDS
from urbanwatch.models import DEVICE_ID_PATTERN

FLEETS = st.dictionaries(
    st.from_regex(DEVICE_ID_PATTERN, fullmatch=True),
    st.sampled_from(sorted(KINDS)),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fleet=FLEETS, kind=st.sampled_from(sorted(KINDS)))
def test_issue_writes_valid_files_and_the_broker_accepts_exactly_the_selection(
    conn, database_url, auth_broker, topic_prefix, tmp_path, monkeypatch, fleet, kind
):
    conn.execute("DELETE FROM device_credentials")
    conn.execute("DELETE FROM devices")
    conn.execute("DELETE FROM gateways")
    register(conn, sorted(fleet.items()), gateway=None)
    for name, value in {
        "DATABASE_URL": database_url,
        "MQTT_TOPIC_PREFIX": topic_prefix,
        **auth_broker.env(),
    }.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / f"{uuid.uuid4().hex}.csv"
    reloads = auth_broker.reloads()
    argv = ["devices", "credentials", "issue", "-q", "--kind", kind, "--service", "ingest"]
    assert cli.main([*argv, "--csv", str(out)]) == 0
    wait_for(lambda: auth_broker.reloads() > reloads, what="the broker's reload")

    with out.open(newline="") as f:
        issued = {row["username"]: row for row in csv.DictReader(f)}
    selected = {d for d, k in fleet.items() if k == kind}
    assert {r["id"] for r in issued.values() if r["principal"] == "device"} == selected

    # Password file: one line per account, the username free of ':' and mapping back to
    # its id, the hash matching the password handed out.
    lines = (auth_broker.auth_dir / "passwd").read_text().splitlines()
    assert len(lines) == len(issued)
    for line in lines:
        username, hashed = line.split(":", 1)
        assert username in issued and ":" not in username and hashed.startswith("$7$")
        assert verify_password(issued[username]["password"], hashed)
        level, _, rest = username.partition("/")
        assert rest.replace("%3A", ":") == issued[username]["id"]
        assert level == (kind if issued[username]["principal"] == "device" else "service")
    acl = (auth_broker.auth_dir / "acl").read_text()
    assert f"pattern write {topic_prefix}/%u/telemetry\n" in acl
    for device in selected:  # the pattern serves an id without ':'; the others have a block
        own_rules = f"topic write {topic_prefix}/{kind}/{device}/telemetry\n" in acl
        assert own_rules == (":" in device)

    url = auth_broker.url
    ingest = issued.pop("service/ingest")
    with Client(url, "service/ingest", ingest["password"]) as watcher:
        assert watcher.connect() == 0
        assert watcher.subscribe(f"{topic_prefix}/#") == 1
        for username, row in issued.items():
            with Client(url, username, row["password"]) as device:
                assert device.connect() == 0
                own = f"{topic_prefix}/{kind}/{row['id']}/telemetry"
                assert device.publish(own, b"{}") in ACCEPTED
                other_kind = next(k for k in sorted(KINDS) if k != kind)
                wrong = f"{topic_prefix}/{other_kind}/{row['id']}/telemetry"  # its id, not its kind
                assert device.publish(wrong, b"{}") == NOT_AUTHORIZED
                gateway = f"{topic_prefix}/gateway/{row['id']}/telemetry"
                assert device.publish(gateway, b"{}") == NOT_AUTHORIZED
                others = [d for d in fleet if d != row["id"]]
                if others:  # the same kind's topic of any other device is refused
                    assert device.publish(
                        f"{topic_prefix}/{kind}/{others[0]}/telemetry", b"{}"
                    ) == (NOT_AUTHORIZED)
            assert connack_of(url, username, row["password"] + "x") == NOT_AUTHORIZED
        wait_for(lambda: len(watcher.received) == len(issued), what="each device's message")
        expected = sorted(f"{topic_prefix}/{kind}/{r['id']}/telemetry" for r in issued.values())
        assert sorted(t for t, _ in watcher.received) == expected
    for device in set(fleet) - selected:  # registered, but not selected: no account
        username = f"{fleet[device]}/" + device.replace(":", "%3A")
        assert connack_of(url, username, "anything") == NOT_AUTHORIZED
