"""Fleet generation: deterministic for a seed, realistic proportions, importable as is."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from simulators.fleet import SCALES, fleet_size, make_fleet, registry_rows, write_registry
from simulators.geography import DISTRICT_CLASS
from urbanwatch import registry
from urbanwatch.models import DeviceCreate


def _rows(seed: int, scale: str) -> list[dict]:
    return [d.row() for d in make_fleet(seed, scale).devices]


def test_same_seed_same_fleet_and_another_seed_another():
    assert _rows(7, "small") == _rows(7, "small")
    assert _rows(7, "small") != _rows(8, "small")


@pytest.mark.parametrize(
    ("scale", "kinds"),
    [
        ("small", {"manhole": 150, "streetlight": 200, "waterlog": 16}),
        ("city", {"manhole": 30000, "streetlight": 40000, "waterlog": 52}),
    ],
)
def test_scales_have_the_documented_counts(scale, kinds):
    counts = Counter(d.kind for d in make_fleet(1, scale).devices)
    assert {k: counts[k] for k in kinds} == kinds
    size = SCALES[scale]
    assert size.dmas * (3 + size.customers_per_dma + 1) <= counts["watermeter"]
    assert counts["watermeter"] <= size.dmas * (3 + size.customers_per_dma + 2)


@pytest.mark.parametrize("n", [500, 5000, 20000])
def test_a_device_count_gives_about_that_many_devices(n):
    fleet = make_fleet(3, str(n))
    assert abs(len(fleet.devices) - n) <= n * 0.03
    assert {d.kind for d in fleet.devices} == {"manhole", "streetlight", "waterlog", "watermeter"}


def test_bad_scales_are_refused():
    with pytest.raises(ValueError, match="scale must be"):
        fleet_size("huge")
    with pytest.raises(ValueError, match="at least 50"):
        fleet_size("10")


def test_every_row_validates_against_the_registry_models():
    for _, row in registry_rows(make_fleet(2, "small")):
        top = {
            k: row[k]
            for k in ("device_id", "kind", "district", "lat", "lon", "status", "installed_at")
        }
        attrs = {k: v for k, v in row.items() if k not in top}
        DeviceCreate.model_validate({**top, "attrs": attrs})


def test_the_ledger_and_assets_carry_what_the_kpis_need():
    fleet = make_fleet(1, "city")
    names = [p.name for p in fleet.points]
    assert "人民公园" in names and "同乐花园" in names
    assert len(set(names)) == len(names)
    assert {p.remediation_status for p in fleet.points} == {
        "pending",
        "in_progress",
        "remediated",
        "verified",
    }
    covers = [d for d in fleet.devices if d.kind == "manhole"]
    defective = sum(1 for c in covers if "defect" in c.attrs)
    without_net = sum(
        1 for c in covers if c.attrs["anti_fall_required"] and not c.attrs["safety_net"]
    )
    assert 0.04 < defective / len(covers) < 0.08
    assert without_net > 0
    lamps = [d for d in fleet.devices if d.kind == "streetlight"]
    led = sum(1 for lamp in lamps if lamp.attrs["lamp_type"] == "LED")
    assert 0.6 < led / len(lamps) < 0.8
    assert {d.district for d in fleet.devices} == set(DISTRICT_CLASS)
    assert {DISTRICT_CLASS[d.district] for d in fleet.dmas} == {"central", "county"}


def test_every_dma_has_inlets_pressure_points_and_customers():
    fleet = make_fleet(1, "small")
    roles: dict[str, Counter] = {d.dma_id: Counter() for d in fleet.dmas}
    for d in fleet.devices:
        if d.kind == "watermeter":
            roles[d.attrs["dma_id"]][d.attrs["meter_role"]] += 1
    for counts in roles.values():
        assert counts["inlet"] in (1, 2)
        assert counts["pressure"] == 3
        assert counts["customer"] == SCALES["small"].customers_per_dma


@pytest.mark.parametrize("suffix", [".csv", ".geojson"])
def test_the_written_registry_imports_with_no_refusals(conn, tmp_path: Path, suffix):
    fleet = make_fleet(4, "small")
    path = tmp_path / f"fleet{suffix}"
    write_registry(fleet, path)
    report = registry.import_file(conn, path)
    assert report.errors == []
    assert report.imported == len(fleet.devices)
    stored = conn.execute("SELECT attrs FROM devices WHERE device_id = 'WL-D-001'").fetchone()[0]
    assert stored["point_name"] == "人民公园"
    assert stored["remediation_status"] == "verified"
