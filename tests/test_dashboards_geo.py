"""District outlines on the device map: the GeoJSON file the map's layer loads exists where
compose serves it, parses, is current with its generator, and has one polygon per district
of the registry, named as the registry names it; simulated devices fall inside outlines."""

from __future__ import annotations

import json
import random
import sys
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboards.build import load_json
from dashboards.live import OUTLINES_SRC
from simulators.geography import DISTRICTS, random_point

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import district_outlines  # noqa: E402

GRAFANA_PUBLIC = "/usr/share/grafana/public/"


def outlines_file() -> Path:
    """The file behind the map layer's URL, through compose's Grafana mounts."""
    grafana = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    inside = GRAFANA_PUBLIC + OUTLINES_SRC.removeprefix("public/")
    for volume in grafana["volumes"]:
        source, target = volume.split(":")[:2]
        if inside.startswith(target + "/"):
            return ROOT / source / inside[len(target) + 1 :]
    raise AssertionError(f"no Grafana mount serves {OUTLINES_SRC}")


def map_layers() -> list[dict[str, Any]]:
    live = next(b for _f, b in load_json() if b["uid"] == "uw-live")
    panel = next(p for p in live["panels"] if p["id"] == 5)
    return panel["options"]["layers"]


def inside(lon: float, lat: float, ring: list[list[float]]) -> bool:
    hit = False
    for (x1, y1), (x2, y2) in pairwise(ring):
        if (y1 > lat) != (y2 > lat) and lon < x1 + (lat - y1) * (x2 - x1) / (y2 - y1):
            hit = not hit
    return hit


def features() -> dict[str, dict[str, Any]]:
    doc = json.loads(outlines_file().read_text("utf-8"))
    assert doc["type"] == "FeatureCollection"
    return {f["properties"]["code"]: f for f in doc["features"]}


def test_the_map_draws_the_outlines_under_the_devices():
    layers = map_layers()
    assert [layer["type"] for layer in layers] == ["geojson", "markers"]
    assert layers[0]["config"]["src"] == OUTLINES_SRC
    assert layers[0]["config"]["style"]["text"]["field"] == "name"
    assert outlines_file().is_file()


def test_outlines_are_current_with_their_generator():
    assert outlines_file().read_text("utf-8") == district_outlines.render(), (
        "run `.venv/bin/python scripts/district_outlines.py` and commit dashboards/geo"
    )
    assert district_outlines.main(["--check"]) == 0


def test_one_closed_polygon_per_registry_district_named_as_the_registry(conn):
    registry = {
        code: f"{zh} {en}"
        for code, zh, en in conn.execute("SELECT code, name_zh, name_en FROM districts")
    }
    found = features()
    assert set(found) == set(registry)
    for code, feature in found.items():
        assert feature["type"] == "Feature"
        assert feature["properties"]["name"] == registry[code]
        assert feature["properties"]["approximate"] is True
        assert feature["geometry"]["type"] == "Polygon"
        (ring,) = feature["geometry"]["coordinates"]
        assert len(ring) >= 4 and ring[0] == ring[-1], code
        assert all(113 < lon < 116 and 35 < lat < 37 for lon, lat in ring), code
        # counter-clockwise exterior ring (RFC 7946): positive shoelace area
        area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairwise(ring))
        assert area > 0, code


def test_each_centre_is_in_its_own_outline_and_no_other():
    rings = {c: f["geometry"]["coordinates"][0] for c, f in features().items()}
    for code, _cls, lat, lon, _r, _w in DISTRICTS:
        assert [c for c, ring in rings.items() if inside(lon, lat, ring)] == [code]


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), district=st.sampled_from([d[0] for d in DISTRICTS]))
def test_a_simulated_device_lies_in_exactly_one_outline(seed, district):
    """Outlines never overlap and cover where the simulator puts devices (its own district's
    outline, or a neighbour's where the simulator's central circles overlap)."""
    lat, lon = random_point(random.Random(seed), district)
    rings = {c: f["geometry"]["coordinates"][0] for c, f in features().items()}
    hits = [c for c, ring in rings.items() if inside(lon, lat, ring)]
    assert len(hits) == 1, (district, lat, lon, hits)
    if district not in ("wenfeng", "beiguan", "yindu", "longan", "gaoxin"):
        assert hits == [district]


@pytest.mark.parametrize("code", ["wenfeng", "beiguan", "yindu", "longan", "gaoxin"])
def test_most_of_a_central_districts_devices_are_in_its_outline(code):
    rng = random.Random(7)
    ring = features()[code]["geometry"]["coordinates"][0]
    points = [random_point(rng, code) for _ in range(2000)]
    share = sum(inside(lon, lat, ring) for lat, lon in points) / len(points)
    assert share >= 0.4, share
