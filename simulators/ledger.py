"""The waterlogging point ledger (积水点台账, docs/domain.md §3.4) with a depth sensor per point,
and rain gauges spread over the districts."""

from __future__ import annotations

import random
from datetime import date, timedelta

from simulators.devices import WaterlogPoint, WaterlogSensor
from simulators.geography import DISTRICT_CLASS, ROAD_NAMES, district_weights, random_point
from simulators.street_assets import installed, shard_of

# The plan names these two among the 10 central-city points remediated in 2021 (T4).
NAMED_POINTS = (("人民公园", "wenfeng", "低洼路段"), ("同乐花园", "beiguan", "小区"))
REMEDIATED_2021 = 10  # plan T4: 10 central-city points in 2021
POINT_TYPES = (("下穿立交", 0.3), ("低洼路段", 0.5), ("小区", 0.2))
# Ponding physics ranges [P], chosen so that the design-storm scenario (60 mm/h peak, 2 h)
# floods unremediated points past 15 cm and leaves remediated points below it (docs/domain.md §3.1).
UNREMEDIATED = {"capacity_mm_h": (10, 16), "gain_cm_per_mm": (1.3, 2.0), "drain_tau_h": (1.2, 2.5)}
REMEDIATED = {"capacity_mm_h": (42, 50), "gain_cm_per_mm": (0.4, 0.7), "drain_tau_h": (0.2, 0.5)}


def make_points(rng: random.Random, n: int) -> list[WaterlogPoint]:
    n = max(n, len(NAMED_POINTS))
    central = [d for d, c in DISTRICT_CLASS.items() if c == "central"]
    weights = district_weights()
    points: list[WaterlogPoint] = []
    used: set[str] = set()
    for i in range(n):
        if i < len(NAMED_POINTS):
            name, district, point_type = NAMED_POINTS[i]
        else:
            district = rng.choices(list(weights), list(weights.values()))[0]
            point_type = _pick(rng, POINT_TYPES)
            a, b = rng.sample(ROAD_NAMES, 2)
            name = f"{a}下穿立交" if point_type == "下穿立交" else f"{a}与{b}交叉口"
            if point_type == "小区":
                name = f"{a}{rng.choice(('小区', '家园', '花园'))}"
        while name in used:
            name = f"{name}({district})" if not name.endswith(")") else name + "'"
        used.add(name)
        status, when = _status(rng, i, district in central, n)
        lat, lon = random_point(rng, district)
        ranges = REMEDIATED if status in ("remediated", "verified") else UNREMEDIATED
        points.append(
            WaterlogPoint(
                point_id=f"WLP-{i + 1:03d}",
                name=name,
                district=district,
                lat=lat,
                lon=lon,
                point_type=point_type,
                remediation_status=status,
                remediated_at=when,
                capacity_mm_h=rng.uniform(*ranges["capacity_mm_h"]),
                gain_cm_per_mm=rng.uniform(*ranges["gain_cm_per_mm"]),
                drain_tau_h=rng.uniform(*ranges["drain_tau_h"]),
                rain_factor=rng.uniform(0.92, 1.08),
            )
        )
    return points


def _pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def _status(rng: random.Random, i: int, central: bool, n: int) -> tuple[str, date | None]:
    """The named points and the first central ones were done in 2021; the rest are spread
    over 2022–2023 or still open (the dashboard tracks the 2023 target)."""
    if i < len(NAMED_POINTS) or (central and i < min(REMEDIATED_2021, n // 3) + n // 8):
        return "verified", date(2021, 5, 1) + timedelta(days=rng.randrange(0, 200))
    roll = rng.random()
    if roll < 0.35:
        return "remediated", date(2022, 3, 1) + timedelta(days=rng.randrange(0, 600))
    return ("in_progress" if roll < 0.6 else "pending"), None


def make_sensors(
    rng: random.Random, points: list[WaterlogPoint], gauges: int
) -> list[WaterlogSensor]:
    sensors = []
    for p in points:
        device_id = f"WL-D-{p.point_id[4:]}"
        attrs = {
            "role": "depth",
            "point_id": p.point_id,
            "point_name": p.name,
            "remediation_status": p.remediation_status,
            "point_type": p.point_type,
        }
        if p.remediated_at:
            attrs["remediated_at"] = p.remediated_at.isoformat()
        sensors.append(
            WaterlogSensor(
                device_id=device_id,
                kind="waterlog",
                district=p.district,
                lat=p.lat,
                lon=p.lon,
                installed_at=installed(rng),
                attrs=attrs,
                gateway=f"GW-WL-{p.district}",
                shard=shard_of(device_id),
                role="depth",
                point=p,
                battery_v0=rng.uniform(3.55, 3.66),
                rsrp=rng.uniform(-110, -80),
            )
        )
    districts = list(DISTRICT_CLASS)
    for i in range(gauges):
        device_id = f"WL-R-{i + 1:03d}"
        district = districts[i % len(districts)]
        lat, lon = random_point(rng, district)
        sensors.append(
            WaterlogSensor(
                device_id=device_id,
                kind="waterlog",
                district=district,
                lat=lat,
                lon=lon,
                installed_at=installed(rng),
                attrs={"role": "rain"},
                gateway=f"GW-WL-{district}",
                shard=shard_of(device_id),
                role="rain",
                point=None,
                battery_v0=rng.uniform(3.55, 3.66),
                rsrp=rng.uniform(-105, -80),
            )
        )
    return sensors
