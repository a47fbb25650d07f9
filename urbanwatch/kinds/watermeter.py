"""供水 DMA meters: inlet/outlet flow, customer meters, pressure points (docs/domain.md §5)."""

from __future__ import annotations

from typing import ClassVar, Literal

from urbanwatch.kinds.base import Attrs, Cadence, KindSpec, Reading, agg, bounded


class WatermeterReading(Reading):
    """DMA inlet/outlet flow meter, customer meter or pressure point, docs/domain.md §5.4."""

    PRIMARY: ClassVar[tuple[str, ...]] = (
        "flow_m3_h",
        "fwd_total_m3",
        "rev_total_m3",
        "pressure_mpa",
    )
    # Reverse flow is reported through rev_total_m3; a negative rate is impossible (§6).
    flow_m3_h: float | None = bounded(0, 10_000)
    fwd_total_m3: float | None = bounded(0, 1e12)
    rev_total_m3: float | None = bounded(0, 1e12)
    pressure_mpa: float | None = bounded(0, 2.5)
    battery_v: float | None = bounded(0, 5)
    rsrp_dbm: float | None = bounded(-160, -20)


class WatermeterAttrs(Attrs):
    dma_id: str | None = None
    meter_role: Literal["inlet", "outlet", "customer", "pressure"] | None = None


SPEC = KindSpec(
    name="watermeter",
    title="供水计量 water meters",
    reading=WatermeterReading,
    attrs=WatermeterAttrs,
    # DMA inlets and pressure points log every 15 min [S, UK practice]; customer meters
    # hourly [P].
    cadence=Cadence(report_s=900, heartbeat_s=3600, fast_s=None, grace_s=0, source="§5.4 [S/P]"),
    rollups=(
        agg("avg_flow_m3_h"),
        agg("min_flow_m3_h"),
        agg("max_flow_m3_h"),
        agg("min_fwd_total_m3", device_only=True),
        agg("max_fwd_total_m3", device_only=True),
        agg("avg_pressure_mpa"),
        agg("min_pressure_mpa"),
    ),
)
