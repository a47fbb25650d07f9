"""Anyang's districts and a seeded road network to place devices along.

District codes are the registry's (urbanwatch/sql/001_core.sql); the centres are approximate
(to ~1 km) and only need to put each device inside its district on a map. Roads are straight
segments radiating around each centre, named from real Anyang road names.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# (code, class, centre lat, centre lon, radius km, weight of the city's street furniture).
# Weights: the four central districts hold most roads; counties get a town-sized share.
DISTRICTS: tuple[tuple[str, str, float, float, float, float], ...] = (
    ("wenfeng", "central", 36.085, 114.360, 5.0, 0.17),
    ("beiguan", "central", 36.125, 114.360, 4.0, 0.13),
    ("yindu", "central", 36.110, 114.300, 4.5, 0.12),
    ("longan", "central", 36.070, 114.290, 4.5, 0.10),
    ("gaoxin", "central", 36.060, 114.330, 3.0, 0.07),
    ("shifanqu", "central", 36.040, 114.420, 3.5, 0.06),
    ("linzhou", "county", 36.083, 113.820, 3.5, 0.09),
    ("anyangxian", "county", 36.180, 114.250, 3.0, 0.06),
    ("tangyin", "county", 35.925, 114.357, 2.5, 0.07),
    ("neihuang", "county", 35.972, 114.904, 2.5, 0.06),
    ("huaxian", "county", 35.576, 114.519, 3.0, 0.07),
)
DISTRICT_CLASS = {code: cls for code, cls, *_ in DISTRICTS}

# Real Anyang road names, reused across districts (a county town has its own 人民路 too).
ROAD_NAMES = (
    "文明大道",
    "中华路",
    "人民大道",
    "解放大道",
    "德隆街",
    "红旗路",
    "光明路",
    "文峰大道",
    "平原路",
    "安钢大道",
    "东风路",
    "彰德路",
    "北关路",
    "曙光路",
    "朝霞路",
    "紫薇大道",
    "永明路",
    "梅东路",
    "灯塔路",
    "殷都路",
    "相州路",
    "海兴路",
    "长江大道",
    "黄河大道",
    "弦歌大道",
    "健康路",
    "铁西路",
    "钢二路",
    "高平路",
    "三角湖路",
    "迎宾路",
    "万金渠路",
)
# Road classes (CJJ 45): trunk roads are longer and carry more lamps per km.
ROAD_CLASSES = (("trunk", 0.3), ("secondary", 0.4), ("branch", 0.3))
SEGMENT_M = 500.0  # road segments (dark-spot KPI unit, docs/domain.md §4.5) are ~500 m
KM_PER_DEG_LAT = 111.2


@dataclass(frozen=True, slots=True)
class Road:
    road_id: str
    name: str
    district: str
    road_class: str
    lat0: float
    lon0: float
    bearing: float  # radians, 0 = north
    length_m: float

    def point_at(self, metres: float, side_offset_m: float = 0.0) -> tuple[float, float]:
        """Latitude and longitude `metres` along the road, offset to its side."""
        north = metres * math.cos(self.bearing) - side_offset_m * math.sin(self.bearing)
        east = metres * math.sin(self.bearing) + side_offset_m * math.cos(self.bearing)
        lat = self.lat0 + north / 1000 / KM_PER_DEG_LAT
        lon = self.lon0 + east / 1000 / (KM_PER_DEG_LAT * math.cos(math.radians(self.lat0)))
        return round(lat, 6), round(lon, 6)

    def segment(self, metres: float) -> str:
        return f"{self.road_id}-S{int(metres // SEGMENT_M):02d}"


def district_weights() -> dict[str, float]:
    return {code: w for code, _, _, _, _, w in DISTRICTS}


def random_point(rng: random.Random, district: str) -> tuple[float, float]:
    """A point within the district's radius."""
    _, _, lat, lon, radius, _ = next(d for d in DISTRICTS if d[0] == district)
    r = radius * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    dlat = r * math.cos(a) / KM_PER_DEG_LAT
    dlon = r * math.sin(a) / (KM_PER_DEG_LAT * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def make_roads(rng: random.Random, total_km: float) -> list[Road]:
    """Roads totalling about `total_km`, shared out by district weight."""
    roads: list[Road] = []
    for code, _, _, _, radius, weight in DISTRICTS:
        km_left = total_km * weight
        names = rng.sample(ROAD_NAMES, len(ROAD_NAMES))
        i = 0
        while km_left > 0:
            road_class = rng.choices([c for c, _ in ROAD_CLASSES], [w for _, w in ROAD_CLASSES])[0]
            length = min(
                km_left, rng.uniform(0.8, 1.6) * radius * (1.3 if road_class == "trunk" else 0.8)
            )
            lat0, lon0 = random_point(rng, code)
            name = names[i % len(names)] + ("" if i < len(names) else f"{i // len(names) + 1}段")
            roads.append(
                Road(
                    f"R-{len(roads) + 1:04d}",
                    name,
                    code,
                    road_class,
                    lat0,
                    lon0,
                    rng.uniform(0, 2 * math.pi),
                    max(length, 0.2) * 1000,
                )
            )
            km_left -= length
            i += 1
    return roads
