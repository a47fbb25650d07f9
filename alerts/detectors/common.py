"""Shared by the group detectors: the registry's shape (circuits, road segments, DMAs) and a
group `Change` builder. Pure: no I/O, no clock."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from urbanwatch.queries.alerts import Change

ORDER_ATTRS = (
    "position",
    "position_m",
    "order",
    "pole_seq",
    "seq",
)  # explicit order along a segment


def utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, UTC)


def group_change(
    action: str,
    rule_id: str,
    subject: str,
    kind: str,
    severity: str,
    title: str,
    at: float,
    started: float,
    *,
    district: str | None = None,
    detail: Mapping[str, Any] | None = None,
    children: Iterable[tuple[str, str]] = (),
    suppress: bool = True,
    device_id: str | None = None,
) -> Change:
    return Change(
        action=action,
        rule_id=rule_id,
        subject=subject,
        kind=kind,
        severity=severity,
        title=title,
        at=utc(at),
        started=utc(started),
        device_id=device_id,
        district=district,
        detail=dict(detail or {}),
        children=tuple(sorted(children)),
        suppress_children=suppress,
    )


@dataclass(frozen=True)
class Site:
    """A registry row as the detectors need it."""

    device_id: str
    kind: str
    district: str | None = None
    lat: float | None = None
    lon: float | None = None
    attrs: Mapping[str, Any] = field(default_factory=dict)


def _pole_number(pole_id: Any) -> float | None:
    found = re.findall(r"\d+", str(pole_id)) if pole_id is not None else []
    return float(found[-1]) if found else None


def _order_key(site: Site) -> float | None:
    for name in ORDER_ATTRS:
        value = site.attrs.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def order_along(sites: list[Site]) -> list[str]:
    """Lamps of one segment in order along the road: an explicit position attribute, else
    the pole number, else the projection of the location on the segment's main axis."""
    keys = [_order_key(s) for s in sites]
    if all(k is not None for k in keys):
        return [s.device_id for _, s in sorted(zip(keys, sites, strict=True), key=_first)]
    poles = [_pole_number(s.attrs.get("pole_id")) for s in sites]
    if all(p is not None for p in poles) and len(set(poles)) == len(poles):
        return [s.device_id for _, s in sorted(zip(poles, sites, strict=True), key=_first)]
    located = [s for s in sites if s.lat is not None and s.lon is not None]
    if len(located) < len(sites) or len(sites) < 2:
        return sorted(s.device_id for s in sites)
    points = [(float(s.lon or 0.0), float(s.lat or 0.0)) for s in located]
    kx = math.cos(math.radians(sum(lat for _, lat in points) / len(points)))
    xs = [(lon * kx, lat) for lon, lat in points]
    mx, my = sum(x for x, _ in xs) / len(xs), sum(y for _, y in xs) / len(xs)
    sxx = sum((x - mx) ** 2 for x, _ in xs)
    syy = sum((y - my) ** 2 for _, y in xs)
    sxy = sum((x - mx) * (y - my) for x, y in xs)
    angle = 0.5 * math.atan2(2 * sxy, sxx - syy)  # principal axis
    ux, uy = math.cos(angle), math.sin(angle)
    proj = [
        ((x - mx) * ux + (y - my) * uy, s.device_id) for (x, y), s in zip(xs, located, strict=True)
    ]
    return [d for _, d in sorted(proj)]


def _first(pair: tuple[Any, Site]) -> tuple[Any, str]:
    return pair[0], pair[1].device_id


@dataclass
class Topology:
    """Circuits and cabinets (lamps), road segments (lamps in order), DMAs (meters by role),
    waterlogging depth sensors and rain gauges by district."""

    circuit_of: dict[str, str] = field(default_factory=dict)
    circuit_size: dict[str, int] = field(default_factory=dict)
    segment_of: dict[str, str] = field(default_factory=dict)
    segment_order: dict[str, list[str]] = field(default_factory=dict)
    dma_of: dict[str, str] = field(default_factory=dict)
    pressure_points: dict[str, int] = field(default_factory=dict)
    gauges_by_district: dict[str, set[str]] = field(default_factory=dict)

    @classmethod
    def from_sites(cls, sites: Iterable[Site]) -> Topology:
        top = cls()
        segments: dict[str, list[Site]] = {}
        for s in sites:
            if s.kind == "streetlight":
                group = s.attrs.get("circuit_id") or s.attrs.get("cabinet_id")
                if group:
                    top.circuit_of[s.device_id] = str(group)
                    top.circuit_size[str(group)] = top.circuit_size.get(str(group), 0) + 1
                seg = s.attrs.get("segment") or s.attrs.get("segment_id")
                if seg is None and s.attrs.get("road"):
                    seg = s.attrs["road"]
                if seg:
                    top.segment_of[s.device_id] = str(seg)
                    segments.setdefault(str(seg), []).append(s)
            elif s.kind == "watermeter" and s.attrs.get("dma_id"):
                dma = str(s.attrs["dma_id"])
                top.dma_of[s.device_id] = dma
                if s.attrs.get("meter_role") == "pressure":
                    top.pressure_points[dma] = top.pressure_points.get(dma, 0) + 1
            elif s.kind == "waterlog" and s.attrs.get("role") == "rain":
                top.gauges_by_district.setdefault(s.district or "", set()).add(s.device_id)
        top.segment_order = {seg: order_along(lamps) for seg, lamps in segments.items()}
        return top
