"""Validate one reading of a known kind: the pure core under ingest/parse.py.

No I/O and no clock: the caller passes the receive time (`Window`). A refusal raises
`Refused` with a reason code and a reason naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

from pydantic import ValidationError, create_model

from ingest.extras import ExtraRefused, check_extras, exact_object
from urbanwatch.kinds import PRIMARY_VALUES, READING_MODELS, measurement_fields, missing_measurement
from urbanwatch.models import describe_errors

# Speed (bench/README.md, profiling): the schema validator directly skips `model_validate`'s
# Python wrapper (~0.6 µs a reading), and one itemgetter builds a row's measurement columns
# from the validated model's __dict__ in C instead of a list comprehension. The validated
# models also declare the address fields a body may repeat (`device_id`, `kind`), so they
# stay out of `extra` without copying every body to pop them; the caller checks them.
_VALIDATORS = {
    kind: create_model(  # type: ignore[call-overload]
        f"{model.__name__}Body",
        __base__=model,
        device_id=(str | None, None),
        kind=(str | None, None),
    ).__pydantic_validator__
    for kind, model in READING_MODELS.items()
}
# Every kind has several fields, so each itemgetter returns a tuple.
_COLUMNS: dict[str, Callable[[dict[str, Any]], tuple[Any, ...]]] = {
    kind: itemgetter(*measurement_fields(kind)) for kind in READING_MODELS
}
_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


@dataclass(frozen=True)
class Limits:
    prefix: str
    max_payload_bytes: int = 256 * 1024
    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta | None = timedelta(hours=72)


class Row(NamedTuple):  # a NamedTuple: built for every reading, ~2x cheaper than a dataclass
    """A validated reading in table column order (ts, device_id, received_at, fields…,
    extra), and its position in a gateway batch (None for a single reading)."""

    kind: str
    values: tuple[Any, ...]
    element: int | None = None


class Refused(Exception):
    """One reading (or message) refused, with a reason code and a reason naming the field."""

    def __init__(self, code: str, reason: str, device_id: str | None = None):
        super().__init__(reason)
        self.code, self.reason, self.device_id = code, reason, device_id


def error_code(exc: ValidationError) -> str:
    types = {e["type"] for e in exc.errors()}
    if "missing" in types:
        return "missing_field"
    if types <= _RANGE_ERRORS:
        return "out_of_range"
    return "invalid_field"


class Window(NamedTuple):
    """When one message arrived and the `ts` range it accepts, computed once per message:
    comparing `ts` with two precomputed bounds is exact and cheaper than subtracting
    datetimes for every reading of a gateway batch."""

    received_at: datetime
    latest: datetime
    earliest: datetime | None
    limits: Limits

    @classmethod
    def at(cls, received_at: datetime, limits: Limits) -> Window:
        earliest = None if limits.max_age is None else received_at - limits.max_age
        return cls(received_at, received_at + limits.max_future, earliest, limits)


def check_time(ts: datetime, window: Window) -> None:
    if ts > window.latest:  # ⇔ ts - received_at > max_future
        limits = window.limits
        ahead = (ts - window.received_at).total_seconds()
        raise Refused(
            "future_timestamp",
            f"ts: {ts.isoformat()} is {ahead:.0f} s ahead of the "
            f"server clock (limit {limits.max_future.total_seconds():.0f} s)",
        )
    if window.earliest is not None and ts < window.earliest:  # ⇔ received_at - ts > max_age
        raise Refused(
            "stale_timestamp",
            f"ts: {ts.isoformat()} is older than the accepted "
            f"{window.limits.max_age.total_seconds() / 3600:g} h",  # type: ignore[union-attr]
        )


_OUT_OF_RANGE = "ts: the offset takes it outside years 1–9999 in UTC"


def outside_window(ts: datetime, window: Window) -> bool:
    """True when `ts` is outside the accepted window (Refused when it has no UTC instant)."""
    try:
        return ts > window.latest or (window.earliest is not None and ts < window.earliest)
    except OverflowError:  # comparing converts to UTC: 0001-01-01T00:00+01:00 has no such time
        raise Refused("invalid_field", _OUT_OF_RANGE) from None


def checked_extras(
    extras: dict[str, Any], exact: Callable[[], dict[str, Any]], where: str = ""
) -> dict[str, Any]:
    """`check_extras` with its refusal turned into `Refused` (reason prefixed `where`)."""
    try:
        return check_extras(extras, exact)
    except ExtraRefused as exc:
        raise Refused(exc.code, f"{where}{exc.path}: {exc.message}") from None


def parse_reading(
    kind: str,
    device_id: str,
    body: dict[str, Any],
    window: Window,
    index: int | None = None,
    payload: bytes | None = None,
) -> Row:
    """Validate one reading; raises Refused (reasons prefixed `[index].` for an element of a
    gateway batch). `payload` is the message it came from, parsed again exactly for the rare
    extra field orjson may have rounded."""
    try:
        reading = _VALIDATORS[kind].validate_python(body)
    except ValidationError as exc:
        where = "" if index is None else f"[{index}]."  # built only when refusing
        raise Refused(error_code(exc), describe_errors(exc, where), device_id) from None
    fields = reading.__dict__
    ts = fields["ts"]
    primary = PRIMARY_VALUES[kind](fields)
    try:
        # missing_measurement's test and check_time's bounds, inline: the happy path (every
        # reading) pays no call; a refusal is described by the functions themselves
        refused = (
            primary.count(None) == len(primary)
            or ts > window.latest
            or (window.earliest is not None and ts < window.earliest)
        )
    except OverflowError:  # comparing converts to UTC: 0001-01-01T00:00+01:00 has no such time
        where = "" if index is None else f"[{index}]."
        raise Refused("invalid_field", where + _OUT_OF_RANGE, device_id) from None
    if refused:
        where = "" if index is None else f"[{index}]."
        missing = missing_measurement(kind, fields)
        if missing is not None:
            raise Refused("no_measurement", f"{where}payload: {missing}", device_id)
        try:
            check_time(ts, window)
        except Refused as exc:
            raise Refused(exc.code, where + exc.reason, device_id) from None
    extra = reading.__pydantic_extra__  # what `model_extra` returns, without the property
    if extra:
        try:
            extra = checked_extras(
                extra, (lambda: body) if payload is None else lambda: exact_object(payload, index)
            )
        except Refused as exc:
            where = "" if index is None else f"[{index}]."
            raise Refused(exc.code, where + exc.reason, device_id) from None
    return Row(
        kind, (ts, device_id, window.received_at, *_COLUMNS[kind](fields), extra or None), index
    )
