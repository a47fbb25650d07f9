"""亮灯率 from a simulated fleet: the lamps imported into the facilities ledger as city staff
would (CSV through the ledger framework), one night of controller readings backfilled, and
the lamps the KPI counts dark at 21:00 and 01:00 are exactly those the ground truth had out
(lamp_out or supply_loss), the lamps it leaves out exactly ones whose controllers were silent."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

from simulators.backfill import backfill
from simulators.engine import Simulation, build_world
from simulators.fleet import make_fleet, registry_rows
from simulators.scenario import load_scenario
from simulators.sun import LOCAL, to_ms
from simulators.world import Fault
from urbanwatch import audit, registry
from urbanwatch.kpi import lighting_formulas as lighting
from urbanwatch.kpi.base import Scope, load_all
from urbanwatch.ledgers import files, store
from urbanwatch.ledgers.base import get_ledger
from urbanwatch.queries import lighting_ledger as q

START = to_ms(datetime(2024, 7, 1, 12, 0, tzinfo=LOCAL))
END = to_ms(datetime(2024, 7, 2, 6, 0, tzinfo=LOCAL))
AS_OF = date(2024, 7, 2)  # the night of 1–2 July: 21:00 on the 1st, 01:00 on the 2nd
SCENARIO = """name: kpi-night
description: background faults, a circuit dark over the 21:00 sample and another over 01:00
events:
  - {type: supply_loss, at: "20:30", circuit: CIR-0003, duration: 1h}
  - {type: supply_loss, at: "00:30", circuit: CIR-0005, duration: 1h}
  - {type: lamp_out, at: "14:00", device: SL-000007}
"""
DARK = ("lamp_out", "supply_loss")


def _active(fault: Fault, at_ms: int) -> bool:
    return fault.start_ms <= at_ms and (fault.end_ms is None or at_ms < fault.end_ms)


def test_lighting_rate_counts_the_truths_dark_lamps(conn, tmp_path):
    fleet = make_fleet(1, "small")
    registry.import_rows(conn, registry_rows(fleet))
    lamps = [(i, r) for i, r in registry_rows(fleet) if r["kind"] == "streetlight"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "设施编号",
            "设施类型",
            "所属区县",
            "光源类型",
            "额定功率(W)",
            "单灯控制器编号",
            "回路编号",
        ]
    )
    writer.writerows(
        [i, "灯具", r["district"], r["lamp_type"], r["rated_power_w"], i, r["circuit_id"]]
        for i, r in lamps
    )
    spec = get_ledger("lighting_facilities")
    actor = audit.Actor("user:tester", "operator", "test")
    report = store.import_rows(conn, spec, files.read_csv(spec, out.getvalue().encode()), actor)
    assert report.errors == [] and report.created == len(lamps) > 50

    path = tmp_path / "night.yaml"
    path.write_text(SCENARIO, encoding="utf-8")
    world = build_world(fleet, START, END, load_scenario(str(path)))
    backfill(conn, Simulation(fleet, world, START), START, END, progress=False)

    spec_kpi = load_all()["lighting.lighting_rate"]
    config = dict(spec_kpi.defaults)
    facilities = q.facilities(conn, None)
    dark_seen = 0
    for at in lighting.night_samples(AS_OF, config):
        at_ms = int(at.timestamp() * 1000)
        faults = [f for f in world.all_faults() if _active(f, at_ms)]
        dark = {f.device_id for f in faults if f.type in DARK}
        silent = {f.device_id for f in faults if f.type == "comm_loss"}
        samples = q.samples(
            conn, [f.device_id or "" for f in facilities], at, timedelta(minutes=70)
        )
        v = lighting.lighting_rate(facilities, samples, at, config)
        excluded = {e.split(" ")[0] for e in v.exclusions}
        assert excluded <= silent
        counted_dark = dark - excluded
        assert v.denominator == len(lamps) - len(excluded)
        assert v.numerator == v.denominator - len(counted_dark)
        dark_seen += len(counted_dark)
    assert dark_seen >= 10  # both circuits and the lamp were out at their samples

    night = spec_kpi.compute(conn, AS_OF, Scope("city", None), config)
    assert night.value is not None and 80 < night.value < 100
