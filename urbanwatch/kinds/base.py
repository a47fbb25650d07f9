"""What every device kind is made of: the reading contract, the timestamp rule, the registry
attributes, the reporting cadence and the hourly rollup aggregates (`KindSpec`).

One module per kind (`urbanwatch/kinds/<kind>.py`) fills these in; everything else — the
tables and rollups (`urbanwatch/schema.py`), ingest's validation, the simulators' cadence,
offline detection — is derived from that one place.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

# --- timestamps ---------------------------------------------------------------------

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# datetime's own range, in epoch milliseconds (years 1 to 9999).
_MIN_MS = (datetime(1, 1, 2, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_MAX_MS = (datetime(9999, 12, 30, tzinfo=UTC) - _EPOCH) // timedelta(milliseconds=1)
_NUMERIC_TEXT = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
TIMESTAMP_RULE = "must be an ISO-8601 string with a UTC offset, or epoch milliseconds as a number"


def refuse_ambiguous_timestamp(value: Any) -> Any:
    """The contract's `ts` (docs/mqtt.md), before pydantic's own datetime parsing: a JSON
    number is epoch milliseconds (converted here, within years 1–9999); a numeric *string* is
    refused (seconds or milliseconds? it cannot say), and so is a boolean; an ISO-8601 string
    goes on to pydantic, which requires the offset. Kept cheap: it runs for every reading."""
    if type(value) is str:
        if value[4:5] == "-" or not _NUMERIC_TEXT.match(value):  # YYYY-…: the usual case
            return value
        raise ValueError(f"{TIMESTAMP_RULE}, not a numeric string")
    if isinstance(value, bool):
        raise ValueError(TIMESTAMP_RULE)
    if isinstance(value, int | float):
        if not (math.isfinite(value) and _MIN_MS <= value <= _MAX_MS):
            raise ValueError(f"{TIMESTAMP_RULE}; {value!r} ms is outside years 1–9999")
        return _EPOCH + timedelta(milliseconds=value)
    return value


# Strict like every field, except that pydantic parses the ISO string (in Rust: a reading's
# cheapest path). An offset that takes the instant outside years 1–9999 in UTC is caught
# where the time is compared (ingest/reading.py).
Timestamp = Annotated[
    AwareDatetime, Field(strict=False), BeforeValidator(refuse_ambiguous_timestamp)
]


# --- readings -----------------------------------------------------------------------


def bounded(lo: float, hi: float) -> Any:
    """An optional measurement with the physically possible range of its sensor."""
    return Field(None, ge=lo, le=hi)


class Reading(BaseModel):
    """Fields common to every kind. Unknown fields are kept (in the `extra` column).

    Strict types (docs/mqtt.md "Types"): a number is a JSON number (`"1.5"` and `true` are
    refused), a boolean is `true`/`false` (`1`, `"yes"` are refused), an integer field takes
    only integers. A reading must also carry at least one of its kind's PRIMARY fields: check
    a validated reading with `missing_measurement` (ingest does, for every reading). It is not
    a model validator because a Python validator costs ingest a third of its validation time."""

    model_config = ConfigDict(frozen=True, extra="allow", allow_inf_nan=False, strict=True)
    # At least one of these must be present, or the message carries no measurement.
    PRIMARY: ClassVar[tuple[str, ...]] = ()

    ts: Timestamp


class Attrs(BaseModel):
    """Free attributes of a device in the registry; the known ones are typed, others kept."""

    model_config = ConfigDict(extra="allow")
    road: str | None = None
    segment: str | None = None


# --- cadence and rollups --------------------------------------------------------------


@dataclass(frozen=True)
class Cadence:
    """How often a device of the kind reports (docs/domain.md, each kind's telemetry section):
    what the simulators send and what offline detection expects."""

    report_s: int  # the usual interval while the device is active (lamp on, module fitted)
    heartbeat_s: int  # the longest regular gap: the quiet-mode heartbeat
    fast_s: int | None  # the interval in the kind's alert mode (rain mode), if it has one
    grace_s: int  # slack before a silent device counts as offline
    source: str  # evidence tag and section of docs/domain.md
    urgent_s: int | None = None  # the interval at alarm level (a flooded point), if faster

    def offline_after_s(self, heartbeat_s: int | None = None) -> int:
        """docs/domain.md §0: online = any message within 2 × heartbeat + grace [P]."""
        return 2 * (heartbeat_s or self.heartbeat_s) + self.grace_s


Level = Literal["device", "district"]


@dataclass(frozen=True)
class Aggregate:
    """One column of the hourly rollups: `expr AS name`. Its SQL type is what PostgreSQL
    gives the expression (urbanwatch/schema.py works it out from the reading model), unless
    `sql_type` says otherwise."""

    name: str
    expr: str
    sql_type: str | None = None
    levels: tuple[Level, ...] = ("device", "district")


def agg(name: str, expr: str | None = None, device_only: bool = False) -> Aggregate:
    """`agg("max_tilt_deg")` is `max(tilt_deg) AS max_tilt_deg`."""
    if expr is None:
        func, _, column = name.partition("_")
        expr = f"{func}({column})"
    return Aggregate(name, expr, None, ("device",) if device_only else ("device", "district"))


@dataclass(frozen=True)
class KindSpec:
    name: str
    title: str  # Chinese first, for people
    reading: type[Reading]
    attrs: type[Attrs]
    cadence: Cadence
    rollups: tuple[Aggregate, ...]

    def measurement_fields(self) -> tuple[str, ...]:
        """The reading model's own fields after `ts`, in table column order."""
        return tuple(name for name in self.reading.model_fields if name != "ts")

    def rollup_columns(self, level: Level) -> tuple[Aggregate, ...]:
        """`n` (readings in the hour) first, then the kind's aggregates of that level."""
        return (
            Aggregate("n", "count(*)", "bigint"),
            *(a for a in self.rollups if level in a.levels),
        )
