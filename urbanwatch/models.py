"""The shared vocabulary: device kinds, one reading model per kind, registry shapes.

Reading models are the MQTT payload contract (docs/mqtt.md). Their bounds reject values that
are physically impossible or outside any sensor's range (DOMAIN.md §6), not alarm thresholds:
those belong to alert rules. Every reading model maps 1:1 onto its table `<kind>_readings`
(tests check the columns match).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from operator import itemgetter
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)


class Kind(StrEnum):
    MANHOLE = "manhole"
    WATERLOG = "waterlog"
    STREETLIGHT = "streetlight"
    WATERMETER = "watermeter"


KINDS: tuple[str, ...] = tuple(k.value for k in Kind)

# A device id is one MQTT topic level: no '/', '+', '#', and short enough to index well.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]


def _epoch_ms_to_datetime(value: Any) -> Any:
    """The contract allows `ts` as epoch milliseconds; ISO strings pass through."""
    if isinstance(value, bool):
        raise ValueError("must be an ISO-8601 string with offset or epoch milliseconds")
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_epoch_ms_to_datetime)]


def _bounded(lo: float, hi: float) -> Any:
    return Field(None, ge=lo, le=hi)


class Reading(BaseModel):
    """Fields common to every kind. Unknown fields are kept (in the `extra` column).

    A reading must also carry at least one of its kind's PRIMARY fields: check a validated
    reading with `missing_measurement` (ingest does, for every reading). It is not a model
    validator because a Python validator costs ingest a third of its validation time."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False)
    # At least one of these must be present, or the message carries no measurement.
    PRIMARY: ClassVar[tuple[str, ...]] = ()

    ts: Timestamp


class ManholeReading(Reading):
    """Smart cover monitor, DOMAIN.md §2.2."""

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
    tilt_deg: float | None = _bounded(0, 180)
    tilt_baseline_deg: float | None = _bounded(0, 90)
    cover_open: bool | None = None
    water_distance_m: float | None = _bounded(0, 20)
    water_level_m: float | None = _bounded(0, 20)
    water_over_limit: bool | None = None
    vibration_events: int | None = _bounded(0, 1_000_000)
    ch4_pct_lel: float | None = _bounded(0, 100)
    h2s_ppm: float | None = _bounded(0, 1000)
    co_ppm: float | None = _bounded(0, 5000)
    o2_pct_vol: float | None = _bounded(0, 100)
    temp_c: float | None = _bounded(-60, 125)
    battery_v: float | None = _bounded(0, 5)
    battery_pct: float | None = _bounded(0, 100)
    rsrp_dbm: float | None = _bounded(-160, -20)
    snr_db: float | None = _bounded(-40, 50)


class WaterlogReading(Reading):
    """Road ponding sensor or rain gauge, DOMAIN.md §3.2."""

    PRIMARY: ClassVar[tuple[str, ...]] = ("depth_cm", "water_present", "rain_mm")
    depth_cm: float | None = _bounded(0, 500)
    water_present: bool | None = None
    rain_mm: float | None = _bounded(0, 500)
    rain_intensity_mm_h: float | None = _bounded(0, 1000)
    temp_c: float | None = _bounded(-60, 125)
    battery_v: float | None = _bounded(0, 5)
    battery_pct: float | None = _bounded(0, 100)
    rsrp_dbm: float | None = _bounded(-160, -20)


class StreetlightReading(Reading):
    """Single-lamp controller, DOMAIN.md §4.2."""

    PRIMARY: ClassVar[tuple[str, ...]] = (
        "power_state",
        "active_power_w",
        "supply_voltage_v",
        "supply_current_a",
    )
    power_state: Literal["on", "off", "low", "bootingUp"] | None = None
    active_power_w: float | None = _bounded(0, 2000)
    supply_voltage_v: float | None = _bounded(0, 300)
    supply_current_a: float | None = _bounded(0, 20)
    power_factor: float | None = _bounded(0, 1)
    light_state_pct: float | None = _bounded(0, 100)
    active_energy_kwh: float | None = _bounded(0, 1e9)
    lamp_operating_hours: float | None = _bounded(0, 1e6)
    controller_temp_c: float | None = _bounded(-60, 150)
    leakage_current_ma: float | None = _bounded(0, 1000)
    supply_loss_count: int | None = _bounded(0, 2_000_000_000)
    rsrp_dbm: float | None = _bounded(-160, -20)


class WatermeterReading(Reading):
    """DMA inlet/outlet flow meter, customer meter or pressure point, DOMAIN.md §5.4."""

    PRIMARY: ClassVar[tuple[str, ...]] = (
        "flow_m3_h",
        "fwd_total_m3",
        "rev_total_m3",
        "pressure_mpa",
    )
    # Reverse flow is reported through rev_total_m3; a negative rate is impossible (§6).
    flow_m3_h: float | None = _bounded(0, 10_000)
    fwd_total_m3: float | None = _bounded(0, 1e12)
    rev_total_m3: float | None = _bounded(0, 1e12)
    pressure_mpa: float | None = _bounded(0, 2.5)
    battery_v: float | None = _bounded(0, 5)
    rsrp_dbm: float | None = _bounded(-160, -20)


