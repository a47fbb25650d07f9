"""Backfill: history lands by COPY, with rollups, and can be repeated; the ground truth file."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from simulators.backfill import backfill
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.scenario import load_scenario
from simulators.sun import LOCAL, to_ms
from simulators.truth import ground_truth, write_truth
from urbanwatch import registry
from urbanwatch.kinds import KINDS

START = to_ms(datetime(2024, 7, 1, 0, 0, tzinfo=LOCAL))
END = START + 2 * 86_400_000


def test_backfill_writes_every_simulated_reading_and_rolls_up(conn):
    fleet = make_fleet(1, "small")
    registry.import_rows(conn, registry_rows(fleet))
    world = build_world(fleet, START, END, load_scenario("storm"))
    expected: dict[str, int] = {}
    twin = make_fleet(1, "small")  # simulations change device state: count on a twin fleet
    twin_world = build_world(twin, START, END, load_scenario("storm"))
    for device, _ in Simulation(twin, twin_world, START).advance(END - 1):
        expected[device.kind] = expected.get(device.kind, 0) + 1
    counts = backfill(conn, Simulation(fleet, world, START), START, END, progress=False)
    assert counts == expected
    for kind in KINDS:
        stored = conn.execute(f"SELECT count(*) FROM {kind}_readings").fetchone()[0]
        assert stored == expected[kind]
    hourly = conn.execute("SELECT count(DISTINCT bucket) FROM waterlog_hourly").fetchone()[0]
    assert hourly == 48
    peak = conn.execute("SELECT max(depth_cm) FROM waterlog_readings").fetchone()[0]
    assert peak > 15


def test_backfill_can_be_repeated_over_the_same_window(conn):
    fleet = make_fleet(2, "small")
    registry.import_rows(conn, registry_rows(fleet))
    first = backfill(
        conn, Simulation(fleet, build_world(fleet, START, END), START), START, END, progress=False
    )
    fleet = make_fleet(2, "small")  # a fresh fleet: simulations change device state
    again = backfill(
        conn, Simulation(fleet, build_world(fleet, START, END), START), START, END, progress=False
    )
    assert first == again
    stored = sum(conn.execute(f"SELECT count(*) FROM {k}_readings").fetchone()[0] for k in KINDS)
    assert stored == sum(first.values())


def test_ground_truth_names_faults_storms_bursts_and_leakage(tmp_path):
    fleet = make_fleet(1, "small")
    world = build_world(fleet, START, END, load_scenario("burst"))
    path = tmp_path / "truth.json"
    write_truth(ground_truth(fleet, world, START, END, "burst"), path)
    doc = json.loads(path.read_text("utf-8"))
    assert doc["seed"] == 1 and doc["scenario"] == "burst"
    assert doc["window"]["start"] == datetime.fromtimestamp(START / 1000, UTC).isoformat().replace(
        "+00:00", "Z"
    )
    assert doc["bursts"] == [
        {
            "dma_id": "DMA-01",
            "start": "2024-06-30T19:00:00Z",
            "end": "2024-06-30T23:00:00Z",
            "flow_m3_h": 30.0,
            "pressure_drop_mpa": 0.08,
            "source": "scenario",
        }
    ]
    assert [d["dma_id"] for d in doc["dmas"]] == [d.dma_id for d in fleet.dmas]
    for entry, dma in zip(doc["dmas"], fleet.dmas, strict=True):
        assert entry["leakage_m3_h"] == dma.leakage_m3_h
        share = dma.leakage_m3_h / (dma.consumption_m3_h + dma.leakage_m3_h) * 100
        assert abs(entry["leakage_pct_of_inflow"] - share) < 1e-3
    assert {p["name"] for p in doc["waterlog_points"]} >= {"人民公园", "同乐花园"}


def _digest(conn) -> dict[str, tuple[int, str]]:
    """Row count and an order-independent checksum of every readings table."""
    out = {}
    for kind in KINDS:
        out[kind] = conn.execute(
            f"SELECT count(*), md5(string_agg(r::text, '|' ORDER BY r.device_id, r.ts)) "
            f"FROM {kind}_readings r"
        ).fetchone()
    return out


def test_parallel_backfill_writes_the_same_rows_as_one_process(conn, database_url):
    from simulators.backfill import backfill_parallel

    scenario = load_scenario("burst")
    fleet = make_fleet(3, "small")
    registry.import_rows(conn, registry_rows(fleet))
    backfill(
        conn,
        Simulation(fleet, build_world(fleet, START, END, scenario), START),
        START,
        END,
        progress=False,
    )
    single = _digest(conn)
    fleet = make_fleet(3, "small")
    counts = backfill_parallel(
        database_url,
        fleet,
        build_world(fleet, START, END, scenario),
        START,
        END,
        jobs=3,
        progress=False,
    )
    assert _digest(conn) == single
    assert counts == {kind: single[kind][0] for kind in KINDS if single[kind][0]}
