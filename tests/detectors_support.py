"""Test-side builders for the group detectors: registry sites and engine transitions."""

from __future__ import annotations

from typing import Any

from alerts.detectors import Site, Topology
from urbanwatch.alerting import Device, Transition, default_rules

RULES = {r.id: r for r in default_rules().rules}


def lamp(i: int, circuit: str = "CIR-1", segment: str = "R1-S00", **attrs: Any) -> Site:
    return Site(
        f"SL-{i}", "streetlight", "wenfeng", 36.1, 114.3 + i * 1e-4,
        {"circuit_id": circuit, "segment": segment, "pole_id": f"P-1-{i:03d}", **attrs},
    )  # fmt: skip


def meter(name: str, dma: str, role: str) -> Site:
    return Site(name, "watermeter", "wenfeng", None, None, {"dma_id": dma, "meter_role": role})


def device(site: Site) -> Device:
    return Device(site.device_id, site.kind, site.district, site.attrs)


def tr(site: Site, rule: str, action: str, at: float, started: float | None = None) -> Transition:
    return Transition(
        RULES[rule], device(site), action, at, at if started is None else started,  # type: ignore[arg-type]
        RULES[rule].severity, {},
    )  # fmt: skip


def topology(*sites: Site) -> Topology:
    return Topology.from_sites(sites)
