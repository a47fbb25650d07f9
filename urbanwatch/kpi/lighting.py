"""Street-lighting KPIs (docs/domain.md §4.5): gather the ledger facts, alarms and readings, count
with the pure formulas of kpi/lighting_formulas.py, and register one spec per KPI."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import psycopg

from urbanwatch.kpi.base import KpiSpec, KpiValue, Scope, count, register
from urbanwatch.kpi.lighting_formulas import (
    DARK_DEFAULTS,
    INTACT_DEFAULTS,
    RATE_DEFAULTS,
    FaultIndex,
    dark_segments,
    has_open_defect,
    in_service,
    intact_rate,
    lamp_as_of,
    led_share,
    lighting_rate,
    local_at,
    monthly_mean,
    night_samples,
)
from urbanwatch.queries import lighting_ledger as q

# --- specs: gather, then count ------------------------------------------------------------


def _day_faults(conn: psycopg.Connection, first: date, last: date) -> list[q.FaultFact]:
    start = local_at(first, "00:00") - timedelta(days=2)  # dark segments look 24 h back
    return q.faults(conn, start, local_at(last + timedelta(days=1), "00:00"))


def _intact(lamps_only: bool, monthly: bool) -> Any:
    def compute(
        conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
    ) -> KpiValue:
        first = as_of.replace(day=1) if monthly else as_of
        facilities = q.facilities(conn, scope.districts)
        faults = _day_faults(conn, first, as_of)
        days = [first + timedelta(days=i) for i in range((as_of - first).days + 1)]
        values = [intact_rate(facilities, faults, local_at(d, config["snapshot_at"]),
                              lamps_only=lamps_only) for d in days]  # fmt: skip
        if not monthly:
            return KpiValue(**{**values[0].__dict__, "defaults": dict(config)})
        mean = monthly_mean(values)
        return KpiValue(**{**mean.__dict__, "defaults": dict(config)})

    return compute


def nightly_rate(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> KpiValue:
    lamps = [f for f in q.facilities(conn, scope.districts) if f.facility_type == "lamp"]
    devices = [f.device_id for f in lamps if f.device_id]
    lookback = timedelta(minutes=float(config["lookback_min"]))
    values = [lighting_rate(lamps, q.samples(conn, devices, at, lookback), at, config)
              for at in night_samples(as_of, config)]  # fmt: skip
    known = [v for v in values if v.value is not None]
    if not known:
        return KpiValue(None, defaults=dict(config))
    excluded = tuple(sorted({e for v in values for e in v.exclusions}))
    return KpiValue(sum(v.value or 0 for v in known) / len(known),
                    sum(v.numerator or 0 for v in known), sum(v.denominator or 0 for v in known),
                    excluded, dict(config), note=f"mean of {len(known)} samples")  # fmt: skip


def _monthly_rate(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> KpiValue:
    days = [as_of.replace(day=1) + timedelta(days=i) for i in range(as_of.day)]
    mean = monthly_mean([nightly_rate(conn, d, scope, config) for d in days])
    return KpiValue(**{**mean.__dict__, "defaults": dict(config)})


def _led(by_power: bool) -> Any:
    def compute(
        conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
    ) -> KpiValue:
        return led_share(q.facilities(conn, scope.districts), as_of, by_power=by_power)

    return compute


def _dark_list(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    at = local_at(as_of + timedelta(days=1), "00:00") - timedelta(microseconds=1)
    faults = _day_faults(conn, as_of, as_of)
    return dark_segments(
        q.segments(conn, scope.districts), q.facilities(conn, None), faults, at, config
    )


def _dark(km: bool) -> Any:
    def compute(
        conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
    ) -> KpiValue:
        found = _dark_list(conn, as_of, scope, config)
        n = sum(d["length_km"] for d in found) if km else len(found)
        return count(n, exclusions=(), defaults=config)

    return compute


def _broken_list(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The facilities not intact at the day's snapshot, with the alarms and defect why."""
    at = local_at(as_of, config["snapshot_at"])
    index = FaultIndex(_day_faults(conn, as_of, as_of))
    out = []
    for f in q.facilities(conn, scope.districts):
        if not in_service(f, as_of):
            continue
        alarms = [a.rule_id for a in index.open_at(f, at)]
        defect = f.defect if has_open_defect(f, as_of) else None
        if alarms or defect:
            out.append({"facility_id": f.facility_id, "type": f.facility_type,
                        "district": f.district, "alarms": alarms, "defect": defect})  # fmt: skip
    return out


