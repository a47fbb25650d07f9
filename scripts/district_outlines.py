"""Write dashboards/geo/anyang-districts.geojson: APPROXIMATE district outlines for the
device map, derived from the simulator's district layout (simulators/geography.py), not
surveyed boundaries.

Each district is the circle the simulator places its devices in (centre and radius,
accurate to ~1 km), widened by WIDEN so devices along roads running out of it are inside,
and cut where it meets a neighbour's at the midline between the two centres (a Voronoi
split), so outlines never overlap. The simulator's central circles do overlap (Gaoxin's lies
mostly inside Wenfeng's), so there a simulated device can sit in a neighbour's outline:
of devices placed by simulators.geography.random_point, 40-75 % of each of the four
central districts' and all of the counties' and Shifanqu's fall in their own outline, and
every one in some outline (tests/test_dashboards_geo.py). Replace the file with the
city's survey (自然资源和规划局) when it is available: the map reads any GeoJSON with a
`code` and a `name` property per feature.

    .venv/bin/python scripts/district_outlines.py          # rewrite the file
    .venv/bin/python scripts/district_outlines.py --check  # exit 1 if it is stale

A script, not a dashboards/ module: it reads the simulator's table, and services do not
import each other (DEVELOPERS.md).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulators.geography import DISTRICTS, KM_PER_DEG_LAT  # noqa: E402

OUT = ROOT / "dashboards" / "geo" / "anyang-districts.geojson"
# Roads start inside the circle and run up to ~2 radii (make_roads): 1.5 radii holds most.
WIDEN = 1.5
VERTICES = 48  # per circle: smooth enough at city zoom, a few KB per district
# Registry names (urbanwatch/sql/001_core.sql), Chinese first for the map's labels.
NAMES = {
    "wenfeng": ("文峰区", "Wenfeng District"),
    "beiguan": ("北关区", "Beiguan District"),
    "yindu": ("殷都区", "Yindu District"),
    "longan": ("龙安区", "Long'an District"),
    "gaoxin": ("安阳高新技术产业开发区", "Anyang Hi-tech Zone"),
    "shifanqu": ("安阳城乡一体化示范区", "Anyang Urban-Rural Demonstration Zone"),
    "linzhou": ("林州市", "Linzhou City"),
    "anyangxian": ("安阳县", "Anyang County"),
    "tangyin": ("汤阴县", "Tangyin County"),
    "neihuang": ("内黄县", "Neihuang County"),
    "huaxian": ("滑县", "Hua County"),
}
Point = tuple[float, float]  # km east, km north of the reference latitude's origin


def _to_km(lat: float, lon: float, lat0: float) -> Point:
    return lon * KM_PER_DEG_LAT * math.cos(math.radians(lat0)), lat * KM_PER_DEG_LAT


def _to_deg(p: Point, lat0: float) -> list[float]:
    lon = p[0] / (KM_PER_DEG_LAT * math.cos(math.radians(lat0)))
    return [round(lon, 5), round(p[1] / KM_PER_DEG_LAT, 5)]


def _clip(poly: list[Point], a: Point, b: Point) -> list[Point]:
    """The part of the convex `poly` nearer `a` than `b` (Sutherland-Hodgman, one edge)."""

    def side(p: Point) -> float:  # < 0: nearer a
        return math.dist(p, a) ** 2 - math.dist(p, b) ** 2  # linear in p

    out: list[Point] = []
    for p, q in zip(poly, poly[1:] + poly[:1], strict=True):
        sp, sq = side(p), side(q)
        if sp <= 0:
            out.append(p)
        if (sp < 0) != (sq < 0) and sp != sq:
            t = sp / (sp - sq)
            out.append((p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1])))
    return out


def outlines(districts: Sequence[tuple[str, str, float, float, float, float]]) -> dict:
    """A GeoJSON FeatureCollection, one Polygon per district (pure)."""
    lat0 = sum(d[2] for d in districts) / len(districts)
    circles = {
        code: (_to_km(lat, lon, lat0), radius * WIDEN) for code, _, lat, lon, radius, _ in districts
    }
    features = []
    for code, cls, *_ in districts:
        (cx, cy), r = circles[code]
        step = 2 * math.pi / VERTICES
        poly = [(cx + r * math.sin(i * step), cy + r * math.cos(i * step)) for i in range(VERTICES)]
        for other, (centre, r2) in circles.items():
            if other != code and math.dist((cx, cy), centre) < r + r2:
                poly = _clip(poly, (cx, cy), centre)
        ring = [_to_deg(p, lat0) for p in reversed(poly)]  # counter-clockwise (RFC 7946)
        zh, en = NAMES[code]
        features.append(
            {
                "type": "Feature",
                "properties": {
                    "code": code,
                    "name": f"{zh} {en}",
                    "district_class": cls,
                    "approximate": True,
                    "source": "simulators/geography.py circle x1.5, Voronoi cut",
                },
                "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
            }
        )
    return {"type": "FeatureCollection", "features": features}


def render() -> str:
    return json.dumps(outlines(DISTRICTS), ensure_ascii=False, indent=1) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = p.parse_args(argv)
    text = render()
    if args.check:
        stale = not OUT.exists() or OUT.read_text("utf-8") != text
        print(f"{OUT.relative_to(ROOT)}: {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, "utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
