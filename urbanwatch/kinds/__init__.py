"""Device kinds: one module per kind holds everything about it (`KindSpec`, kinds/base.py).

To add a kind: write `urbanwatch/kinds/<kind>.py`, list it in `SPECS` below, and run
`python -m urbanwatch.schema new-kind <kind>` for its migration (DEVELOPERS.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from operator import itemgetter
from typing import Any

from urbanwatch.kinds import manhole, streetlight, waterlog, watermeter
from urbanwatch.kinds.base import (
    TIMESTAMP_RULE,
    Aggregate,
    Attrs,
    Cadence,
    KindSpec,
    Reading,
    Timestamp,
    refuse_ambiguous_timestamp,
)

SPECS: dict[str, KindSpec] = {
    spec.name: spec for spec in (manhole.SPEC, waterlog.SPEC, streetlight.SPEC, watermeter.SPEC)
}


class Kind(StrEnum):
    MANHOLE = "manhole"
    WATERLOG = "waterlog"
    STREETLIGHT = "streetlight"
    WATERMETER = "watermeter"


assert [k.value for k in Kind] == list(SPECS), "Kind must list SPECS, in order"
KINDS: tuple[str, ...] = tuple(SPECS)
READING_MODELS: dict[str, type[Reading]] = {k: s.reading for k, s in SPECS.items()}
ATTRS_MODELS: dict[str, type[Attrs]] = {k: s.attrs for k, s in SPECS.items()}

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
    return SPECS[kind].measurement_fields()


__all__ = [
    "ATTRS_MODELS",
    "KINDS",
    "PRIMARY_VALUES",
    "READING_MODELS",
    "SPECS",
    "TIMESTAMP_RULE",
    "Aggregate",
    "Attrs",
    "Cadence",
    "Kind",
    "KindSpec",
    "Reading",
    "Timestamp",
    "measurement_fields",
    "missing_measurement",
    "refuse_ambiguous_timestamp",
]