def _not_led(
    conn: psycopg.Connection, as_of: date, scope: Scope, config: Mapping[str, Any]
) -> list[dict[str, Any]]:
    out = []
    for f in q.facilities(conn, scope.districts):
        kind, power = lamp_as_of(f, as_of)
        if f.facility_type == "lamp" and in_service(f, as_of) and kind != "LED":
            out.append({"facility_id": f.facility_id, "district": f.district,
                        "lamp_type": kind, "rated_power_w": power})  # fmt: skip
    return out


# The counted families each KPI reads (KpiSpec.inputs): the lighting ledger, and lamp alarms.
LEDGER = frozenset({"lighting"})
WITH_ALARMS = frozenset({"lighting", "alerts"})


def _spec(
    key: str, zh: str, en: str, compute: Any, unit: Any = "%", better: Any = "higher", **kw: Any
) -> None:
    register(KpiSpec(key, "lighting", zh, en, unit, better, "§4.5", compute, **kw))


_spec(
    "lighting.facility_intact_rate",
    "功能性照明设施完好率(灯具,月)",
    "facility intact rate, lamps (month)",
    _intact(True, True),
    items=_broken_list,
    defaults=INTACT_DEFAULTS,
    reads_readings=False,
    inputs=WITH_ALARMS,
)
_spec(
    "lighting.facility_intact_rate_all",
    "功能性照明设施完好率(全部设施,月)",
    "facility intact rate, all facilities (month)",
    _intact(False, True),
    items=_broken_list,
    defaults=INTACT_DEFAULTS,
    reads_readings=False,
    inputs=WITH_ALARMS,
)
_spec(
    "lighting.facility_intact_rate_daily",
    "功能性照明设施完好率(灯具,日22:00)",
    "facility intact rate, lamps (22:00 snapshot)",
    _intact(True, False),
    items=_broken_list,
    defaults=INTACT_DEFAULTS,
    reads_readings=False,
    inputs=WITH_ALARMS,
)
_spec(
    "lighting.lighting_rate",
    "亮灯率(夜)",
    "lighting rate (night)",
    nightly_rate,
    defaults=RATE_DEFAULTS,
    inputs=LEDGER,
)
_spec(
    "lighting.lighting_rate_monthly",
    "亮灯率(月)",
    "lighting rate (month)",
    _monthly_rate,
    defaults=RATE_DEFAULTS,
    inputs=LEDGER,
)
_spec(
    "lighting.led_share",
    "LED占比(数量)",
    "LED share (count)",
    _led(False),
    items=_not_led,
    reads_readings=False,
    inputs=LEDGER,
)
_spec(
    "lighting.led_share_power",
    "LED占比(功率)",
    "LED share (installed power)",
    _led(True),
    items=_not_led,
    reads_readings=False,
    inputs=LEDGER,
)
_spec(
    "lighting.dark_segments_open",
    "照明盲点暗区(路段数)",
    "open dark segments (count)",
    _dark(False),
    unit="count",
    better="lower",
    items=_dark_list,
    defaults=DARK_DEFAULTS,
    reads_readings=False,
    inputs=WITH_ALARMS,
)
_spec(
    "lighting.dark_segments_km",
    "照明盲点暗区(公里)",
    "open dark segments (km)",
    _dark(True),
    unit="km",
    better="lower",
    items=_dark_list,
    defaults=DARK_DEFAULTS,
    reads_readings=False,
    inputs=WITH_ALARMS,
)
