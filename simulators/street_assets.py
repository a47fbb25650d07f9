"""Manhole covers and streetlights placed along the road network."""

from __future__ import annotations

import bisect
import math
import random
import zlib
from datetime import date, timedelta

from simulators.devices import Cover, Lamp
from simulators.geography import Road

SHARDS = 16  # independent random streams; a device's stream is fixed by its id

# Cover uses and their shares among street covers (docs/domain.md §2.4) [P].
COVER_USES = (
    ("雨水", 0.35),
    ("污水", 0.25),
    ("供水", 0.10),
    ("燃气", 0.05),
    ("电力", 0.10),
    ("通信", 0.12),
    ("热力", 0.03),
)
DRAINAGE_USES = ("雨水", "污水")
DEFECT_SHARE = 0.06  # census covers with a §2.5 defect [P]
DEFECTS = (
    ("BROKEN", 0.3),
    ("HEIGHT", 0.25),
    ("LOOSE", 0.15),
    ("SURROUND", 0.12),
    ("DISPLACED", 0.08),
    ("CLASS", 0.08),
    ("MISSING", 0.02),
)
SAFETY_NET_SHARE = 0.75  # of covers that require one: the plan's 100 % is not reached yet
CORE_CENTRE = (36.098, 114.355)  # old town, where the smart-cover pilot runs (T3)
CORE_RADIUS_KM = 2.5
# docs/domain.md §2.2: heartbeat 1–24 h, default 24 h.
HEARTBEATS_S = ((86400, 0.6), (43200, 0.2), (21600, 0.2))
PILOT_HEARTBEAT_S = 3600  # the core-area pilot reports hourly
MODULE_SHARE = 0.3  # drainage covers with a level sensor; sewer/gas covers with a gas sensor

# Lamp types and rated powers (W) by road class; non-LED lamps are the retrofit backlog.
LAMP_TYPES = (("LED", 0.70), ("HPS", 0.22), ("MH", 0.05), ("CFL", 0.02), ("other", 0.01))
RATED_W = {
    "LED": {"trunk": (150, 120), "secondary": (100, 90), "branch": (60, 40)},
    "HPS": {"trunk": (400, 250), "secondary": (150, 150), "branch": (100, 70)},
    "MH": {"trunk": (250, 150), "secondary": (150, 100), "branch": (70, 70)},
    "CFL": {"trunk": (85, 85), "secondary": (85, 55), "branch": (55, 40)},
    "other": {"trunk": (150, 150), "secondary": (100, 100), "branch": (60, 60)},
}
PF_FULL = {"LED": 0.96, "HPS": 0.88, "MH": 0.87, "CFL": 0.9, "other": 0.85}
LAMPS_PER_CIRCUIT = 30  # one feeder out of a cabinet
CIRCUITS_PER_CABINET = 4
SWITCH_SPREAD_MS = 20_000  # controllers switch within 20 s of each other (clock error, photocell)


def shard_of(device_id: str) -> int:
    return zlib.crc32(device_id.encode()) % SHARDS


