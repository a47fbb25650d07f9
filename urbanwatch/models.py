"""Registry and API shapes: devices and districts. The reading contract of each device kind
lives with the kind (`urbanwatch/kinds/`)."""

from __future__ import annotations

import re
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from urbanwatch.kinds import ATTRS_MODELS, Kind
from urbanwatch.storable import NO_NUL, dotted, find_unstorable

# A device id is one MQTT topic level: no '/', '+', '#', and short enough to index well.
DEVICE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
DEVICE_ID_RE = re.compile(DEVICE_ID_PATTERN)
DeviceId = Annotated[str, StringConstraints(pattern=DEVICE_ID_PATTERN)]


class DeviceStatus(StrEnum):
    PLANNED = "planned"
    INSTALLED = "installed"
    ACTIVE = "active"
    MAINTENANCE = "maintenance"
    RETIRED = "retired"


Latitude = Annotated[float, Field(ge=-90, le=90)]
# PostgreSQL text and jsonb cannot hold NUL (\u0000): refused here, naming the field.
District = Annotated[str, Field(min_length=1, max_length=64, pattern=NO_NUL)]


def refuse_nul(value: Any, path: str = "") -> Any:
    """`value` unchanged, or a ValueError naming the first key path PostgreSQL cannot store
    (a NUL in text or a key, a NaN or an infinity)."""
    found = find_unstorable(value, (path,) if path else ())
    if found:
        raise ValueError(f"{dotted(found[0])}: {found[1]}")
    return value


Longitude = Annotated[float, Field(ge=-180, le=180)]


class DeviceBase(BaseModel):
    kind: Kind
    district: District
    lat: Latitude
    lon: Longitude
    status: DeviceStatus = DeviceStatus.ACTIVE
    installed_at: date | None = None
    commissioned_at: date | None = None
    # The gateway the device reports through, if any: only it may report for the device.
    gateway_id: DeviceId | None = None
    attrs: dict[str, Any] = Field(default_factory=dict)

    _attrs_storable = field_validator("attrs")(refuse_nul)

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
    district: District | None = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    status: DeviceStatus | None = None
    installed_at: date | None = None
    commissioned_at: date | None = None
    gateway_id: DeviceId | None = None
    attrs: dict[str, Any] | None = None

    _attrs_storable = field_validator("attrs")(refuse_nul)


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
