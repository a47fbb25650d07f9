"""Live runs through the real broker into the real ingest worker."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.live import plan_clock, run_live, wall_ms
from simulators.publisher import Publisher
from tests.conftest import wait_for
from tests.mqtt_helpers import make_settings, running_worker
from urbanwatch import cli, registry
from urbanwatch.kinds import KINDS


def stored(conn) -> int:
    return sum(conn.execute(f"SELECT count(*) FROM {k}_readings").fetchone()[0] for k in KINDS)


def expected_count(seed: int, start_ms: int, end_ms: int) -> int:
    """What a twin simulation publishes over the same window."""
    fleet = make_fleet(seed, "small")
    world = build_world(fleet, start_ms, end_ms, background=False)
    return sum(1 for _ in Simulation(fleet, world, start_ms, stagger_s=2).advance(end_ms))


def test_a_live_run_lands_every_reading_in_ingest(conn, database_url, mqtt_url, topic_prefix):
    fleet = make_fleet(5, "small")
    registry.import_rows(conn, registry_rows(fleet))
    settings = make_settings(database_url, mqtt_url, topic_prefix)
    clock = plan_clock(speed=1, duration_s=3, start_ms=None, now_ms=wall_ms())
    world = build_world(fleet, clock.start_ms, clock.start_ms + 3000, background=False)
    sim = Simulation(fleet, world, clock.start_ms, stagger_s=2)
    publisher = Publisher(mqtt_url, topic_prefix, client_id=f"{topic_prefix}-sim")
    with running_worker(settings):
        publisher.connect()
        try:
            published = run_live(sim, publisher, clock, duration_s=3, progress=False)
        finally:
            publisher.close()
        assert publisher.acked == publisher.messages == published
        assert published == expected_count(5, clock.start_ms, clock.start_ms + 3000)
        assert published >= len(fleet.devices)  # every device reported within the stagger
        wait_for(lambda: stored(conn) == published, timeout=20, what=f"{published} readings")
    assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0


def test_the_run_command_batches_through_gateways(
    conn, database_url, mqtt_url, topic_prefix, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("MQTT_URL", mqtt_url)
    monkeypatch.setenv("MQTT_TOPIC_PREFIX", topic_prefix)
    truth = tmp_path / "truth.json"
    settings = make_settings(database_url, mqtt_url, topic_prefix)
    argv = [
        "simulate",
        "run",
        "--seed",
        "6",
        "--duration",
        "3",
        "--stagger",
        "2",
        "--batch",
        "50",
        "--no-background",
        "-q",
        "--truth",
        str(truth),
    ]
    with running_worker(settings):
        assert cli.main(argv) == 0
        published = int(re.search(r"published (\d+) readings", capsys.readouterr().out).group(1))
        wait_for(lambda: stored(conn) == published, timeout=20, what=f"{published} readings")
    window = json.loads(truth.read_text("utf-8"))["window"]
    start = int(datetime.fromisoformat(window["start"]).timestamp() * 1000)
    assert published == expected_count(6, start, start + 3000)
    assert conn.execute("SELECT count(*) FROM dead_letters").fetchone()[0] == 0


@pytest.mark.parametrize("suffix", [".csv", ".geojson"])
def test_the_fleet_command_writes_and_imports(conn, database_url, tmp_path, monkeypatch, suffix):
    monkeypatch.setenv("DATABASE_URL", database_url)
    out, truth = tmp_path / f"fleet{suffix}", tmp_path / "truth.json"
    argv = [
        "simulate",
        "fleet",
        "--seed",
        "3",
        "--scale",
        "300",
        "-q",
        "--out",
        str(out),
        "--truth",
        str(truth),
    ]
    assert cli.main(argv) == 0
    devices = conn.execute("SELECT count(*) FROM devices").fetchone()[0]
    assert devices == len(make_fleet(3, "300").devices)
    assert json.loads(truth.read_text("utf-8"))["dmas"]
