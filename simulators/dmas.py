"""Water district metered areas (docs/domain.md §5.4): inlets, bulk customer meters, pressure
points.

Every customer in a simulated DMA is behind one of its customer meters (residential compound
master meters 小区总表 and non-residential users), so inflow − Σ customer meters is exactly
the DMA's leakage: the water balance the tests check.
"""

from __future__ import annotations

import random

from simulators.devices import Dma, Meter
from simulators.geography import DISTRICT_CLASS, district_weights, random_point
from simulators.street_assets import installed, shard_of

HOUSEHOLDS = (3000, 8000)  # China practice: 5,000–10,000 households per DMA (§5.4), smaller here
M3_PER_HOUSEHOLD_DAY = (0.40, 0.55)  # ~150 L/person/day × ~3 people [P]
COMMERCIAL_SHARE = (0.15, 0.35)  # of residential consumption [P]
# True leakage as a share of inflow, by district class [P]; the plan targets are 9.7 % / 11 %.
LEAKAGE_SHARE = {"central": (0.06, 0.14), "county": (0.08, 0.17)}
INLET_MPA = (0.30, 0.40)  # network pressure at the inlet, no flow
PRESSURE_POINTS = 3  # at least 3 per zone (docs/domain.md §5.4)
COMMERCIAL_METERS = 0.3  # share of customer meters that are non-residential


def make_dmas(rng: random.Random, n: int) -> list[Dma]:
    weights = district_weights()
    codes = list(weights)
    dmas = []
    for i in range(n):
        district = (
            codes[i]
            if i < len(codes) and n >= len(codes)
            else rng.choices(codes, list(weights.values()))[0]
        )
        households = rng.randrange(*HOUSEHOLDS)
        residential = households * rng.uniform(*M3_PER_HOUSEHOLD_DAY) / 24
        commercial = residential * rng.uniform(*COMMERCIAL_SHARE)
        share = rng.uniform(*LEAKAGE_SHARE[DISTRICT_CLASS[district]])
        leakage = (residential + commercial) * share / (1 - share)
        inlets = 1 if rng.random() < 0.7 else 2
        first = rng.uniform(0.55, 0.75)
        dmas.append(
            Dma(
                dma_id=f"DMA-{i + 1:02d}",
                district=district,
                households=households,
                residential_m3_h=round(residential, 3),
                commercial_m3_h=round(commercial, 3),
                leakage_m3_h=round(leakage, 3),
                inlet_mpa=rng.uniform(*INLET_MPA),
                mains_km=round(rng.uniform(15, 30), 1),
                inlet_shares=[1.0] if inlets == 1 else [first, 1 - first],
            )
        )
    return dmas


def make_meters(rng: random.Random, dmas: list[Dma], customers: int) -> list[Meter]:
    meters = []
    for dma in dmas:
        tag = dma.dma_id.replace("-", "")
        for j, share in enumerate(dma.inlet_shares, start=1):
            meters.append(_meter(rng, dma, f"WM-{tag}-IN{j}", "inlet", share, "residential"))
        for j in range(1, PRESSURE_POINTS + 1):
            meters.append(_meter(rng, dma, f"WM-{tag}-P{j}", "pressure", 0.0, "residential"))
        meters.extend(_customers(rng, dma, tag, customers))
    return meters


def _customers(rng: random.Random, dma: Dma, tag: str, n: int) -> list[Meter]:
    n_com = max(1, round(n * COMMERCIAL_METERS))
    n_res = max(1, n - n_com)
    out: list[Meter] = []
    for pattern, count, mean in (
        ("residential", n_res, dma.residential_m3_h),
        ("commercial", n_com, dma.commercial_m3_h),
    ):
        sizes = [rng.lognormvariate(0, 0.5) for _ in range(count)]
        total = sum(sizes)
        for size in sizes:
            device_id = f"WM-{tag}-C{len(out) + 1:03d}"
            out.append(_meter(rng, dma, device_id, "customer", mean * size / total, pattern))
    return out


def _meter(
    rng: random.Random, dma: Dma, device_id: str, role: str, share: float, pattern: str
) -> Meter:
    lat, lon = random_point(rng, dma.district)
    attrs = {"dma_id": dma.dma_id, "meter_role": role}
    if role == "customer":
        attrs["customer_class"] = pattern
    return Meter(
        device_id=device_id,
        kind="watermeter",
        district=dma.district,
        lat=lat,
        lon=lon,
        installed_at=installed(rng),
        attrs=attrs,
        gateway=f"GW-{dma.dma_id}",
        shard=shard_of(device_id),
        role=role,
        dma=dma,
        share=share,
        pattern=pattern,
        headloss_mpa=rng.uniform(0.01, 0.03) if role == "inlet" else rng.uniform(0.03, 0.08),
        elevation_mpa=0.0 if role == "inlet" else rng.uniform(0.0, 0.06),
        total0=round(rng.uniform(1e3, 1e5), 3),
        rsrp=rng.uniform(-105, -75),
    )
