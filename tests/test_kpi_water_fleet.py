"""Water KPIs from a simulated fleet: the DMA ledger imported as city staff would (CSV through
the ledger framework), two days of meter history backfilled with the simulator's ground truth,
and each DMA's computed leakage (R_WL) within 0.5 percentage points of the true leakage."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime

import psycopg
import pytest

from simulators.backfill import backfill
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.sun import LOCAL, to_ms
from simulators.truth import dma_truth
from urbanwatch import audit, registry
from urbanwatch.kpi.base import Scope, load_all
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.migrate import migrate

ACTOR = audit.Actor("user:tester", "operator", "test")
# The KPI's period is the year to 2 January: two whole days of history, with an hour on either
# side so that every meter, whatever its reporting phase, has readings across both ends.
START = to_ms(datetime(2024, 1, 1, 0, 0, tzinfo=LOCAL))
END = START + 2 * 86_400_000
AS_OF = date(2024, 1, 2)
HOUR = 3_600_000
TOLERANCE_PP = 0.5


def _csv(header: list[str], rows: list[list[object]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _import(conn, name: str, data: bytes) -> None:
    spec = get_ledger(name)
    report = store.import_rows(conn, spec, files.read_csv(spec, data), ACTOR)
    assert report.errors == [] and report.created > 0


def _load(conn) -> dict[str, dict]:
    """The small fleet's DMA ledger imported and two days of its history backfilled."""
    fleet = make_fleet(1, "small")
    registry.import_rows(conn, registry_rows(fleet))
    truth = {d["dma_id"]: d for d in dma_truth(fleet)}
    _import(conn, "water_dmas", _csv(
        ["计量区编号", "所属区县", "DN75及以上管长(km)"],
        [[d["dma_id"], d["district"], d["mains_km"]] for d in truth.values()],
    ))  # fmt: skip
    meters = [
        [device_id, row["dma_id"], row["meter_role"]]
        for device_id, row in registry_rows(fleet)
        if row["kind"] == "watermeter"
    ]
    _import(conn, "water_meters", _csv(["水表编号", "计量区编号", "水表类别"], meters))
    # No background faults: a burst is leakage the ground truth's constant rate leaves out.
    world = build_world(fleet, START - HOUR, END + HOUR, background=False)
    backfill(conn, Simulation(fleet, world, START - HOUR), START - HOUR, END + HOUR, progress=False)
    return truth


def test_each_dma_leakage_within_half_a_point_of_the_truth(conn):
    truth = _load(conn)
    spec = load_all()["water.loss_rate_R_WL"]
    items = spec.items(conn, AS_OF, Scope("city", None), {})
    assert len(items) == len(truth) >= 2
    for item in items:
        expected = truth[item["dma_id"]]["leakage_pct_of_inflow"]
        assert item["sources"]["supply"] == "meters" and item["sources"]["billed"] == "meters"
        assert item["R_WL"] == pytest.approx(expected, abs=TOLERANCE_PP), item["dma_id"]

    # The city figure is the supply-weighted mean of the DMAs' (volumes summed).
    city = spec.compute(conn, AS_OF, Scope("city", None), {})
    supply = sum(i["supply_m3"] for i in items)
    weighted = sum(i["R_WL"] * i["supply_m3"] for i in items) / supply
    assert city.value == pytest.approx(weighted)
    # Pressure points report every 15 min; all of a quiet network's are in the band.
    pressure = load_all()["water.pressure_pass_rate"]
    v = pressure.compute(conn, AS_OF, Scope("city", None), dict(pressure.defaults))
    assert v.denominator and v.denominator > 0 and v.value is not None and v.value > 90


def _answers(url: str) -> list:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)
        _load(conn)
        keys = [k for k in load_all() if k.startswith("water.")]
        city = Scope("city", None)
        values = [
            load_all()[k].compute(conn, AS_OF, city, dict(load_all()[k].defaults)) for k in keys
        ]
        items = load_all()["water.loss_rate_R_BL"].items(conn, AS_OF, city, {})
        return [values, items]


@pytest.mark.timescale
def test_timescale_and_plain_give_the_same_water_kpis(empty_database, timescale_empty_database):
    assert _answers(empty_database) == _answers(timescale_empty_database)
