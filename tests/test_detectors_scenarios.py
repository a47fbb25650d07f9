"""The group detectors end to end: the simulator's shipped scenarios published through the
real broker to the real engine (with the default detectors, as `urbanwatch alerts run` wires
them), alerts read back from the database and compared with the scenario's ground truth."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from alerts.notify.notifier import Notifier
from alerts.notify.receiver import ReceiverState, Server
from simulators.backfill import backfill
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.scenario import load_scenario
from simulators.truth import ground_truth
from tests.alerts_helpers import publish_through_engine
from tests.test_alerts_notify import (
    ENV,
    SECRET,
    install_routes,
    logged_keys,
    route_text,
    run_until,
    settings_for,
)
from urbanwatch import registry

SEED = 1
GROUP_RULES = (
    "SL_CIRCUIT_SUPPLY_LOSS",
    "SL_DARK_SEGMENT",
    "WS_SUSPECTED_BURST",
    "WL_EVENT",
    "STORM_INCIDENT",
)
LOCAL = timedelta(hours=8)


def last_local(hour: int, minute: int, length: timedelta) -> datetime:
    """The latest past local hh:mm whose window of `length` has ended (UTC)."""
    now = datetime.now(UTC)
    start = (now + LOCAL).replace(hour=hour, minute=minute, second=0, microsecond=0) - LOCAL
    while start + length > now:
        start -= timedelta(days=1)
    return start


def ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


@pytest.fixture
def database_url(storage_database_url: str) -> str:
    """Both storages: docker-compose runs TimescaleDB, so the detectors must work there too."""
    return storage_database_url


def replay(
    conn: psycopg.Connection,
    urls: tuple[str, str],
    prefix: str,
    scenario: str | None,
    start: datetime,
    length: timedelta,
) -> dict[str, Any]:
    """Publish the small fleet's readings over [start, start + length) as fast as the broker
    takes them, through an engine with the default detectors; returns the ground truth."""
    database_url, mqtt_url = urls
    fleet = make_fleet(SEED, "small")
    if not conn.execute("SELECT count(*) FROM devices").fetchone()[0]:
        registry.import_rows(conn, registry_rows(fleet))
        conn.commit()
    begin, end = ms(start), ms(start + length)
    world = build_world(fleet, begin, end, load_scenario(scenario) if scenario else None, False)
    truth = ground_truth(fleet, world, begin, end, scenario)
    sim = Simulation(fleet, world, begin, stagger_s=60)
    publish_through_engine(
        database_url, mqtt_url, prefix, sim.advance(end - 1), client_id=f"detectors-{prefix}"
    )
    return truth


def group_alerts(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT id, rule_id, subject, severity, opened_at, detail FROM alerts "
        "WHERE rule_id = ANY(%s) ORDER BY id",
        (list(GROUP_RULES),),
    ).fetchall()


def children(conn: psycopg.Connection, parent: int) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT rule_id, subject, suppressed FROM alerts WHERE parent_id = %s ORDER BY id",
        (parent,),
    ).fetchall()


def test_circuit_outage_raises_one_circuit_alert_not_one_per_lamp(
    conn, database_url, mqtt_url, topic_prefix, tmp_path
) -> None:
    start = last_local(19, 50, timedelta(minutes=40))
    truth = replay(conn, (database_url, mqtt_url), topic_prefix, "circuit-outage", start,
                   timedelta(minutes=40))  # fmt: skip
    lamps = {f["device_id"] for f in truth["faults"] if f["type"] == "supply_loss"}
    assert len(lamps) == 14
    (circuit,) = [a for a in group_alerts(conn) if a[1] == "SL_CIRCUIT_SUPPLY_LOSS"]
    assert (circuit[2], circuit[3]) == ("CIR-0012", "alarm")
    under = children(conn, circuit[0])
    supply = {s for r, s, _ in under if r == "SL_SUPPLY_LOSS"}
    assert supply == lamps and all(suppressed for _, _, suppressed in under)
    lamp_alerts = conn.execute(
        "SELECT subject, suppressed, parent_id FROM alerts WHERE rule_id = 'SL_SUPPLY_LOSS'"
    ).fetchall()
    assert {s for s, _, _ in lamp_alerts} == lamps
    assert all(sup and parent == circuit[0] for _, sup, parent in lamp_alerts)
    # the lamps lose supply at 20:00 and report 0 V at once; SL_SUPPLY_LOSS holds 2 min, and
    # their next metering report (15 min) completes it: the third lamp's opens the circuit
    outage = datetime.fromisoformat(min(f["start"] for f in truth["faults"]))
    assert circuit[4] == outage  # opened_at: when the lamps lost supply
    # known at the lamps' next metering report (15 min): replayed faster than real time, a
    # reading completes the 2-min debounce before the engine's wall-clock timer would
    known = datetime.fromisoformat(circuit[5]["at"])
    assert timedelta(minutes=2) <= known - outage <= timedelta(minutes=15, seconds=5)
    others = [a[1] for a in group_alerts(conn) if a[1] != "SL_CIRCUIT_SUPPLY_LOSS"]
    assert set(others) <= {"SL_DARK_SEGMENT"}  # dark segments of the circuit's road
    for dark in (a for a in group_alerts(conn) if a[1] == "SL_DARK_SEGMENT"):
        assert ("SL_DARK_SEGMENT", dark[2], True) in under  # under the circuit, not notified
    # the notifier (alerts/notify) then sends the circuit alert and none of the lamps': the
    # replay is faster than the notifier, so lamps that opened before the circuit was
    # escalated are already suppressed here (live, the first two would have been sent)
    hooks = tmp_path / "hooks.jsonl"
    server = Server("127.0.0.1", 0, ReceiverState(SECRET, hooks, echo=False)).start()
    try:
        hook = {"type": "webhook", "url": server.url, "secret_env": "HOOK_SECRET"}
        install_routes(conn, route_text({"hook": hook}))
        conn.commit()
        notifier = Notifier(settings_for(database_url), env=ENV)
        run_until(notifier, lambda: len(logged_keys(hooks)) >= 1, what="the circuit's message")
        for _ in range(5):
            notifier.step()
    finally:
        server.stop()
    sent = [json.loads(line)["payload"]["alert"] for line in hooks.read_text().splitlines()]
    assert [(a["rule_id"], a["subject"]) for a in sent] == [("SL_CIRCUIT_SUPPLY_LOSS", "CIR-0012")]


def test_storm_raises_one_incident_over_the_flooding_episodes(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    start = last_local(17, 50, timedelta(hours=3))
    truth = replay(conn, (database_url, mqtt_url), topic_prefix, "storm", start,
                   timedelta(hours=3))  # fmt: skip
    groups = group_alerts(conn)
    (storm,) = [a for a in groups if a[1] == "STORM_INCIDENT"]
    assert {a[1] for a in groups} == {"STORM_INCIDENT", "WL_EVENT"}
    events = [a for a in groups if a[1] == "WL_EVENT"]
    flooded = {s.split("@")[0] for _, _, s, *_ in events}
    points = {p["point_id"]: p for p in truth["waterlog_points"]}
    assert flooded, "the storm floods the unremediated points"
    for device_id in flooded:  # WL-D-001 measures WLP-001
        assert points[f"WLP-{device_id[5:]}"]["remediation_status"] not in ("verified",)
    under = children(conn, storm[0])
    assert {(r, s) for r, s, _ in under} >= {("WL_EVENT", a[2]) for a in events}
    assert all(suppressed for *_, suppressed in under)
    wl_level = conn.execute(
        "SELECT count(*) FILTER (WHERE parent_id = %s AND suppressed), count(*) FROM alerts "
        "WHERE rule_id LIKE 'WL_LEVEL_%%'", (storm[0],)
    ).fetchone()  # fmt: skip
    assert wl_level[0] == wl_level[1] > 0  # every waterlogging tier alert under the incident
    assert storm[5]["events"] == len(events)
    rows = conn.execute(
        "SELECT device_id, max_depth_cm, rain_acc_event_mm, storm FROM wl_events ORDER BY 1"
    ).fetchall()
    assert {r[0] for r in rows} == flooded
    assert all(r[1] >= 15 and r[2] > 0 and r[3] == storm[2] for r in rows)
    storm_start = datetime.fromisoformat(truth["storms"][0]["start"])
    assert storm[4] >= storm_start - timedelta(minutes=5)


def test_burst_raises_a_suspected_burst_for_the_dma(
    conn, database_url, mqtt_url, topic_prefix
) -> None:
    start = last_local(2, 50, timedelta(hours=1, minutes=10))
    fleet = make_fleet(SEED, "small")
    registry.import_rows(conn, registry_rows(fleet))
    conn.commit()
    meters = [d for d in fleet.devices if d.kind == "watermeter"]
    history_start = ms(start - timedelta(days=8))
    world = build_world(fleet, history_start, ms(start), None, False)
    with psycopg.connect(database_url, autocommit=True) as auto:
        sim = Simulation(fleet, world, history_start, devices=meters)
        backfill(auto, sim, history_start, ms(start), progress=False)
    truth = replay(conn, (database_url, mqtt_url), topic_prefix, "burst", start,
                   timedelta(hours=1, minutes=10))  # fmt: skip
    (burst,) = [a for a in group_alerts(conn) if a[1] == "WS_SUSPECTED_BURST"]
    assert (burst[2], burst[3]) == (truth["bursts"][0]["dma_id"], "critical")
    assert {a[1] for a in group_alerts(conn)} == {"WS_SUSPECTED_BURST"}
    under = children(conn, burst[0])
    assert {r for r, _, _ in under} == {"WS_FLOW_ANOMALY", "WS_PRESSURE_DROP"}
    assert all(s.startswith("WM-DMA01-") for _, s, _ in under)
    # debounce: two consecutive 15-min inlet samples over the profile (the first one is
    # partly before the burst), so the burst is known by the third sample after it began
    began = datetime.fromisoformat(truth["bursts"][0]["start"])
    known = datetime.fromisoformat(burst[5]["at"])
    assert timedelta(0) <= known - began <= timedelta(minutes=45, seconds=5)


@pytest.mark.parametrize(("hour", "minute"), [(20, 0), (2, 30)])
def test_no_group_alert_without_a_fault(
    conn, database_url, mqtt_url, topic_prefix, hour, minute
) -> None:
    start = last_local(hour, minute, timedelta(hours=1))
    truth = replay(conn, (database_url, mqtt_url), topic_prefix, None, start, timedelta(hours=1))
    assert truth["faults"] == [] and truth["storms"] == [] and truth["bursts"] == []
    assert group_alerts(conn) == []
