"""积水点 waterlogging: road ponding sensors and rain gauges (docs/domain.md §3)."""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from urbanwatch.kinds.base import Attrs, Cadence, KindSpec, Reading, agg, bounded


class WaterlogReading(Reading):
    """Road ponding sensor or rain gauge, docs/domain.md §3.2."""

    PRIMARY: ClassVar[tuple[str, ...]] = ("depth_cm", "water_present", "rain_mm")
    depth_cm: float | None = bounded(0, 500)
    water_present: bool | None = None
    rain_mm: float | None = bounded(0, 500)
    rain_intensity_mm_h: float | None = bounded(0, 1000)
    temp_c: float | None = bounded(-60, 125)
    battery_v: float | None = bounded(0, 5)
    battery_pct: float | None = bounded(0, 100)
    rsrp_dbm: float | None = bounded(-160, -20)


class WaterlogAttrs(Attrs):
    role: Literal["depth", "rain"] | None = None
    point_id: str | None = None
    point_name: str | None = None
    remediation_status: Literal["pending", "in_progress", "remediated", "verified"] | None = None
    remediated_at: date | None = None


SPEC = KindSpec(
    name="waterlog",
    title="积水点 waterlogging points",
    reading=WaterlogReading,
    attrs=WaterlogAttrs,
    # Dry heartbeat 60 min; rain mode every 5 min (depth ≥ 15 cm: every minute, plus an
    # immediate report on a change ≥ 2 cm); offline after 2 × heartbeat (dry) [P].
    cadence=Cadence(
        report_s=3600,
        heartbeat_s=3600,
        fast_s=300,
        grace_s=0,
        source="§3.2, §3.3 [P]",
        urgent_s=60,
    ),
    rollups=(
        agg("max_depth_cm"),
        agg("avg_depth_cm"),
        agg("rain_mm", "sum(rain_mm)"),
        agg("max_rain_intensity_mm_h"),
    ),
)
