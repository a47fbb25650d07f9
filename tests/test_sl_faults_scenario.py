"""The simulator's `lamp-faults` scenario through the real broker and the real alert engine
(shipped rules, default detectors): the stuck relays and the driver faults it injects raise
SL_RELAY_FAIL, SL_DRIVER_FAULT and SL_DRIVER_DERATING on exactly the lamps of its ground
truth, and the alerts resolve once the faults end."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.scenario import load_scenario
from simulators.truth import ground_truth
from tests.alerts_helpers import publish_through_engine
from tests.test_detectors_scenarios import last_local, ms
from urbanwatch import registry

SEED = 1
NEW_RULES = ("SL_RELAY_FAIL", "SL_DRIVER_FAULT", "SL_DRIVER_DERATING")
RAISES = {  # fault type -> what it raises on its lamp (domain.md §4.3)
    "relay_stuck_open": {"SL_RELAY_FAIL", "SL_LAMP_OUT"},
    "driver_fault": {"SL_DRIVER_FAULT", "SL_LAMP_OUT"},
    "driver_derating": {"SL_DRIVER_DERATING", "SL_POWER_LOW"},
    "relay_stuck_closed": {"SL_RELAY_FAIL", "SL_DAY_BURN"},
}


def replay(
    conn: psycopg.Connection, database_url: str, mqtt_url: str, start: datetime, hours: float
) -> dict[str, Any]:
    """The small fleet's lamps over [start, start + hours) with the scenario, published as
    fast as the broker takes them through an engine; returns the ground truth."""
    prefix = f"slfaults-{uuid.uuid4().hex[:10]}"
    fleet = make_fleet(SEED, "small")
    registry.import_rows(conn, registry_rows(fleet))
    conn.commit()
    begin, end = ms(start), ms(start + timedelta(hours=hours))
    world = build_world(fleet, begin, end, load_scenario("lamp-faults"), False)
    lamps = [d for d in fleet.devices if d.kind == "streetlight"]
    sim = Simulation(fleet, world, begin, devices=lamps, stagger_s=60)
    publish_through_engine(
        database_url, mqtt_url, prefix, sim.advance(end - 1), client_id=f"{prefix}-sim"
    )
    return ground_truth(fleet, world, begin, end, "lamp-faults")


def lamp_alerts(conn: psycopg.Connection) -> dict[str, dict[str, str]]:
    """subject -> {rule_id: status} of every per-lamp alert."""
    out: dict[str, dict[str, str]] = {}
    for rule_id, subject, status in conn.execute(
        "SELECT rule_id, subject, status FROM alerts WHERE rule_id LIKE 'SL\\_%' "
        "AND rule_id NOT IN ('SL_CIRCUIT_SUPPLY_LOSS', 'SL_DARK_SEGMENT')"
    ):
        out.setdefault(subject, {})[rule_id] = status
    return out


@pytest.mark.parametrize(
    ("when", "hour", "faults"),
    [
        ("night", 20, {"relay_stuck_open", "driver_fault", "driver_derating"}),
        ("day", 12, {"relay_stuck_closed"}),
    ],
)
def test_lamp_faults_raise_their_alerts_on_the_right_lamps(
    conn, database_url, mqtt_url, when: str, hour: int, faults: set[str]
) -> None:
    hours = 1.0 if when == "night" else 2.0  # by day lamps report hourly: 2 reports to clear
    start = last_local(hour, 0, timedelta(hours=hours))
    truth = replay(conn, database_url, mqtt_url, start, hours)
    injected = {f["device_id"]: f["type"] for f in truth["faults"]}
    assert set(injected.values()) == faults  # `only: day/night` kept the other half out
    alerts = lamp_alerts(conn)
    for device_id, fault in injected.items():
        assert set(alerts.get(device_id, {})) == RAISES[fault], (device_id, fault)
    raised = {s for s, rules in alerts.items() if set(rules) & set(NEW_RULES)}
    assert raised == set(injected)  # none on the other 199 lamps
    # the faults last 30 min: the relay and driver alerts resolve after 2 clean reports
    for device_id in injected:
        for rule_id in set(alerts[device_id]) & set(NEW_RULES):
            assert alerts[device_id][rule_id] == "resolved", (device_id, rule_id)
    opened = conn.execute(
        "SELECT rule_id, subject, opened_at FROM alerts WHERE rule_id = ANY(%s)", (list(NEW_RULES),)
    ).fetchall()
    starts = {f["device_id"]: datetime.fromisoformat(f["start"]) for f in truth["faults"]}
    for rule_id, subject, opened_at in opened:
        # immediate (driver) or 2 reports (relay) from the fault's first report, at its start
        assert opened_at == starts[subject], (rule_id, subject)
