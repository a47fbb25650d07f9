"""Pure parsing: (topic, payload, receive time, registry) -> rows, dead letters, status events.

No I/O and no clock here; the worker passes `received_at` and the registry snapshot in.
Every refusal becomes a DeadLetter whose reason names the field, so nothing is dropped
silently and one bad element of a gateway batch never takes its good siblings with it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from urbanwatch.models import (
    DEVICE_ID_RE,
    PRIMARY_VALUES,
    READING_MODELS,
    Reading,
    Timestamp,
    describe_errors,
    measurement_fields,
    missing_measurement,
)
from urbanwatch.topics import GATEWAY, parse_topic

FIELDS = {kind: measurement_fields(kind) for kind in READING_MODELS}
# Speed (bench/README.md, profiling): the schema validator directly skips `model_validate`'s
# Python wrapper (~0.6 µs a reading), and one itemgetter builds a row's measurement columns
# from the validated model's __dict__ in C instead of a list comprehension. The validated
# models also declare the address fields a body may repeat (`device_id`, `kind`), so they
# stay out of `extra` without copying every body to pop them.
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
    kind: itemgetter(*fields) for kind, fields in FIELDS.items()
}
assert all(len(fields) > 1 for fields in FIELDS.values())
# A status word, in a JSON status message or as the bare text of a last will.
STATUS_PATTERN = r"^[a-z_]{1,32}$"
_PLAIN_STATUS = re.compile(STATUS_PATTERN.encode())
_RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal"})


@dataclass(frozen=True)
class Limits:
    prefix: str
    max_payload_bytes: int = 256 * 1024
    max_future: timedelta = timedelta(minutes=5)
    max_age: timedelta | None = timedelta(hours=72)


class Row(NamedTuple):  # a NamedTuple: built for every reading, ~2x cheaper than a dataclass
    """A validated reading in table column order: ts, device_id, received_at, fields…, extra."""

    kind: str
    values: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    received_at: datetime
    reason_code: str
    reason: str
    device_id: str | None = None
    element_index: int | None = None


@dataclass(frozen=True, slots=True)
class StatusEvent:
    device_id: str
    ts: datetime
    status: str
    received_at: datetime
    detail: dict[str, Any] | None


@dataclass
class Parsed:
    rows: list[Row] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    status: list[StatusEvent] = field(default_factory=list)


class StatusMessage(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    status: str = Field(pattern=STATUS_PATTERN)
    ts: Timestamp | None = None


class Refused(Exception):
    """One reading (or message) refused, with a reason code and a reason naming the field."""

    def __init__(self, code: str, reason: str, device_id: str | None = None):
        super().__init__(reason)
        self.code, self.reason, self.device_id = code, reason, device_id


def _error_code(exc: ValidationError) -> str:
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


def _check_time(ts: datetime, window: Window) -> None:
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


def parse_reading(
    kind: str, device_id: str, body: dict[str, Any], window: Window, index: int | None = None
) -> Row:
    """Validate one reading of a known kind; raises Refused (reasons prefixed `[index].`
    for an element of a gateway batch)."""
    try:
        reading: Reading = _VALIDATORS[kind].validate_python(body)
    except ValidationError as exc:
        where = "" if index is None else f"[{index}]."  # built only when refusing
        raise Refused(_error_code(exc), describe_errors(exc, where), device_id) from None
    fields = reading.__dict__
    ts = fields["ts"]
    primary = PRIMARY_VALUES[kind](fields)
    if (  # missing_measurement's test and _check_time's bounds, inline: the happy path
        # (every reading) pays no call; a refusal is described by the functions themselves
        primary.count(None) == len(primary)
        or ts > window.latest
        or (window.earliest is not None and ts < window.earliest)
    ):
        where = "" if index is None else f"[{index}]."
        missing = missing_measurement(kind, fields)
        if missing is not None:
            raise Refused("no_measurement", f"{where}payload: {missing}", device_id)
        try:
            _check_time(ts, window)
        except Refused as exc:
            raise Refused(exc.code, where + exc.reason, device_id) from None
    return Row(
        kind,
        (
            ts,
            device_id,
            window.received_at,
            *_COLUMNS[kind](fields),
            reading.__pydantic_extra__ or None,  # what `model_extra` returns, without the property
        ),
    )


def _resolve_kind(device_id: str, kinds: Mapping[str, str], claimed: str | None) -> str:
    kind = kinds.get(device_id)
    if kind is None:
        raise Refused(
            "unknown_device", f"device_id: {device_id!r} is not in the registry", device_id
        )
    if claimed is not None and claimed != kind:
        raise Refused(
            "kind_mismatch",
            f"kind: {device_id!r} is registered as {kind}, the message says {claimed}",
            device_id,
        )
    return kind


def parse_message(
    topic: str,
    payload: bytes,
    received_at: datetime,
    kinds: Mapping[str, str],
    limits: Limits,
    out: Parsed | None = None,
) -> Parsed:
    """Turn one MQTT message into rows, dead letters and status events, added to `out`
    (a new Parsed by default; a worker passes one for a whole batch). Never raises."""
    if out is None:
        out = Parsed()

    def refuse(
        code: str, reason: str, device_id: str | None = None, index: int | None = None
    ) -> Parsed:
        out.dead.append(DeadLetter(topic, payload, received_at, code, reason, device_id, index))
        return out

    if len(payload) > limits.max_payload_bytes:
        return refuse(
            "oversized",
            f"payload: {len(payload)} bytes exceeds the limit of {limits.max_payload_bytes}",
        )
    parts = parse_topic(limits.prefix, topic)
    if parts is None:
        return refuse(
            "bad_topic",
            f"topic: {topic!r} does not match {limits.prefix}/<kind>/<device_id>/"
            "telemetry|status with a known kind",
        )
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        if parts.channel == "status" and _PLAIN_STATUS.match(payload):
            body = payload.decode()  # last-will messages are often bare text: offline
        else:
            return refuse("invalid_json", f"payload: not valid JSON ({exc})", parts.device_id)

    if parts.channel == "status":
        return _parse_status(parts.kind, parts.device_id, body, received_at, kinds, refuse, out)
    if parts.kind == GATEWAY:
        return _parse_gateway(body, Window.at(received_at, limits), kinds, refuse, out)
    if not isinstance(body, dict):
        return refuse("invalid_json", "payload: must be a JSON object", parts.device_id)
    if "device_id" in body and body["device_id"] != parts.device_id:
        return refuse(
            "invalid_field",
            f"device_id: {body['device_id']!r} does not match the topic's {parts.device_id!r}",
            parts.device_id,
        )
    try:
        kind = _resolve_kind(parts.device_id, kinds, parts.kind)
        window = Window.at(received_at, limits)
        out.rows.append(parse_reading(kind, parts.device_id, body, window))
    except Refused as exc:
        refuse(exc.code, exc.reason, parts.device_id)
    return out


def _parse_gateway(
    body: Any,
    window: Window,
    kinds: Mapping[str, str],
    refuse: Any,
    out: Parsed,
) -> Parsed:
    if not isinstance(body, list):
        return refuse("invalid_json", "payload: a gateway batch must be a JSON array of readings")  # type: ignore[no-any-return]
    append = out.rows.append
    for index, element in enumerate(body):
        if not isinstance(element, dict):
            refuse("invalid_json", f"[{index}]: each element must be a JSON object", None, index)
            continue
        device_id = element.get("device_id")
        # A registered id is valid (the registry checks ids), so only others meet the pattern.
        kind = kinds.get(device_id) if isinstance(device_id, str) else None
        if kind is None and (not isinstance(device_id, str) or not DEVICE_ID_RE.match(device_id)):
            refuse(
                "missing_field" if device_id is None else "invalid_field",
                f"[{index}].device_id: required, a string of letters, digits and _.:-",
                None,
                index,
            )
            continue
        claimed = element.get("kind")
        try:
            if kind is None or (claimed is not None and claimed != kind):  # the rare case
                kind = _resolve_kind(
                    device_id,  # type: ignore[arg-type]
                    kinds,
                    claimed if isinstance(claimed, str) else None,
                )
            append(parse_reading(kind, device_id, element, window, index))  # type: ignore[arg-type]
        except Refused as exc:
            where = f"[{index}]."
            reason = exc.reason if exc.reason.startswith(where) else where + exc.reason
            refuse(exc.code, reason, device_id, index)
    return out


def _parse_status(
    kind: str,
    device_id: str,
    body: Any,
    received_at: datetime,
    kinds: Mapping[str, str],
    refuse: Any,
    out: Parsed,
) -> Parsed:
    if isinstance(body, str):  # a bare "online" / "offline", as last-will messages often are
        body = {"status": body}
    if not isinstance(body, dict):
        return refuse(
            "invalid_json", "payload: a status must be a JSON object or string", device_id
        )  # type: ignore[no-any-return]
    try:
        _resolve_kind(device_id, kinds, kind)
        message = StatusMessage.model_validate(body)
    except Refused as exc:
        return refuse(exc.code, exc.reason, device_id)  # type: ignore[no-any-return]
    except ValidationError as exc:
        return refuse(_error_code(exc), describe_errors(exc), device_id)  # type: ignore[no-any-return]
    out.status.append(
        StatusEvent(
            device_id,
            message.ts or received_at,
            message.status,
            received_at,
            message.model_extra or None,
        )
    )
    return out
