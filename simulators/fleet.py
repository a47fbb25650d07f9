"""A seeded Anyang fleet of all four kinds: `make_fleet(seed, scale)` is pure and deterministic;
`write_registry` writes it in the registry's CSV or GeoJSON shape (urbanwatch/registry.py)."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simulators.devices import Device, Dma, WaterlogPoint
from simulators.dmas import PRESSURE_POINTS, make_dmas, make_meters
from simulators.geography import make_roads
from simulators.ledger import make_points, make_sensors
from simulators.street_assets import make_covers, make_lamps


@dataclass(frozen=True)
class FleetSize:
    covers: int
    lamps: int
    waterlog_points: int
    rain_gauges: int
    dmas: int
    customers_per_dma: int

    @property
    def total(self) -> int:
        per_dma = 1.3 + PRESSURE_POINTS + self.customers_per_dma  # 30 % of DMAs have 2 inlets
        return round(
            self.covers + self.lamps + self.waterlog_points + self.rain_gauges + self.dmas * per_dma
        )


# `city` is Anyang-sized: tens of thousands of covers and lamps, a few dozen ledger points.
SCALES = {
    "small": FleetSize(
        covers=150, lamps=200, waterlog_points=12, rain_gauges=4, dmas=4, customers_per_dma=6
    ),
    "city": FleetSize(
        covers=30000, lamps=40000, waterlog_points=40, rain_gauges=12, dmas=60, customers_per_dma=20
    ),
}
METRES_PER_LAMP = 30.0  # lamp spacing along a road, one side (CJJ 45 practice)


def fleet_size(scale: str) -> FleetSize:
    """`small`, `city`, or a device count N: city proportions, with floors that keep every
    kind present."""
    if scale in SCALES:
        return SCALES[scale]
    try:
        n = int(scale)
    except ValueError:
        raise ValueError(f"scale must be small, city or a device count, got {scale!r}") from None
    if n < 50:
        raise ValueError("a fleet needs at least 50 devices")
    city = SCALES["city"]
    f = n / city.total
    points = min(city.waterlog_points, max(4, round(city.waterlog_points * f**0.5)))
    gauges = min(city.rain_gauges, max(2, round(city.rain_gauges * f**0.5)))
    dmas = min(city.dmas * 4, max(2, round(city.dmas * f)))
    customers = min(city.customers_per_dma, max(3, round(n / 400)))
    rest = n - points - gauges - round(dmas * (1.3 + PRESSURE_POINTS + customers))
    street = max(rest, 20)
    covers = round(street * city.covers / (city.covers + city.lamps))
    return FleetSize(covers, street - covers, points, gauges, dmas, customers)


@dataclass
class Fleet:
    seed: int
    scale: str
    devices: list[Device]
    points: list[WaterlogPoint]
    dmas: list[Dma]

    def by_id(self) -> dict[str, Device]:
        return {d.device_id: d for d in self.devices}


def make_fleet(seed: int, scale: str) -> Fleet:
    size = fleet_size(scale)
    rng = random.Random(seed)
    roads = make_roads(rng, max(size.lamps * METRES_PER_LAMP, size.covers * 40.0) / 1000)
    covers = make_covers(rng, roads, size.covers)
    lamps = make_lamps(rng, roads, size.lamps)
    points = make_points(rng, size.waterlog_points)
    sensors = make_sensors(rng, points, size.rain_gauges)
    dmas = make_dmas(rng, size.dmas)
    meters = make_meters(rng, dmas, size.customers_per_dma)
    devices: list[Device] = [*covers, *lamps, *sensors, *meters]
    return Fleet(seed, scale, devices, points, dmas)


def registry_columns(devices: list[Device]) -> list[str]:
    columns = [
        "device_id",
        "kind",
        "district",
        "lat",
        "lon",
        "status",
        "installed_at",
        "gateway_id",
    ]
    seen = set(columns)
    for d in devices:
        for key in d.attrs:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    return columns


def write_registry(fleet: Fleet, path: Path) -> None:
    """CSV (`.csv`) or GeoJSON (`.geojson`/`.json`), as `urbanwatch devices import` reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() in (".geojson", ".json"):
        features = [_feature(d) for d in fleet.devices]
        doc = {"type": "FeatureCollection", "features": features}
        path.write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=registry_columns(fleet.devices))
        writer.writeheader()
        for d in fleet.devices:
            writer.writerow({k: _cell(v) for k, v in d.row().items()})


def _cell(value: Any) -> Any:
    return str(value).lower() if isinstance(value, bool) else value


def _feature(d: Device) -> dict[str, Any]:
    props = {k: v for k, v in d.row().items() if k not in ("lat", "lon")}
    return {
        "type": "Feature",
        "id": d.device_id,
        "properties": props,
        "geometry": {"type": "Point", "coordinates": [d.lon, d.lat]},
    }


def registry_rows(fleet: Fleet) -> list[tuple[str, dict[str, Any]]]:
    """Rows for `urbanwatch.registry.import_rows`, without a file in between."""
    return [(d.device_id, d.row()) for d in fleet.devices]