def pick(rng: random.Random, table: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([k for k, _ in table], [w for _, w in table])[0]


def spread(roads: list[Road], n: int) -> list[tuple[Road, float]]:
    """`n` positions spread evenly over all roads: (road, metres along it)."""
    ends = list(_cumulative(roads))
    total = ends[-1] if ends else 0.0
    out = []
    for i in range(n):
        at = (i + 0.5) * total / n
        j = min(bisect.bisect_right(ends, at), len(roads) - 1)
        start = ends[j] - roads[j].length_m
        out.append((roads[j], min(at - start, roads[j].length_m)))
    return out


def _cumulative(roads: list[Road]):  # type: ignore[no-untyped-def]
    acc = 0.0
    for r in roads:
        acc += r.length_m
        yield acc


def _heartbeat(rng: random.Random) -> int:
    return rng.choices([s for s, _ in HEARTBEATS_S], [w for _, w in HEARTBEATS_S])[0]


def installed(rng: random.Random) -> date:
    return date(2016, 1, 1) + timedelta(days=rng.randrange(0, 6 * 365))


def in_core(lat: float, lon: float) -> bool:
    dy = (lat - CORE_CENTRE[0]) * 111.2
    dx = (lon - CORE_CENTRE[1]) * 111.2 * math.cos(math.radians(lat))
    return math.hypot(dx, dy) <= CORE_RADIUS_KM


def make_covers(rng: random.Random, roads: list[Road], n: int) -> list[Cover]:
    covers = []
    for i, (road, at) in enumerate(spread(roads, n), start=1):
        device_id = f"MH-{i:06d}"
        use = pick(rng, COVER_USES)
        lat, lon = road.point_at(at, rng.uniform(-4, 4))
        core = in_core(lat, lon)
        heartbeat = PILOT_HEARTBEAT_S if core else _heartbeat(rng)
        required = use in DRAINAGE_USES
        on_carriageway = rng.random() < 0.7
        load = "D400" if on_carriageway else rng.choice(("B125", "C250"))
        defect = pick(rng, DEFECTS) if rng.random() < DEFECT_SHARE else None
        if defect == "CLASS":
            load = "B125"
        attrs = {
            "road": road.name,
            "segment": road.segment(at),
            "cover_use": use,
            "load_class": load,
            "safety_net": (required and rng.random() < SAFETY_NET_SHARE) or rng.random() < 0.05,
            "anti_fall_required": required,
            "in_core_area": core,
            "heartbeat_s": heartbeat,
        }
        if defect:
            attrs["defect"] = defect
        covers.append(
            Cover(
                device_id=device_id,
                kind="manhole",
                district=road.district,
                lat=lat,
                lon=lon,
                installed_at=installed(rng),
                attrs=attrs,
                gateway=f"GW-MH-{road.district}",
                shard=shard_of(device_id),
                baseline_deg=round(rng.uniform(0.3, 4.0), 1),
                heartbeat_s=heartbeat,
                well_depth_m=round(rng.uniform(1.8, 4.5), 2),
                base_level_m=round(rng.uniform(0.05, 0.6), 2),
                has_level=use in DRAINAGE_USES and rng.random() < MODULE_SHARE,
                has_gas=use in ("污水", "燃气") and rng.random() < MODULE_SHARE,
                runoff=rng.uniform(0.01, 0.06),
                battery_v0=rng.uniform(3.58, 3.66),
                rsrp=rng.uniform(-112, -80),
            )
        )
    return covers


def make_lamps(rng: random.Random, roads: list[Road], n: int) -> list[Lamp]:
    lamps = []
    circuit, cabinet, on_circuit, road_of_circuit = 0, 0, LAMPS_PER_CIRCUIT, None
    for i, (road, at) in enumerate(spread(roads, n), start=1):
        if on_circuit >= LAMPS_PER_CIRCUIT or road is not road_of_circuit:
            circuit, on_circuit, road_of_circuit = circuit + 1, 0, road
            if (circuit - 1) % CIRCUITS_PER_CABINET == 0:
                cabinet += 1
        on_circuit += 1
        lamps.append(_lamp(rng, i, road, at, f"CIR-{circuit:04d}", f"CAB-{cabinet:03d}"))
    return lamps


def _lamp(rng: random.Random, i: int, road: Road, at: float, circuit: str, cabinet: str) -> Lamp:
    device_id = f"SL-{i:06d}"
    lamp_type = pick(rng, LAMP_TYPES)
    rated = float(rng.choice(RATED_W[lamp_type][road.road_class]))
    lat, lon = road.point_at(at, 12 if i % 2 else -12)
    age_h = rng.uniform(2000, 40000)
    attrs = {
        "road": road.name,
        "segment": road.segment(at),
        "lamp_type": lamp_type,
        "rated_power_w": rated,
        "road_class": road.road_class,
        "circuit_id": circuit,
        "cabinet_id": cabinet,
        "pole_id": f"P-{road.road_id[2:]}-{int(at // 30):03d}",
    }
    return Lamp(
        device_id=device_id,
        kind="streetlight",
        district=road.district,
        lat=lat,
        lon=lon,
        installed_at=installed(rng),
        attrs=attrs,
        gateway=f"GW-{cabinet}",
        shard=shard_of(device_id),
        lamp_type=lamp_type,
        rated_power_w=rated,
        circuit_id=circuit,
        efficiency=rng.uniform(0.95, 1.03),
        pf=PF_FULL[lamp_type] + rng.uniform(-0.02, 0.02),
        v_offset=rng.uniform(-6, 4),
        rsrp=rng.uniform(-108, -75),
        clock_offset_ms=rng.randrange(0, SWITCH_SPREAD_MS),
        energy_kwh=round(age_h * rated / 1000 * 0.8, 3),
        hours=round(age_h, 1),
    )
