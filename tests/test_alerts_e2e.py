"""Simulator -> broker -> engine -> alerts, checked against the simulator's ground truth:
every injected per-device fault raises its alert, and nothing alerts where the truth has
no fault (scripted scenarios, no background faults)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.alerts_helpers import engine_settings, running_engine
from tests.conftest import wait_for
from urbanwatch import cli

SEED = "42"
SPEED = 120
# Fault type -> the rules that must fire for the device (any one of them).
EXPECTED = {
    "cover_open": {"MH_OPEN"},
    "cover_flip": {"MH_FLIP"},
    "gas": {"MH_GAS_L1", "MH_GAS_L2"},
    "lamp_out": {"SL_LAMP_OUT"},
    "supply_loss": {"SL_SUPPLY_LOSS"},
    "day_burn": {"SL_DAY_BURN"},
}
NIGHT = """name: alerts-night
description: faults for the alert engine's end-to-end test, at night
background_faults: false
params: {water_inlet_interval_s: 60, water_pressure_interval_s: 60}
events:
  - {type: storm, at: "+0s", duration: 20m, peak_mm_h: 300, shape: uniform}
  - {type: cover_open, at: "+2m", device: MH-000012, duration: 20m}
  - {type: cover_flip, at: "+3m", device: MH-000020, duration: 30m}
  - {type: gas, at: "+4m", device: MH-000030, duration: 40m}
  - {type: lamp_out, at: "+5m", device: SL-000005, duration: 40m}
  - {type: supply_loss, at: "+5m", circuit: CIR-0003, duration: 30m}
  - {type: burst, at: "+10m", dma: DMA-02, duration: 40m, flow_m3_h: 25}
"""
DAY = """name: alerts-day
description: a day-burning circuit for the alert engine's end-to-end test
background_faults: false
events:
  - {type: day_burn, at: "+1m", circuit: CIR-0006, duration: 50m}
"""


def last_local(hour: int) -> datetime:
    """The latest hour:00 in Asia/Shanghai that is at least 2 h ago (a replay fits)."""
    local = datetime.now(UTC) + timedelta(hours=8) - timedelta(hours=2)
    at = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if at > local:
        at -= timedelta(days=1)
    return at - timedelta(hours=8)


def simulate(
    tmp_path: Path, name: str, text: str, start: datetime, duration_s: int
) -> dict[str, Any]:
    scenario, truth = tmp_path / f"{name}.yaml", tmp_path / f"truth-{name}.json"
    scenario.write_text(text)
    argv = [
        "simulate",
        "run",
        "--seed",
        SEED,
        "--scale",
        "small",
        "--scenario",
        str(scenario),
        "--no-background",
        "--start",
        start.isoformat(),
        "--speed",
        str(SPEED),
        "--duration",
        str(duration_s),
        "-q",
        "--truth",
        str(truth),
    ]
    assert cli.main(argv) == 0
    return json.loads(truth.read_text())


def alert_rows(conn: psycopg.Connection) -> set[tuple[str, str]]:
    return {(r, s) for r, s in conn.execute("SELECT rule_id, subject FROM alerts")}


def expected_pairs(truth: dict[str, Any]) -> list[tuple[str, set[str]]]:
    return [(f["device_id"], EXPECTED[f["type"]]) for f in truth["faults"] if f["type"] in EXPECTED]


@pytest.fixture
def database_url(storage_database_url: str) -> str:
    """Both storages: docker-compose runs TimescaleDB, so the engine must work there too."""
    return storage_database_url


@pytest.fixture
def sim_env(monkeypatch, database_url, mqtt_url, topic_prefix):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MQTT_URL", mqtt_url)
    monkeypatch.setenv("MQTT_TOPIC_PREFIX", topic_prefix)
    return engine_settings(database_url, mqtt_url, topic_prefix)


def test_night_faults_match_the_ground_truth(sim_env, conn, tmp_path) -> None:
    start = last_local(22)
    # A week of history first: the water rules compare flow and pressure with it.
    assert (
        cli.main(
            [
                "simulate",
                "backfill",
                "--seed",
                SEED,
                "--scale",
                "small",
                "--days",
                "8",
                "--end",
                start.isoformat(),
                "--jobs",
                "1",
                "-q",
            ]
        )
        == 0
    )
    with running_engine(sim_env) as engine:
        truth = simulate(tmp_path, "night", NIGHT, start, 30)
        wait_for(lambda: engine.inbox.empty(), timeout=30, what="the engine to drain its inbox")
        wanted = expected_pairs(truth)
        wait_for(
            lambda: all(rules & {r for r, s in alert_rows(conn) if s == d} for d, rules in wanted),
            timeout=30,
            what=f"alerts for {wanted}",
        )
    got = alert_rows(conn)
    kinds = dict(conn.execute("SELECT device_id, kind FROM devices").fetchall())
    dma = {
        d
        for (d,) in conn.execute("SELECT device_id FROM devices WHERE attrs->>'dma_id' = 'DMA-02'")
    }
    assert {s for r, s in got if r == "WS_FLOW_ANOMALY"} & dma, got
    assert {s for r, s in got if r == "WS_PRESSURE_DROP"} & dma, got
    flooded = {s for r, s in got if r == "WL_LEVEL_L1"}
    assert flooded and all(kinds[s] == "waterlog" for s in flooded)
    # Nothing where the truth has no fault: faulted devices, the storm's waterlogging and
    # well levels, and the burst DMA's meters explain every alert. Offline alerts are left
    # out: the backfilled history ends hours before the wall clock (received_at = ts), so
    # devices that did not report again during the replayed hour are rightly offline.
    faulted = {d for d, _ in wanted}
    offline = ("MH_OFFLINE", "WL_OFFLINE", "SL_COMM_LOSS", "WS_METER_OFFLINE")
    unexplained = {
        (r, s)
        for r, s in got
        if s not in faulted
        and s not in dma
        and kinds.get(s) != "waterlog"
        and r not in ("MH_WATER_HIGH", "MH_OVERFLOW", *offline)
    }
    assert unexplained == set()


def test_day_burn_matches_the_ground_truth(sim_env, conn, tmp_path) -> None:
    with running_engine(sim_env) as engine:
        truth = simulate(tmp_path, "day", DAY, last_local(11), 30)
        wait_for(lambda: engine.inbox.empty(), timeout=30, what="the engine to drain its inbox")
        wanted = expected_pairs(truth)
        assert len(wanted) >= 3
        wait_for(
            lambda: all(rules & {r for r, s in alert_rows(conn) if s == d} for d, rules in wanted),
            timeout=30,
            what=f"alerts for {wanted}",
        )
    assert alert_rows(conn) == {("SL_DAY_BURN", d) for d, _ in wanted}