READING_MODELS: dict[str, type[Reading]] = {
    Kind.MANHOLE: ManholeReading,
    Kind.WATERLOG: WaterlogReading,
    Kind.STREETLIGHT: StreetlightReading,
    Kind.WATERMETER: WatermeterReading,
}


# Every kind has several PRIMARY fields, so each getter returns a tuple.
PRIMARY_VALUES = {kind: itemgetter(*model.PRIMARY) for kind, model in READING_MODELS.items()}
assert all(len(model.PRIMARY) > 1 for model in READING_MODELS.values())


def missing_measurement(kind: str, fields: Mapping[str, Any]) -> str | None:
    """Why a validated reading (`fields`: its `__dict__`) carries no measurement, or None."""
    values = PRIMARY_VALUES[kind](fields)
    if values.count(None) < len(values):
        return None
    return f"no measurement: expected at least one of {', '.join(READING_MODELS[kind].PRIMARY)}"


def measurement_fields(kind: str) -> tuple[str, ...]:
    """The model's own fields after `ts`, in table column order."""
    return tuple(name for name in READING_MODELS[kind].model_fields if name != "ts")


# --- Device registry ----------------------------------------------------------------


class DeviceStatus(StrEnum):
    PLANNED = "planned"
    INSTALLED = "installed"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


class Attrs(BaseModel):
    """Free attributes of a device; the known ones are typed, any others are kept."""

    model_config = ConfigDict(extra="allow")
    road: str | None = None
    segment: str | None = None


class ManholeAttrs(Attrs):
    cover_use: str | None = None  # 雨水 / 污水 / 供水 / 燃气 / 电力 / 通信 / 热力 …
    load_class: Literal["A15", "B125", "C250", "D400", "E600", "F900"] | None = None
    safety_net: bool | None = None  # 防坠网 fitted
    anti_fall_required: bool | None = None
    in_core_area: bool | None = None
    defect: str | None = None  # DOMAIN.md §2.5 code, if the ledger lists one
    heartbeat_s: int | None = Field(None, ge=60, le=86400)


class WaterlogAttrs(Attrs):
    role: Literal["depth", "rain"] | None = None
    point_id: str | None = None
    point_name: str | None = None
    remediation_status: Literal["pending", "in_progress", "remediated", "verified"] | None = None
    remediated_at: date | None = None


class StreetlightAttrs(Attrs):
    lamp_type: Literal["LED", "HPS", "MH", "CFL", "other"] | None = None
    rated_power_w: float | None = Field(None, gt=0, le=2000)
    road_class: str | None = None
    circuit_id: str | None = None
    cabinet_id: str | None = None
    pole_id: str | None = None


class WatermeterAttrs(Attrs):
    dma_id: str | None = None
    meter_role: Literal["inlet", "outlet", "customer", "pressure"] | None = None


ATTRS_MODELS: dict[str, type[Attrs]] = {
    Kind.MANHOLE: ManholeAttrs,
    Kind.WATERLOG: WaterlogAttrs,
    Kind.STREETLIGHT: StreetlightAttrs,
    Kind.WATERMETER: WatermeterAttrs,
}

Latitude = Annotated[float, Field(ge=-90, le=90)]
Longitude = Annotated[float, Field(ge=-180, le=180)]


class DeviceBase(BaseModel):
    kind: Kind
    district: str = Field(min_length=1, max_length=64)
    lat: Latitude
    lon: Longitude
    status: DeviceStatus = DeviceStatus.ACTIVE
    installed_at: date | None = None
    commissioned_at: date | None = None
    attrs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _attrs_fit_kind(self) -> DeviceBase:
        checked = ATTRS_MODELS[self.kind].model_validate(self.attrs)
        object.__setattr__(self, "attrs", checked.model_dump(mode="json", exclude_none=True))
        return self


class DeviceCreate(DeviceBase):
    model_config = ConfigDict(extra="forbid")
    device_id: DeviceId


class DeviceUpdate(BaseModel):
    """PATCH body: only the fields given change; `attrs` keys are merged."""

    model_config = ConfigDict(extra="forbid")
    district: str | None = Field(None, min_length=1, max_length=64)
    lat: Latitude | None = None
    lon: Longitude | None = None
    status: DeviceStatus | None = None
    installed_at: date | None = None
    commissioned_at: date | None = None
    attrs: dict[str, Any] | None = None


class DevicePublic(DeviceBase):
    device_id: str
    created_at: datetime
    updated_at: datetime


class DevicesPublic(BaseModel):
    data: list[DevicePublic]
    count: int  # all matches, not only this page
    limit: int
    offset: int


class DistrictPublic(BaseModel):
    code: str
    name_zh: str
    name_en: str
    district_class: Literal["central", "county"]


def describe_errors(error: Any, prefix: str = "") -> str:
    """A pydantic ValidationError as `field: message; …`, naming every failing field."""
    parts = []
    for item in error.errors(include_url=False):
        loc = ".".join(str(p) for p in item["loc"]) or "payload"
        parts.append(f"{prefix}{loc}: {item['msg']}")
    return "; ".join(parts)
