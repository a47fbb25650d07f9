"""The ground truth a run used, as JSON, so tests and benchmarks can score detection:
which devices were broken and when, storms, bursts, each DMA's true leakage, the ledger."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from simulators.fleet import Fleet
from simulators.geography import DISTRICT_CLASS
from simulators.sun import utc
from simulators.water import PATTERNS
from simulators.world import World

FORMAT_VERSION = 1


def _iso(t_ms: int | None) -> str | None:
    return None if t_ms is None else utc(t_ms).isoformat().replace("+00:00", "Z")


def dma_truth(fleet: Fleet) -> list[dict[str, Any]]:
    out = []
    for dma in fleet.dmas:
        inflow = dma.consumption_m3_h + dma.leakage_m3_h
        night = dma.residential_m3_h * min(
            PATTERNS["residential"].values
        ) + dma.commercial_m3_h * min(PATTERNS["commercial"].values)
        out.append(
            {
                "dma_id": dma.dma_id,
                "district": dma.district,
                "district_class": DISTRICT_CLASS[dma.district],
                "households": dma.households,
                "mains_km": dma.mains_km,
                "consumption_m3_h": round(dma.consumption_m3_h, 3),
                "leakage_m3_h": dma.leakage_m3_h,
                "leakage_pct_of_inflow": round(100 * dma.leakage_m3_h / inflow, 3),
                "inflow_m3_h": round(inflow, 3),
                "night_consumption_m3_h": round(night, 3),  # legitimate night use at 03:00
                "inlet_shares": dma.inlet_shares,
            }
        )
    return out


def ledger_truth(fleet: Fleet) -> list[dict[str, Any]]:
    return [
        {
            "point_id": p.point_id,
            "name": p.name,
            "district": p.district,
            "remediation_status": p.remediation_status,
            "remediated": p.remediated,
            "capacity_mm_h": round(p.capacity_mm_h, 2),
            "sensor_id": f"WL-D-{p.point_id[4:]}",
        }
        for p in fleet.points
    ]


def ground_truth(
    fleet: Fleet,
    world: World | None = None,
    start_ms: int | None = None,
    end_ms: int | None = None,
    scenario: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "seed": fleet.seed,
        "scale": fleet.scale,
        "devices": len(fleet.devices),
        "window": {"start": _iso(start_ms), "end": _iso(end_ms)},
        "scenario": scenario,
        "dmas": dma_truth(fleet),
        "waterlog_points": ledger_truth(fleet),
        "faults": [],
        "storms": [],
        "bursts": [],
    }
    if world is None:
        return doc
    doc["faults"] = [
        {
            "type": f.type,
            "device_id": f.device_id,
            "start": _iso(f.start_ms),
            "end": _iso(f.end_ms),
            "source": f.source,
            **({"group": f.group} if f.group else {}),
        }
        for f in world.all_faults()
    ]
    doc["storms"] = [
        {
            "start": _iso(s.start_ms),
            "end": _iso(s.end_ms),
            "peak_mm_h": s.peak_mm_h,
            "shape": s.shape,
            "total_mm": round(s.total_mm, 1),
            "districts": sorted(s.districts) if s.districts else None,
        }
        for s in world.weather.storms
    ]
    doc["bursts"] = [
        {
            "dma_id": b.dma_id,
            "start": _iso(b.start_ms),
            "end": _iso(b.end_ms),
            "flow_m3_h": b.flow_m3_h,
            "pressure_drop_mpa": b.pressure_drop_mpa,
            "source": b.source,
        }
        for b in world.all_bursts()
    ]
    return doc


def write_truth(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), "utf-8")
