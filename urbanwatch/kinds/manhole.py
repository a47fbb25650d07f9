"""窨井盖 smart manhole cover monitor (docs/domain.md §2)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from urbanwatch.kinds.base import Attrs, Cadence, KindSpec, Reading, agg, bounded


class ManholeReading(Reading):
    """Smart cover monitor, docs/domain.md §2.2."""

    PRIMARY: ClassVar[tuple[str, ...]] = (
        "tilt_deg",
        "cover_open",
        "water_distance_m",
        "water_level_m",
        "water_over_limit",
        "ch4_pct_lel",
        "h2s_ppm",
        "co_ppm",
        "o2_pct_vol",
        "battery_v",
        "battery_pct",
    )
    msg_type: (
        Literal["periodic", "alarm", "alarm_clear", "low_battery", "boot", "config_ack"] | None
    ) = None
    tilt_deg: float | None = bounded(0, 180)
    tilt_baseline_deg: float | None = bounded(0, 90)
    cover_open: bool | None = None
    water_distance_m: float | None = bounded(0, 20)
    water_level_m: float | None = bounded(0, 20)
    water_over_limit: bool | None = None
    vibration_events: int | None = bounded(0, 1_000_000)
    ch4_pct_lel: float | None = bounded(0, 100)
    h2s_ppm: float | None = bounded(0, 1000)
    co_ppm: float | None = bounded(0, 5000)
    o2_pct_vol: float | None = bounded(0, 100)
    temp_c: float | None = bounded(-60, 125)
    battery_v: float | None = bounded(0, 5)
    battery_pct: float | None = bounded(0, 100)
    rsrp_dbm: float | None = bounded(-160, -20)
    snr_db: float | None = bounded(-40, 50)


class ManholeAttrs(Attrs):
    cover_use: str | None = None  # 雨水 / 污水 / 供水 / 燃气 / 电力 / 通信 / 热力 …
    load_class: Literal["A15", "B125", "C250", "D400", "E600", "F900"] | None = None
    safety_net: bool | None = None  # 防坠网 fitted
    anti_fall_required: bool | None = None
    in_core_area: bool | None = None
    defect: str | None = None  # docs/domain.md §2.5 code, if the ledger lists one
    heartbeat_s: int | None = Field(None, ge=60, le=86400)


SPEC = KindSpec(
    name="manhole",
    title="窨井盖 manhole covers",
    reading=ManholeReading,
    attrs=ManholeAttrs,
    # Heartbeat 24 h (configurable 1–24 h per cover: attrs.heartbeat_s); level and gas
    # modules every 15–60 min; offline after 2 × heartbeat + 1 h (MH_OFFLINE).
    cadence=Cadence(
        report_s=1800, heartbeat_s=86400, fast_s=None, grace_s=3600, source="§2.2, §2.3 [P]"
    ),
    rollups=(
        agg("max_tilt_deg"),
        agg("avg_tilt_deg"),
        agg("open_count", "count(*) FILTER (WHERE cover_open)"),
        agg("min_water_distance_m"),
        agg("max_ch4_pct_lel"),
        agg("max_h2s_ppm", device_only=True),
        agg("max_co_ppm", device_only=True),
        agg("min_o2_pct_vol", device_only=True),
        agg("min_battery_v"),
    ),
)
